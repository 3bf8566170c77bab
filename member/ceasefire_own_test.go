package member

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/source/file"
)

// TestCeasefireCoversOwnDecisions: a ceasefire stands a member down from
// the decisions it holds alone too — its own detection of a scenario the
// charter wants corroborated, and a ban it imported — and the end of the
// ceasefire brings both back. Before, only the ledger's decisions stood
// down and the member went on enforcing its own.
func TestCeasefireCoversOwnDecisions(t *testing.T) {
	ctx := t.Context()
	// ssh-bf needs two members here, so member 1's detection stays its
	// own (origin local), in no other member's set.
	a := newTestAlliance(t, 2, func(c *charter.Charter) {
		c.Policy.Scenarios = map[string]int{"manual": 1}
	})
	log := filepath.Join(a.root, "auth1.log")
	src := "203.0.113.71"
	sshdLines(t, log, src, 8)
	a.ms[0].stop(t)
	a.ms[0] = start(t, a.dirs[0], func(m *Member) {
		m.AddSource(file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true})
	})
	m1, m2 := a.ms[0].m, a.ms[1].m
	own := netip.MustParsePrefix(src + "/32")
	waitHeld(t, []*Member{m1}, []netip.Prefix{own}, deadline)
	if d, _ := m1.Decisions().Lookup(own.Addr()); d.Origin != phalanx.OriginLocal {
		t.Fatalf("member 1's decision on %s has origin %q, want %q (the test needs a decision of its own)", src, d.Origin, phalanx.OriginLocal)
	}
	if _, held := m2.Decisions().Lookup(own.Addr()); held {
		t.Fatalf("member 2 enforces %s on one report of a scenario the charter wants corroborated", src)
	}

	c1, err := Client(a.dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	imported := netip.MustParsePrefix("198.51.100.72/32")
	now := time.Now()
	res, err := c1.Import(ctx, []phalanx.Decision{{Value: imported, Type: phalanx.Ban, Scenario: "sshd",
		Origin: "import:fail2ban", FirstSeen: now, LastSeen: now, Duration: time.Hour}})
	if err != nil || res.Added != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	waitHeld(t, []*Member{m1}, []netip.Prefix{imported}, deadline)

	// A ceasefire over everything, declared by the other member, for 2 s.
	c2, err := Client(a.dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	cf, err := c2.StartCeasefire(ctx, CeasefireRequest{For: "2s", Reason: "false positives"})
	if err != nil {
		t.Fatal(err)
	}
	stood := waitGone(t, []*Member{m1}, []netip.Prefix{own, imported}, deadline)
	back := waitHeld(t, []*Member{m1}, []netip.Prefix{own, imported}, time.Until(cf.Until)+reconcileEvery+deadline)
	if back.Before(cf.Until) {
		t.Errorf("own decisions back at %v, before the ceasefire's end %v", back, cf.Until)
	}
	if d, _ := m1.Decisions().Lookup(own.Addr()); d.Origin != phalanx.OriginLocal {
		t.Errorf("after the ceasefire, %s has origin %q, want %q", src, d.Origin, phalanx.OriginLocal)
	}
	t.Logf("own and imported decisions: stood down %v after the request, back %v after the ceasefire's end",
		stood.Sub(began).Round(time.Millisecond), back.Sub(cf.Until).Round(time.Millisecond))

	// A lift of the value by an operator removes the member's own
	// detection for good: the next reconcile must not bring it back.
	if _, err := c1.DeleteDecision(ctx, src, "test lift"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []*Member{m1}, []netip.Prefix{own}, deadline)
	m1.reconcile()
	if _, held := m1.Decisions().Lookup(own.Addr()); held {
		t.Errorf("%s came back after its lift", src)
	}
}
