package fail2ban

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/loggen"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/rules"
)

// benchSSHD loads Debian's sshd filter (mode) and a generated day of sshd
// traffic (attackers and legitimate users, as loggen writes it).
func benchSSHD(b *testing.B, mode string) (*Filter, []string) {
	if _, err := os.Stat(debianRoot + "/filter.d/sshd.conf"); err != nil {
		b.Skipf("%s/filter.d/sshd.conf not installed (apt-get install fail2ban): benchmark skipped", debianRoot)
	}
	args := map[string]string{}
	if mode != "" {
		args["mode"] = mode
	}
	f, err := LoadFilterOptions(debianRoot, "sshd", args, LoadOptions{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := loggen.Generate(&buf, loggen.Config{Kind: loggen.SSHD, Seed: 1, Lines: 50_000}); err != nil {
		b.Fatal(err)
	}
	return f, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// BenchmarkSSHDFilter runs fail2ban's sshd filter with fail2ban's
// semantics (Matcher: date detection, prefregex, connection tracking)
// over sshd lines.
func BenchmarkSSHDFilter(b *testing.B) {
	for _, mode := range []string{"normal", "aggressive"} {
		b.Run(mode, func(b *testing.B) {
			f, lines := benchSSHD(b, mode)
			m := f.NewMatcher()
			found := 0
			b.ResetTimer()
			for b.Loop() {
				for _, l := range lines {
					found += len(m.Line(l))
				}
			}
			if found == 0 {
				b.Fatal("no failure found in a day with attackers")
			}
			b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkSSHDRules runs the same filter written out as phalanx rules
// (what an import produces) through package rules.
func BenchmarkSSHDRules(b *testing.B) {
	for _, mode := range []string{"normal", "aggressive"} {
		b.Run(mode, func(b *testing.B) {
			f, lines := benchSSHD(b, mode)
			rs, _ := f.Rules()
			y, err := yaml.Marshal(struct {
				Rules []rules.Rule `yaml:"rules"`
			}{rs})
			if err != nil {
				b.Fatal(err)
			}
			set, err := rules.Parse(y, "sshd.yaml")
			if err != nil {
				b.Fatal(err)
			}
			set.SetContext(&logline.Context{Loc: time.UTC, Year: 2024})
			var ev phalanx.Event
			found := 0
			b.ResetTimer()
			for b.Loop() {
				for _, l := range lines {
					if set.Parse(l, &ev) {
						found++
					}
				}
			}
			if found == 0 {
				b.Fatal("no failure found in a day with attackers")
			}
			b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
