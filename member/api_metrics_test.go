package member

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestEnforceApplyFedByHTTPGuard: with the in-process guard's observer
// running (`up --enforce http` starts it), a decision made through the API
// shows up in phalanx_enforce_apply_seconds{enforcer="http"}, with a time
// no longer than the test waited.
func TestEnforceApplyFedByHTTPGuard(t *testing.T) {
	d := filepath.Join(t.TempDir(), "m1")
	if _, err := Init(d, "metrics", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, d, func(m *Member) {
		m.AddRunner(func(ctx context.Context) error { return m.ObserveSetWrites(ctx, "http") })
	})
	c, err := Client(d)
	if err != nil {
		t.Fatal(err)
	}
	count := `phalanx_enforce_apply_seconds_count{enforcer="http"}`
	sum := `phalanx_enforce_apply_seconds_sum{enforcer="http"}`
	if s := scrape(t, c); s[count] != 0 {
		t.Fatalf("%s = %v before any decision", count, s[count])
	}
	begin := time.Now()
	if _, err := c.AddDecision(t.Context(), DecisionRequest{Value: "192.0.2.61", Reason: "apply metric test"}); err != nil {
		t.Fatal(err)
	}
	var s map[string]float64
	for end := time.Now().Add(deadline); ; {
		s = scrape(t, c)
		if s[count] >= 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%s still 0 %v after a decision", count, deadline)
		}
		time.Sleep(20 * time.Millisecond) // polling a goroutine's progress, with a deadline
	}
	if v, waited := s[sum], time.Since(begin).Seconds(); v <= 0 || v > waited*s[count] {
		t.Errorf("%s = %v over %v observations, want > 0 and at most %v s each", sum, v, s[count], waited)
	}
}
