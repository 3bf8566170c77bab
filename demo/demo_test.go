package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRun plays two waves against a three-member alliance and checks the
// summary as its JSON: what `phalanx demo --duration 8s -o json` prints.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	s, err := Run(context.Background(), Config{Duration: 8 * time.Second, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", out.String())
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Members []struct {
			ID        string  `json:"id"`
			Name      string  `json:"name"`
			Protected bool    `json:"protected"`
			TTP       float64 `json:"ttp_ms"`
			TTPP50    float64 `json:"ttp_p50_ms"`
		} `json:"members"`
		Decisions      int   `json:"decisions"`
		Attacks        int   `json:"attacks"`
		FalsePositives int   `json:"false_positives"`
		DurationMS     int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	if len(got.Members) != DefaultMembers {
		t.Fatalf("%d members in the summary, want %d", len(got.Members), DefaultMembers)
	}
	// Two waves of three attackers each fit in 8 s.
	if got.Attacks < 6 || got.Decisions != got.Attacks {
		t.Errorf("%d attacks, %d decisions: want at least 6, one decision each", got.Attacks, got.Decisions)
	}
	if got.FalsePositives != 0 {
		t.Errorf("%d legitimate addresses banned", got.FalsePositives)
	}
	if got.DurationMS < 8000 {
		t.Errorf("duration %d ms, want at least the 8 s asked for", got.DurationMS)
	}
	for i, m := range got.Members {
		if m.ID == "" || m.Name != "member-"+string(rune('1'+i)) {
			t.Errorf("member %d: id %q name %q", i+1, m.ID, m.Name)
		}
		if !m.Protected {
			t.Errorf("%s is not protected against every attacker", m.Name)
		}
		if m.TTP <= 0 || m.TTPP50 <= 0 || m.TTPP50 > m.TTP {
			t.Errorf("%s: ttp_p50_ms %v, ttp_ms %v: want 0 < p50 ≤ max", m.Name, m.TTPP50, m.TTP)
		}
	}
	for _, want := range []string{"wave 1:", "member-2  protected against 203.0.113.1 (ssh-bf)", "(http-sensitive-files)", "dashboard:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q", want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Members: 1}, {WaveEvery: time.Second}, {Duration: -time.Second}} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
