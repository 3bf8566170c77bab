package member

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
)

// ownDecision is this member's own detection of the i-th address of
// 10.0.0.0/8, for d.
func ownDecision(i int, now time.Time, d time.Duration) phalanx.Decision {
	return phalanx.Decision{Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
		Type: phalanx.Ban, Scenario: "ssh-bf", Origin: phalanx.OriginLocal, FirstSeen: now, LastSeen: now, Duration: d, Events: 6}
}

// reconcileOwnLocked is reconcileOwn as reconcile calls it, with the
// member's lock held; it returns how long the lock was held.
func (m *Member) reconcileOwnLocked(cs []ledger.Ceasefire, now time.Time) time.Duration {
	t0 := time.Now()
	m.mu.Lock()
	m.reconcileOwn(cs, now)
	m.mu.Unlock()
	return time.Since(t0)
}

// TestReconcileOwnScale measures the periodic pass over this member's own
// decisions when it holds many: PHALANX_OWN_SCALE=1000000 go test -run
// TestReconcileOwnScale ./member. It logs how long the pass holds the
// member's lock with no ceasefire, as ceasefires begin, stay in force and
// end, and when every own decision expired.
func TestReconcileOwnScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PHALANX_OWN_SCALE"))
	if n <= 0 {
		t.Skip("set PHALANX_OWN_SCALE to the number of own decisions")
	}
	clock := phalanx.SystemClock{}
	m := &Member{clock: clock, ds: decisions.New(clock)} // no housekeeping in between
	now := time.Now()
	for i := range n {
		m.decideLocal(ownDecision(i, now, 2*time.Hour))
	}
	pass := func(what string, cs []ledger.Ceasefire) {
		t.Logf("%d own decisions, %s: the pass held the member's lock %v", n, what, m.reconcileOwnLocked(cs, now).Round(time.Microsecond))
	}
	pass("no ceasefire", nil)
	pass("no ceasefire", nil)
	elsewhere := []ledger.Ceasefire{{ID: "elsewhere", Scenario: "http-probe", Until: now.Add(time.Hour)}}
	pass("a ceasefire on another scenario began", elsewhere)
	pass("the same ceasefire in force", elsewhere)
	pass("the same ceasefire in force", elsewhere)
	pass("it ended", nil)
	all := []ledger.Ceasefire{{ID: "all", Until: now.Add(time.Hour)}}
	pass("a ceasefire over everything began", all)
	pass("the same ceasefire in force", all)
	pass("it ended (every own decision comes back)", nil)
	if held := m.ds.Len(); held < n {
		t.Fatalf("the member holds %d decisions of %d after the ceasefire", held, n)
	}
	t.Logf("%d own decisions, all expired: the pass held the member's lock %v", n, m.reconcileOwnLocked(nil, now.Add(3*time.Hour)).Round(time.Microsecond))
	m.own.mu.Lock()
	left := len(m.own.byValue)
	m.own.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d own decisions remembered after every one expired", left)
	}
}

// TestReconcileOwn: the periodic pass forgets own decisions as they
// expire (not before: one lengthened since is kept), and only a change of
// the ceasefires in force — here one running out — puts back those a
// ceasefire had suspended. The member here is its set and its own
// decisions alone, so that no housekeeping of a running member reconciles
// with the fold's ceasefires in between.
func TestReconcileOwn(t *testing.T) {
	clock := phalanx.SystemClock{}
	m := &Member{clock: clock, ds: decisions.New(clock)}
	now := time.Now()
	value := func(i int) netip.Prefix { return ownDecision(i, now, 0).Value }
	held := func(i int) bool { _, ok := m.ds.Get(value(i)); return ok }
	remembered := func(i int) bool {
		m.own.mu.Lock()
		defer m.own.mu.Unlock()
		_, ok := m.own.byValue[value(i)]
		return ok
	}

	m.decideLocal(ownDecision(0, now, time.Minute))
	m.decideLocal(ownDecision(1, now, time.Hour))
	m.decideLocal(ownDecision(2, now, time.Minute))
	m.decideLocal(ownDecision(2, now, time.Hour)) // lengthened
	m.reconcileOwnLocked(nil, now.Add(30*time.Second))
	if !remembered(0) || !remembered(1) || !remembered(2) {
		t.Errorf("before any expiry: remembered %v %v %v, want all", remembered(0), remembered(1), remembered(2))
	}
	m.reconcileOwnLocked(nil, now.Add(2*time.Minute))
	if remembered(0) || !remembered(1) || !remembered(2) {
		t.Errorf("after the first expiry: remembered %v %v %v, want false true true", remembered(0), remembered(1), remembered(2))
	}

	truce := []ledger.Ceasefire{{ID: "c", Scenario: "ssh-bf", Until: now.Add(time.Minute)}}
	m.reconcileOwnLocked(truce, now)
	m.decideLocal(ownDecision(3, now, time.Hour))
	if held(3) {
		t.Errorf("an own decision taken during a ceasefire that covers it is enforced")
	}
	m.ds.Delete(value(1)) // as reconcile's unmirror does to a suspended one
	m.reconcileOwnLocked(truce, now)
	if held(1) || held(3) {
		t.Errorf("with the same ceasefire in force, the pass put back suspended decisions: held %v %v", held(1), held(3))
	}
	m.reconcileOwnLocked(nil, now.Add(2*time.Minute))
	if !held(1) || !held(2) || !held(3) {
		t.Errorf("after the ceasefire ran out: held %v %v %v, want all", held(1), held(2), held(3))
	}
}

