package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

func TestDefaultScenarios(t *testing.T) {
	s := DefaultScenarios()
	if len(s) < 15 {
		t.Fatalf("%d default scenarios", len(s))
	}
	var bf *Scenario
	for i := range s {
		if s[i].Name == "ssh-bf" {
			bf = &s[i]
		}
	}
	if bf == nil || bf.Capacity != 5 || time.Duration(bf.Leak) != 10*time.Second || bf.Decision.Type != phalanx.Ban {
		t.Fatalf("ssh-bf %+v", bf)
	}
	// A copy each time: callers may edit theirs.
	s[0].Name = "changed"
	if DefaultScenarios()[0].Name == "changed" {
		t.Error("DefaultScenarios shares its slice")
	}
}

const good = `
rules:
  - name: custom-app
    anything: goes here
scenarios:
  - name: app-bf
    type: leaky
    filter: {services: [myapp], kinds: [auth_failed], status: [401]}
    capacity: 3
    leak: 1m
    blackhole: 5m
    decision: {type: captcha, duration: 1d}
    group: prefix64
`

func TestParseScenarios(t *testing.T) {
	s, err := ParseScenarios([]byte(good), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 || s[0].Name != "app-bf" || time.Duration(s[0].Decision.Duration) != 24*time.Hour ||
		s[0].Group != GroupPrefix64 || s[0].Filter.Status[0] != 401 {
		t.Fatalf("%+v", s)
	}
	if s, err := ParseScenarios(nil, "empty.yaml"); err != nil || s != nil {
		t.Fatalf("empty: %v %v", s, err)
	}
	if s, err := ParseScenarios([]byte("rules: []\n"), "rules.yaml"); err != nil || len(s) != 0 {
		t.Fatalf("rules only: %v %v", s, err)
	}
}

func TestParseScenariosErrors(t *testing.T) {
	base := func(repl string) string { return strings.Replace(good, "    capacity: 3\n", repl, 1) }
	tests := []struct {
		name string
		yaml string
		want string // substring, including file:line
	}{
		{"unknown field", base("    capacity: 3\n    capactiy: 4\n"), "f.yaml:10: field capactiy not found"},
		{"unknown filter field", strings.Replace(good, "status: [401]", "statuses: [401]", 1), "f.yaml:8: field statuses not found"},
		{"unknown top-level", good + "scenario: []\n", "f.yaml:14: field scenario not found"},
		{"bad duration", strings.Replace(good, "leak: 1m", "leak: 1 minute", 1), `f.yaml:10: invalid duration "1 minute"`},
		{"bad type", strings.Replace(good, "type: leaky", "type: leaking", 1), `f.yaml:7: scenario "app-bf": unknown type "leaking"`},
		{"zero capacity", base("    capacity: 0\n"), `f.yaml:9: scenario "app-bf": capacity must be`},
		{"no leak", strings.Replace(good, "    leak: 1m\n", "", 1), `f.yaml:9: scenario "app-bf": set leak`},
		{"no kinds", strings.Replace(good, "kinds: [auth_failed], ", "", 1), `f.yaml:8: scenario "app-bf": filter.kinds is empty`},
		{"bad decision", strings.Replace(good, "type: captcha", "type: jail", 1), `f.yaml:12: scenario "app-bf": decision: unknown decision type "jail"`},
		{"no duration", strings.Replace(good, ", duration: 1d", "", 1), `f.yaml:12: scenario "app-bf": decision.duration is missing`},
		{"bad group", strings.Replace(good, "group: prefix64", "group: prefix48", 1), `f.yaml:13: scenario "app-bf": unknown group "prefix48"`},
		{"distinct without value", strings.Replace(good, "type: leaky", "type: distinct", 1), `f.yaml:6: scenario "app-bf": distinct "": use user or path`},
		{"trigger with capacity", strings.Replace(good, "type: leaky", "type: trigger", 1), `f.yaml:9: scenario "app-bf": a trigger fires on the first event`},
		{"duplicate", good + strings.SplitN(good, "scenarios:\n", 2)[1], `f.yaml:14: scenario "app-bf" is defined twice (first at line 6)`},
		{"syntax", "scenarios:\n  - name: [\n", "f.yaml:"},
		{"wrong type", "scenarios:\n  - name: x\n    capacity: lots\n", "f.yaml:3: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenarios([]byte(tt.yaml), "f.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "detect: ") {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadScenarios(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadScenarios(p); err != nil || len(s) != 1 {
		t.Fatalf("%v %v", s, err)
	}
	if _, err := LoadScenarios(p + ".missing"); err == nil {
		t.Fatal("missing file loaded")
	}
	// The engine accepts what the loader returns.
	s, _ := LoadScenarios(p)
	if _, err := New(Config{Scenarios: s}); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseScenarios(f *testing.F) {
	f.Add([]byte(good))
	f.Add(defaultScenarios)
	f.Add([]byte("scenarios:\n  - name: x\n    leak: 7d\n"))
	f.Add([]byte("scenarios: {a: b}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseScenarios(data, "fuzz.yaml")
		if err != nil {
			return
		}
		// What parses must build an engine.
		if _, err := New(Config{Scenarios: append([]Scenario{}, s...)}); err != nil {
			t.Fatalf("parsed but rejected by New: %v", err)
		}
	})
}
