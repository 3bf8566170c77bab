package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fail2ban filter given by path, with a mode, parses a log with
// fail2ban's semantics and `phalanx parse`'s output.
func TestParseFail2banFilter(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte(`[Definition]
_daemon = app
mode = normal
failregex = ^\s*\S+ %(_daemon)s\[\d+\]: auth failed for <F-USER>\S+</F-USER> from <HOST>$
            <mdre-<mode>>
mdre-normal =
mdre-aggressive = ^\s*\S+ %(_daemon)s\[\d+\]: probe from <HOST>$
ignoreregex = from 192\.0\.2\.99$
`), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "app.log")
	if err := os.WriteFile(log, []byte(`2024-03-01 10:11:12 host app[1]: auth failed for bob from 192.0.2.7
2024-03-01 10:11:13 host app[1]: probe from 192.0.2.8
2024-03-01 10:11:14 host app[1]: auth failed for eve from 192.0.2.99
2024-03-01 10:11:15 host app[1]: auth failed for mallory from attacker.example
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec string
		want []string // sources of matched lines, in order
	}{
		{conf, []string{"192.0.2.7", "attacker.example"}},
		{conf + ":aggressive", []string{"192.0.2.7", "192.0.2.8", "attacker.example"}},
		{conf + "[mode=aggressive]", []string{"192.0.2.7", "192.0.2.8", "attacker.example"}},
	} {
		out, err := runCLI(t, "", "parse", "--fail2ban-filter", tt.spec, "-o", "json", log)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.spec, err, out)
		}
		var got []string
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			if !strings.HasPrefix(l, "{") {
				continue
			}
			var p parsedLine
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatalf("%s: %q: %v", tt.spec, l, err)
			}
			if p.Match {
				if p.Service != "app" || p.Event != "rule_match" {
					t.Errorf("%s: %+v", tt.spec, p)
				}
				got = append(got, p.Source)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: matched %v, want %v\n%s", tt.spec, got, tt.want, out)
		}
	}
	if _, err := runCLI(t, "", "parse", "--fail2ban-filter", filepath.Join(dir, "missing.conf"), log); err == nil || !strings.Contains(err.Error(), "filter") {
		t.Errorf("missing filter: %v", err)
	}
	if _, err := runCLI(t, "", "parse", "--fail2ban-filter", conf, "--rules", "x.yaml", log); err == nil || !strings.Contains(err.Error(), "--rules") {
		t.Errorf("--rules with a filter: %v", err)
	}
}