// TestOwnExpiriesBounded: deciding the same value again and again, each
// time for longer, leaves the expiry heap bounded by the decisions held,
// not by the decisions taken.
func TestOwnExpiriesBounded(t *testing.T) {
	clock := phalanx.SystemClock{}
	m := &Member{clock: clock, ds: decisions.New(clock)}
	now := time.Now()
	for i := range 10_000 {
		m.decideLocal(ownDecision(i%10, now, time.Hour+time.Duration(i)*time.Second))
	}
	m.own.mu.Lock()
	n, live := len(m.own.expiries), len(m.own.byValue)
	m.own.mu.Unlock()
	if live != 10 || n > 2*live+64 {
		t.Errorf("10,000 decisions on 10 values: %d remembered, %d expiries kept (want 10, at most %d)", live, n, 2*live+64)
	}
	m.reconcileOwnLocked(nil, now.Add(4*time.Hour))
	m.own.mu.Lock()
	n, live = len(m.own.expiries), len(m.own.byValue)
	m.own.mu.Unlock()
	if live != 0 || n != 0 {
		t.Errorf("after every expiry: %d remembered, %d expiries kept, want none", live, n)
	}
}

// TestOwnDecisionsBounded: a member whose own decisions are bounded at
// 1,000, given 5,000 on distinct addresses — each new one expiring before
// all the others, as a flood of ever shorter bans would — keeps 1,000, and
// what it evicted is the decision expiring first each time, not the
// oldest: the first 999 stay, with the last. Each eviction is counted in
// /metrics, and the set holds what the member keeps, except for a value
// the alliance decided too: the alliance's decision on it stays in force.
func TestOwnDecisionsBounded(t *testing.T) {
	const bound, n = 1000, 5000
	dir := filepath.Join(t.TempDir(), "m1")
	if _, err := Init(dir, "bounded", "127.0.0.1:0", []netip.Prefix{territoryOf(0)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	m := start(t, dir, func(m *Member) { m.own.cap = bound }).m
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Shorter than this member's own decision on the value, so that the
	// set's merged record is this member's (origin local, its expiry).
	allied := ownDecision(2000, now, 0).Value
	if _, err := c.AddDecision(t.Context(), DecisionRequest{Value: allied.Addr().String(), Duration: "30m", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, []*Member{m}, []netip.Prefix{allied}, deadline)

	for i := range n {
		m.decideLocal(ownDecision(i, now, time.Hour+time.Duration(n-i)*time.Second))
	}
	d, ok := m.ds.Get(allied)
	if !ok {
		t.Fatalf("the alliance's decision on %s left the set with this member's own, evicted", allied)
	}
	if d.Origin != phalanx.OriginLocal {
		t.Fatalf("the set's record of %s has origin %q, want %q (the test needs the alliance's decision merged under this member's)", allied, d.Origin, phalanx.OriginLocal)
	}
	m.mu.Lock()
	m.dropEvicted(m.clock.Now()) // as the next reconcile would
	m.mu.Unlock()

	kept := func(i int) bool { return i < bound-1 || i == n-1 }
	m.own.mu.Lock()
	held := len(m.own.byValue)
	var wrong []int
	for i := range n {
		if _, ok := m.own.byValue[ownDecision(i, now, 0).Value]; ok != kept(i) {
			wrong = append(wrong, i)
		}
	}
	m.own.mu.Unlock()
	if held != bound || len(wrong) > 0 {
		t.Errorf("own decisions: %d kept (want %d); kept or evicted against the rule: %d, first %v", held, bound, len(wrong), wrong[:min(len(wrong), 5)])
	}
	if got := scrape(t, c)["phalanx_own_decisions_evicted_total"]; got != n-bound {
		t.Errorf("phalanx_own_decisions_evicted_total = %v, want %d", got, n-bound)
	}
	if got := m.ds.Len(); got != bound+1 {
		t.Errorf("the set holds %d decisions, want %d (this member's own and the alliance's)", got, bound+1)
	}
	for i := range n {
		v := ownDecision(i, now, 0).Value
		if _, ok := m.ds.Get(v); ok != (kept(i) || v == allied) {
			t.Fatalf("the set holds %s: %v, want %v", v, ok, !ok)
		}
	}
}
