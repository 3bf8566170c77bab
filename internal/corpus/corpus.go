// Package corpus finds the external test corpus (../shared/corpus beside
// the repository, or $PHALANX_CORPUS) for accuracy tests. The corpus is
// third-party data under its own licences: tests read it in place and the
// project never copies it.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the corpus directory, or skips the test with the reason when
// it is not there.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PHALANX_CORPUS"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "corpus")
			if _, err := os.Stat(c); err != nil {
				tb.Skipf("corpus: %s not found (set PHALANX_CORPUS to the shared corpus directory): accuracy test skipped", c)
			}
			return c
		}
		if filepath.Dir(d) == d {
			tb.Skip("corpus: no go.mod above the working directory")
		}
	}
}

// Path joins elements onto Dir.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	return filepath.Join(append([]string{Dir(tb)}, elem...)...)
}
