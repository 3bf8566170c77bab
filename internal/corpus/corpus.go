// Package corpus finds the external test corpus (../shared/corpus beside
// the repository, or $PHALANX_CORPUS) for accuracy tests. The corpus is
// third-party data under its own licences: tests read it in place and the
// project never copies it.
package corpus

import (
	"bytes"
	"encoding/json"
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

// Fail2banCase is one annotated line of fail2ban's sample logs, as the
// corpus's f2b2jsonl writes it to fail2ban-cases.jsonl.
type Fail2banCase struct {
	ID      string           `json:"id"`
	Filter  string           `json:"filter"`
	File    string           `json:"file"`
	Lineno  int              `json:"lineno"`
	Line    string           `json:"line"`
	Match   bool             `json:"match"`
	Host    *string          `json:"host"`
	Time    *string          `json:"time"`
	Desc    *string          `json:"desc"`
	Options []map[string]any `json:"options"` // the filter options fail2ban tests the line with
	Extra   struct {
		IP4 string `json:"ip4"`
		IP6 string `json:"ip6"`
	} `json:"extra"`
}

// Fail2banCases returns, in file order, the cases of fail2ban-cases.jsonl
// whose sample file is one of files (all of them when files is empty).
func Fail2banCases(tb testing.TB, files ...string) []Fail2banCase {
	tb.Helper()
	data, err := os.ReadFile(Path(tb, "fail2ban-cases.jsonl"))
	if err != nil {
		tb.Skipf("corpus: %v", err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f] = true
	}
	var out []Fail2banCase
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c Fail2banCase
		if err := json.Unmarshal(line, &c); err != nil {
			tb.Fatalf("fail2ban-cases.jsonl:%d: %v", i+1, err)
		}
		if len(want) == 0 || want[c.File] {
			out = append(out, c)
		}
	}
	return out
}
