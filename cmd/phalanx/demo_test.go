package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestDemoCLI runs `phalanx demo --duration 3s -o json` through the cobra
// root: one wave, the summary alone on stdout, the progress on stderr.
func TestDemoCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an alliance of three for 3 s")
	}
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"demo", "--duration", "3s", "-o", "json"})
	if err := root.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var s struct {
		Members []struct {
			Name      string  `json:"name"`
			Protected bool    `json:"protected"`
			TTP       float64 `json:"ttp_ms"`
		} `json:"members"`
		Decisions int `json:"decisions"`
	}
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if dec.More() {
		t.Errorf("more than one JSON value on stdout")
	}
	if len(s.Members) != 3 || s.Decisions == 0 {
		t.Fatalf("summary %+v: want 3 members and decisions", s)
	}
	for _, m := range s.Members {
		if !m.Protected || m.TTP <= 0 {
			t.Errorf("%s: protected %v, ttp_ms %v", m.Name, m.Protected, m.TTP)
		}
	}
	if !strings.Contains(errb.String(), "wave 1:") {
		t.Errorf("progress not on stderr:\n%s", errb.String())
	}
}

func TestDemoBadOutput(t *testing.T) {
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"demo", "-o", "yaml"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "use json") {
		t.Errorf("-o yaml: %v", err)
	}
}
