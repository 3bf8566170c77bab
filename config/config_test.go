package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example shipped with the packaging must stay a valid config.
func TestPackagedExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "packaging", "phalanx.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 3 || c.Files[0].Hint != "sshd" || c.DataDir != DefaultDataDir || len(c.Allowlist) != 2 {
		t.Errorf("example parsed as %+v", c)
	}
}

func TestParse(t *testing.T) {
	c, err := Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatalf("an empty config must be valid: %v", err)
	}
	if c.DataDir != DefaultDataDir || c.SSHDMode != "aggressive" {
		t.Errorf("defaults: %+v", c)
	}
	c, err = Parse([]byte("rules: rules.yaml\n"), "/etc/phalanx/phalanx.yaml")
	if err != nil || c.Rules != "/etc/phalanx/rules.yaml" {
		t.Errorf("relative rules path: %q, %v", c.Rules, err)
	}
	_, err = Parse([]byte("data_dir: /x\nfiels:\n  - paths: [a]\n"), "typo.yaml")
	if err == nil || !strings.Contains(err.Error(), "typo.yaml") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a typo must be an error naming the file and line, got %v", err)
	}
}

func TestLoadRulesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(path, []byte(`rules:
  - name: app-login
    kind: auth_failed
    regex: 'login failed from (?P<source>\S+)'
scenarios:
  - name: app-bf
    type: leaky
    filter: {services: [app-login], kinds: [auth_failed]}
    capacity: 3
    leak: 1m
    decision: {type: ban, duration: 1h}
`), 0o644)
	set, scen, err := LoadRulesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if set == nil || len(set.Rules()) != 1 || len(scen) != 1 {
		t.Fatalf("got %v rules, %d scenarios", set, len(scen))
	}
}

func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile(filepath.Join("..", "packaging", "phalanx.yaml"))
	f.Add(data)
	f.Add([]byte("files: [{paths: [a], hint: sshd}]\nallowlist: [1.2.3.4]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b, "fuzz.yaml") // must not panic
	})
}
