package member

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source/file"
)

// scrape reads /metrics with the member's token and returns each sample,
// keyed by its name and labels as exposed ("name{a=\"x\",b=\"y\"}").
func scrape(t *testing.T, c *APIClient) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", c.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: sample %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// TestMetricsFamilies: after a small detection (a file source with a brute
// force in it) and a drill, every family of issue 5 is exported with
// values that match what happened.
func TestMetricsFamilies(t *testing.T) {
	d := filepath.Join(t.TempDir(), "m1")
	if _, err := Init(d, "metrics", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "auth.log")
	sshdLines(t, log, "198.51.100.77", 12)
	r := start(t, d, func(m *Member) {
		m.AddSource(file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true})
	})
	c, err := Client(d)
	if err != nil {
		t.Fatal(err)
	}
	overflow := `phalanx_scenario_overflows_total{scenario="ssh-bf"}`
	for end := time.Now().Add(deadline); ; {
		s := scrape(t, c)
		if s[overflow] >= 1 && s[`phalanx_ledger_sent_total{kind="report"}`]+s[`phalanx_ledger_sent_total{kind="reports"}`] >= 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no ssh-bf decision reported within %v: %v", deadline, s)
		}
		time.Sleep(20 * time.Millisecond) // polling a goroutine's progress, with a deadline
	}
	if _, err := c.Drill(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.m.ObserveEnforce("test", 3*time.Millisecond)
	// The drill returns once the acks are applied; the publisher counts its
	// own ack only after the stream confirmed it, which may come a moment
	// later.
	var s map[string]float64
	for end := time.Now().Add(deadline); ; {
		s = scrape(t, c)
		if s[`phalanx_ledger_sent_total{kind="drill_ack"}`] >= 1 || time.Now().After(end) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a goroutine's progress, with a deadline
	}

	src := `{source="file:` + log + `"}`
	want := map[string]func(float64) bool{
		"phalanx_source_lines_read_total" + src:      eq(12),
		"phalanx_source_lines_parsed_total" + src:    eq(12),
		"phalanx_source_lines_truncated_total" + src: eq(0),
		`phalanx_events_total{kind="auth_failed"}`:   eq(12),
		overflow:                                                                   eq(1),
		"phalanx_events_allowlisted_total":                                         eq(0),
		"phalanx_range_decisions_total":                                            eq(0),
		"phalanx_detection_states_tracked":                                         atLeast(0),
		"phalanx_detection_states_max":                                             atLeast(1),
		"phalanx_detection_states_evicted_total":                                   eq(0),
		`phalanx_ledger_sent_total{kind="drill"}`:                                  eq(1),
		`phalanx_ledger_sent_total{kind="drill_ack"}`:                              eq(1),
		`phalanx_ledger_sent_total{kind="heartbeat"}`:                              atLeast(1),
		`phalanx_ledger_received_total{kind="drill"}`:                              eq(1),
		`phalanx_ledger_received_total{kind="drill_ack"}`:                          eq(1),
		"phalanx_drills_total":                                                     eq(1),
		`phalanx_drill_time_to_protect_seconds{member="` + string(r.m.ID()) + `"}`: atLeast(0),
		"phalanx_time_to_protect_seconds_count":                                    eq(1),
		`phalanx_time_to_protect_seconds_bucket{le="+Inf"}`:                        eq(1),
		"phalanx_ledger_applied_position":                                          atLeast(4),
		`phalanx_ledger_lag_envelopes{member="` + string(r.m.ID()) + `"}`:          atLeast(0),
		"phalanx_ledger_lag_max_envelopes":                                         atLeast(0),
		"phalanx_nats_connected":                                                   eq(1),
		`phalanx_enforce_apply_seconds_count{enforcer="test"}`:                     eq(1),
		`phalanx_enforce_apply_seconds_sum{enforcer="test"}`:                       eq(0.003),
	}
	for k, ok := range want {
		v, found := s[k]
		switch {
		case !found:
			t.Errorf("/metrics lacks %s", k)
		case !ok(v):
			t.Errorf("/metrics: %s = %v", k, v)
		}
	}
	// ssh-bf and ssh-slow-bf: alone, or together in one batch.
	for _, dir := range []string{"sent", "received"} {
		k := "phalanx_ledger_" + dir + `_total{kind="report`
		if s[k+`"}`]+s[k+`s"}`] < 1 {
			t.Errorf("/metrics: no report %s (kind report or reports)", dir)
		}
	}
	// The brute force and the drill's address, whether still local or
	// already the alliance's.
	var inForce float64
	for k, v := range s {
		if strings.HasPrefix(k, "phalanx_decisions_in_force{") && strings.Contains(k, `type="ban"`) {
			inForce += v
		}
	}
	if inForce < 2 {
		t.Errorf("/metrics: phalanx_decisions_in_force{type=\"ban\"} sum to %v, want at least 2", inForce)
	}
	if t.Failed() {
		t.Logf("/metrics: %v", s)
	}
}

func eq(w float64) func(float64) bool      { return func(v float64) bool { return v == w } }
func atLeast(w float64) func(float64) bool { return func(v float64) bool { return v >= w } }
