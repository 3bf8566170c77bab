package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx/member"
)

// TestStatus runs status against a live founder, before and after a drill,
// and without a member running.
func TestStatus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "founder")
	if out, err := runCLI(t, "", "alliance", "init", "--name", "status", "--data", dir, "--nats-listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "", "status", "--data", dir); err == nil || !strings.Contains(err.Error(), "phalanx up --data "+dir) {
		t.Fatalf("status with no member running: want an error saying how to start it, got %v\n%s", err, out)
	}

	_, c := runTestMember(t, dir)

	out, err := runCLI(t, "", "status", "--data", dir, "-o", "table")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"Member", "Alliance", "Bus", "Decisions", "Rejections  none", "none yet: measure time-to-protect with 'phalanx drill --data", "this member"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	if _, err := c.Drill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddDecision(t.Context(), member.DecisionRequest{Value: "192.0.2.77", Reason: "status test"}); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "", "status", "--data", dir, "-o", "json")
	if err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
	}
	h, err := c.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Member != h.Member || rep.Alliance != h.Alliance || !rep.Connected || rep.Applied == 0 {
		t.Errorf("status -o json: identity or position wrong: %s", out)
	}
	if len(rep.Members) != 1 || !rep.Members[0].Self || rep.Members[0].Lag != 0 {
		t.Errorf("status -o json: members: %s", out)
	}
	if rep.LastDrill == nil || rep.LastDrill.Members != 1 || rep.LastDrill.P50MS <= 0 || rep.LastDrill.P99MS < rep.LastDrill.P50MS {
		t.Errorf("status -o json: last drill: %s", out)
	}
	// The manual decision may or may not be in force yet (the fold applies
	// it asynchronously); whatever is counted must add up.
	n := 0
	for _, v := range rep.Decisions.ByOrigin {
		n += v
	}
	if n != rep.Decisions.Total || rep.Rejections == nil {
		t.Errorf("status -o json: decisions do not add up: %s", out)
	}
}

func TestParseDrillTTP(t *testing.T) {
	got, err := parseDrillTTP(strings.NewReader(`# HELP phalanx_drill_time_to_protect_seconds x
# TYPE phalanx_drill_time_to_protect_seconds gauge
phalanx_drill_time_to_protect_seconds{member="a"} 0.012
phalanx_drill_time_to_protect_seconds{member="b}"} 0.5
phalanx_drills_total 2
`))
	if err != nil || len(got) != 2 || got[0] != 12 || got[1] != 500 {
		t.Fatalf("parseDrillTTP: %v, %v", got, err)
	}
	if p := nearestRank([]float64{1, 2, 3, 4}, 0.5); p != 2 {
		t.Errorf("p50 of 1..4: %v", p)
	}
}

// TestCompletion keeps cobra's completion command enabled.
func TestCompletion(t *testing.T) {
	out, err := runCLI(t, "", "completion", "bash")
	if err != nil || !strings.Contains(out, "bash completion") || !strings.Contains(out, "phalanx") {
		t.Fatalf("completion bash: %v\n%.300s", err, out)
	}
}
