package member

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
)

// manual is a manual decision body, as the API publishes one.
func manual(v string) ledger.Report {
	now := time.Now().UTC()
	return ledger.Report{Value: netip.MustParsePrefix(v), Type: phalanx.Ban, Scenario: "manual",
		Duration: time.Hour, FirstSeen: now, LastSeen: now, Events: 1, Reason: "test"}
}

// rejected is how many envelopes m's fold refused for reason.
func rejected(m *Member, reason string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fold.Rejections()[reason]
}

// waitRejected waits until every member refused at least n envelopes for reason.
func waitRejected(t *testing.T, ms []*Member, reason string, n uint64) {
	t.Helper()
	end := time.Now().Add(deadline)
	for _, m := range ms {
		for rejected(m, reason) < n {
			if time.Now().After(end) {
				t.Fatalf("member %s refused %d envelopes for %s, want %d", m.ID(), rejected(m, reason), reason, n)
			}
			time.Sleep(10 * time.Millisecond) // polling a fold other goroutines drive, with a deadline
		}
	}
}

// TestExpel: only a council member may expel; once the expulsion is in
// the ledger every member refuses the expelled member's later envelopes,
// whether it publishes through its own running member or by hand.
func TestExpel(t *testing.T) {
	ctx := t.Context()
	a := newTestAlliance(t, 3, nil)
	ms := []*Member{a.ms[0].m, a.ms[1].m, a.ms[2].m}
	c1, err := Client(a.dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Client(a.dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	c3, err := Client(a.dirs[2])
	if err != nil {
		t.Fatal(err)
	}
	bad := ms[2].ID()

	// Member 3's word counts before its expulsion.
	before := netip.MustParsePrefix("203.0.113.31/32")
	if _, err := c3.AddDecision(ctx, DecisionRequest{Value: "203.0.113.31", Duration: "1h", Reason: "before"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		ch, unsub := m.Decisions().Subscribe(64)
		if _, ok := m.Decisions().Lookup(before.Addr()); !ok {
			waitFor(t, ch, decisions.Added, before)
		}
		unsub()
	}

	// Refused before anything is published: not on the council, itself,
	// unknown, no reason.
	for _, tc := range []struct {
		c      *APIClient
		id     ledger.MemberID
		reason string
		want   string
	}{
		{c2, bad, "compromised", "only a council member may expel"},
		{c1, ms[0].ID(), "compromised", "cannot expel itself"},
		{c1, ledger.MemberID(strings.Repeat("ab", 16)), "compromised", "no member"},
		{c1, bad, "", "reason"},
		{c1, "not-an-id", "compromised", "member:"},
	} {
		if _, err := tc.c.Expel(ctx, tc.id, tc.reason); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("expel %s: %v, want an error saying %q", tc.id, err, tc.want)
		}
	}

	pub, err := c1.Expel(ctx, bad, "its key leaked")
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, ms, pub.Seq, deadline)
	if _, err := c1.Expel(ctx, bad, "again"); err == nil || !strings.Contains(err.Error(), "already expelled") {
		t.Errorf("expelling twice: %v", err)
	}
	for _, m := range ms {
		_, all := m.memberStates()
		for _, s := range all {
			if s.ID == bad && !s.Expelled {
				t.Errorf("member %s does not see %s expelled", m.ID(), bad)
			}
		}
	}

	// Its running member still publishes (it is a signed envelope like
	// any other) and everybody refuses it — itself included.
	base := rejected(ms[0], alliance.ReasonExpelled)
	if _, err := c3.AddDecision(ctx, DecisionRequest{Value: "203.0.113.32", Duration: "1h", Reason: "after"}); err != nil {
		t.Fatal(err)
	}
	waitRejected(t, ms, alliance.ReasonExpelled, base+1)
	// A copy of its key in an attacker's hands fares no better.
	rogue := openRogue(t, a.dirs[2])
	seq := rogue.publish(t, rogue.seal(t, ledger.KindManual, manual("203.0.113.33/32"), time.Now()))
	waitApplied(t, ms, seq, deadline)
	waitRejected(t, ms, alliance.ReasonExpelled, base+2)
	for _, m := range ms {
		for _, v := range []string{"203.0.113.32", "203.0.113.33"} {
			if _, ok := m.Decisions().Lookup(netip.MustParseAddr(v)); ok {
				t.Errorf("member %s enforces %s, reported by the expelled member", m.ID(), v)
			}
		}
		if _, ok := m.Decisions().Lookup(before.Addr()); !ok {
			t.Errorf("member %s dropped %s, decided before the expulsion", m.ID(), before)
		}
	}
	sameFold(t, ms, time.Now())
}

// TestKeyRotation: a member rotates its key through the API; its later
// envelopes verify with the new key at every member, survive a restart
// (the new key is what identity.json holds, under the same member ID),
// and an envelope signed with the old key is refused everywhere.
func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	a := newTestAlliance(t, 3, nil)
	ms := []*Member{a.ms[0].m, a.ms[1].m, a.ms[2].m}
	dir := a.dirs[1]
	old := ms[1].id // before Run's publisher owns it: nothing is published yet
	c2, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}

	rot, err := c2.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Member != old.ID || bytes.Equal(rot.PublicKey, old.Public) || len(rot.PublicKey) != 32 {
		t.Fatalf("rotation: %+v (old key %x)", rot, old.Public)
	}
	waitApplied(t, ms, rot.Seq, deadline)
	for _, m := range ms {
		_, all := m.memberStates()
		for _, s := range all {
			if s.ID == old.ID && !bytes.Equal(s.PublicKey, rot.PublicKey) {
				t.Errorf("member %s still knows %s by key %x", m.ID(), old.ID, s.PublicKey)
			}
		}
	}
	onDisk, err := ledger.LoadIdentity(filepath.Join(dir, fileIdentity))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.ID != old.ID || !bytes.Equal(onDisk.Public, rot.PublicKey) {
		t.Fatalf("identity.json after the rotation: ID %s key %x; want ID %s key %x", onDisk.ID, onDisk.Public, old.ID, rot.PublicKey)
	}

	// The rotated member keeps working, before and after a restart.
	check := func(v string) {
		t.Helper()
		p := netip.MustParsePrefix(v + "/32")
		pub, err := c2.AddDecision(ctx, DecisionRequest{Value: v, Duration: "1h", Reason: "signed with the new key"})
		if err != nil {
			t.Fatal(err)
		}
		waitApplied(t, ms, pub.Seq, deadline)
		for _, m := range ms {
			if _, ok := m.Decisions().Lookup(p.Addr()); !ok {
				t.Errorf("member %s refused %s from the rotated member", m.ID(), v)
			}
		}
	}
	check("203.0.113.41")
	a.ms[1].stop(t)
	a.ms[1] = start(t, dir)
	ms[1] = a.ms[1].m
	if c2, err = Client(dir); err != nil {
		t.Fatal(err)
	}
	check("203.0.113.42")

	// Whoever kept the old key cannot speak for the member any more.
	base := rejected(ms[0], alliance.ReasonBadSignature)
	thief := openRogue(t, dir)
	thief.id = old
	seq := thief.publish(t, thief.seal(t, ledger.KindManual, manual("203.0.113.43/32"), time.Now()))
	waitApplied(t, ms, seq, deadline)
	waitRejected(t, ms, alliance.ReasonBadSignature, base+1)
	for _, m := range ms {
		if _, ok := m.Decisions().Lookup(netip.MustParseAddr("203.0.113.43")); ok {
			t.Errorf("member %s enforces a decision signed with the retired key", m.ID())
		}
	}
	sameFold(t, ms, time.Now())
}
