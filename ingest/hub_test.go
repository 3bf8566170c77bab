package ingest_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/internal/corpus"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

type hubTest struct {
	LogFile string `json:"log_file"`
	LogType string `json:"log_type"`
	Alerts  []struct {
		Scenario string   `json:"scenario"`
		Sources  []string `json:"sources"`
	} `json:"alerts"`
	ExpectedAlerts int      `json:"expected_alerts"`
	Scenarios      []string `json:"scenarios"`
}

// replayFile runs the default pipeline over a file with the built-in
// allowlist off (the hub's samples attack from 127.0.0.1 and 172.17.0.x)
// and returns the decisions.
func replayFile(t *testing.T, path string, typ parse.Type) []phalanx.Decision {
	t.Helper()
	engine, err := detect.New(detect.Config{Scenarios: detect.DefaultScenarios()})
	if err != nil {
		t.Fatal(err)
	}
	var out []phalanx.Decision
	p := ingest.New(parse.New(parse.Options{Type: typ, SSHDMode: sshd.Aggressive, Context: &logline.Context{}}), engine,
		func(d phalanx.Decision) { out = append(out, d) })
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ingest.ScanLines(f, func(l string) { p.Line(l) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrowdSecHub replays the CrowdSec hub's scenario tests for SSH, nginx
// and Apache and checks that phalanx decides against every source the hub
// expects an alert for, and against nothing else (the hub's tests are a
// closed world), in at least 90% of them.
func TestCrowdSecHub(t *testing.T) {
	dir := corpus.Path(t, "crowdsec-hub-tests")
	data, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tests map[string]hubTest
	if err := json.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(tests))
	for n := range tests {
		names = append(names, n)
	}
	sort.Strings(names)
	var total, passed int
	for _, name := range names {
		ht := tests[name]
		switch {
		case name == "sshd-logs-fp":
			// The false-positive test: nothing may be decided.
		case ht.ExpectedAlerts == 0:
			continue // a parser-only test
		case ht.LogType != "syslog" && ht.LogType != "nginx" && ht.LogType != "apache2":
			t.Logf("skip %s: %s logs are not sshd, nginx or Apache", name, ht.LogType)
			continue
		case strings.Contains(name, "generic-test"):
			t.Logf("skip %s: a CrowdSec-internal test scenario, not an attack class", name)
			continue
		}
		typ := parse.Auto
		want := map[netip.Addr]bool{}
		for _, a := range ht.Alerts {
			for _, s := range a.Sources {
				if ip, err := netip.ParseAddr(s); err == nil {
					want[ip.Unmap()] = true
				}
			}
		}
		got := replayFile(t, filepath.Join(dir, name, ht.LogFile), typ)
		total++
		var missing, extra []string
		for ip := range want {
			found := false
			for _, d := range got {
				if d.Value.Contains(ip) {
					found = true
				}
			}
			if !found {
				missing = append(missing, ip.String())
			}
		}
		for _, d := range got {
			ok := false
			for ip := range want {
				if d.Value.Contains(ip) {
					ok = true
				}
			}
			if !ok {
				extra = append(extra, d.ValueString()+" ("+d.Scenario+")")
			}
		}
		if len(missing) == 0 && len(extra) == 0 {
			passed++
			continue
		}
		t.Logf("%s: missing %v, unexpected %v", name, missing, extra)
	}
	pct := 100 * float64(passed) / float64(total)
	t.Logf("CrowdSec hub scenario tests: %d/%d agree (%.1f%%)", passed, total, pct)
	if total == 0 || pct < 90 {
		t.Errorf("agreement %.1f%% is under 90%%", pct)
	}
}
