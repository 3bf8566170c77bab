package crowdsec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/detect"
)

func TestTranslateScenarioFixtures(t *testing.T) {
	tr, err := TranslateScenarios("testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]detect.Scenario{}
	for _, s := range tr.Scenarios {
		byName[s.Name] = s
	}
	bf, ok := byName["crowdsecurity/ssh-bf"]
	if !ok {
		t.Fatalf("ssh-bf not translated; skipped: %+v", tr.Skipped)
	}
	if bf.Type != detect.Leaky || bf.Capacity != 5 || time.Duration(bf.Leak) != 10*time.Second || time.Duration(bf.Blackhole) != time.Minute ||
		!slices.Equal(bf.Filter.Services, []phalanx.Service{phalanx.ServiceSSHD}) || !slices.Contains(bf.Filter.Kinds, phalanx.KindInvalidUser) {
		t.Errorf("ssh-bf = %+v", bf)
	}
	enum := byName["crowdsecurity/ssh-bf_user-enum"]
	if enum.Type != detect.Distinct || enum.Distinct != detect.DistinctUser {
		t.Errorf("user-enum = %+v, want a distinct user bucket", enum)
	}
	post := byName["crowdsecurity/http-bf-wordpress_bf"]
	if !slices.Equal(post.Filter.Methods, []string{"POST"}) || !slices.Equal(post.Filter.Status, []int{401, 403}) || !slices.Equal(post.Filter.PathsContain, []string{"/wp-login.php"}) {
		t.Errorf("wordpress bf = %+v", post.Filter)
	}
	probing := byName["crowdsecurity/http-probing"]
	if !slices.Equal(probing.Filter.Status, []int{404, 403, 400}) || len(probing.Filter.ExcludePathSuffixes) == 0 {
		t.Errorf("http-probing = %+v", probing.Filter)
	}
	if s := byName["crowdsecurity/thinkphp-cve-2018-20062"]; s.Type != detect.Trigger || len(s.Filter.PathsContain) != 1 {
		t.Errorf("trigger = %+v", s)
	}
	wantSkipped := map[string]string{
		"crowdsecurity/http-sensitive-files": "function",
		"crowdsecurity/ssh-conditional":      "type \"conditional\"",
		"crowdsecurity/http-crawl-fqdn":      "groupby",
		"crowdsecurity/http-or-mixed":        "an or across different fields",
		"crowdsecurity/http-regexp":          "regular expression",
		"crowdsecurity/notify-only":          "remediation",
	}
	got := map[string]string{}
	for _, p := range tr.Skipped {
		got[p.Scenario] = p.Reason
		if p.File == "" {
			t.Errorf("skipped %s without its file", p.Scenario)
		}
	}
	for name, why := range wantSkipped {
		if !strings.Contains(got[name], why) {
			t.Errorf("%s: skipped for %q, want a reason containing %q", name, got[name], why)
		}
	}
	if len(tr.Scenarios)+len(tr.Skipped) != 11 {
		t.Errorf("%d translated + %d skipped, want 11 documents accounted for", len(tr.Scenarios), len(tr.Skipped))
	}

	// The output loads the way `phalanx up` and `replay` load it.
	b, err := MarshalScenarios("test", tr.Scenarios)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crowdsec.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, scen, err := config.LoadRulesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(scen) != len(tr.Scenarios) {
		t.Errorf("loaded %d scenarios back, want %d", len(scen), len(tr.Scenarios))
	}
	if _, err := detect.New(detect.Config{Scenarios: scen}); err != nil {
		t.Errorf("detect.New refuses the translation: %v", err)
	}
}

// TestTranslateInstalledScenarios runs over the scenarios Debian's
// crowdsec installs (and the hub copy it ships), when present: every
// document is either translated (and loads back) or reported.
func TestTranslateInstalledScenarios(t *testing.T) {
	ran := false
	for _, dir := range []string{"/etc/crowdsec/scenarios", "/usr/share/crowdsec/hub"} {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		ran = true
		tr, err := TranslateScenarios(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if _, err := MarshalScenarios("", tr.Scenarios); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		t.Logf("%s: %d files, %d scenarios translated, %d skipped, %d notes", dir, tr.Files, len(tr.Scenarios), len(tr.Skipped), len(tr.Notes))
		for _, p := range tr.Skipped {
			if p.Reason == "" {
				t.Errorf("%s %s skipped without a reason", p.File, p.Scenario)
			}
		}
		if dir == "/etc/crowdsec/scenarios" && !slices.Contains(tr.Translated, "crowdsecurity/ssh-bf") {
			t.Errorf("crowdsecurity/ssh-bf not translated: %+v", tr.Skipped)
		}
	}
	if !ran {
		t.Skip("no CrowdSec scenarios installed (apt-get install crowdsec)")
	}
}

func FuzzTranslateScenario(f *testing.F) {
	files, _ := filepath.Glob("testdata/scenarios/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("type: leaky\nname: x\nfilter: \"((((evt.Meta.log_type == 'a'\"\ncapacity: 1\nleakspeed: 1s\ngroupby: evt.Meta.source_ip\n"))
	f.Add([]byte("type: trigger\nname: y\nfilter: not Upper(evt.Meta.http_path) contains Upper('/x') || evt.Meta.http_status in ['a']\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := TranslateScenarioBytes(b, "fuzz.yaml")
		for _, p := range tr.Skipped {
			if p.Reason == "" {
				t.Fatalf("skipped without a reason: %+v", p)
			}
		}
		// Whatever is translated must be a valid phalanx scenario.
		if _, err := MarshalScenarios("", tr.Scenarios); err != nil {
			t.Fatal(err)
		}
	})
}
