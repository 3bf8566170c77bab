package member

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
	"github.com/phalanx-defence/phalanx/natsbus/natstest"
)

// TestAllianceOnCluster runs an alliance whose ledger is a three-replica
// stream on an external three-node cluster, and loses the very node the
// second member was invited to: decisions keep flowing and none is lost.
func TestAllianceOnCluster(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	urls, stopNode := natstest.Cluster(t, 3)
	d1 := filepath.Join(t.TempDir(), "founder")
	d2 := filepath.Join(t.TempDir(), "second")
	info1, err := InitCluster(d1, "cluster alliance", natsbus.Config{URLs: urls, Replicas: 3}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(d1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.Embedded || !slices.Equal(cfg.NATS.URLs, urls) || cfg.NATS.Replicas != 3 {
		t.Fatalf("founder's nats config: %+v", cfg.NATS)
	}
	m1 := start(t, d1).m
	tok, err := Invite(d1, ledger.RoleMember, "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(tok, d2, "second", nil, now); err != nil {
		t.Fatal(err)
	}
	m2 := start(t, d2)
	changes, unsub := m2.m.Decisions().Subscribe(256)
	defer unsub()
	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}

	first := netip.MustParsePrefix("192.0.2.7/32")
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.7", Reason: "before"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, first)

	// Node 0 is the hub the invitation named and the only URL member 2
	// has: it reaches the others through the servers node 0 advertised.
	stopNode(0)
	second := netip.MustParsePrefix("192.0.2.8/32")
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.8", Reason: "after a node died"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, second)
	// Member 2 lost the node it was connected to: it reconnects to
	// another, and what it publishes reaches member 1.
	third := netip.MustParsePrefix("192.0.2.9/32")
	c2, err := Client(d2)
	if err != nil {
		t.Fatal(err)
	}
	changes1, unsub1 := m1.Decisions().Subscribe(256)
	defer unsub1()
	if _, err := c2.AddDecision(ctx, DecisionRequest{Value: "192.0.2.9", Reason: "from the member whose node died"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m1.Decisions().Lookup(third.Addr()); !ok {
		waitFor(t, changes1, decisions.Added, third)
	}
	// Each member folds on its own: member 2 may apply its own decision
	// after member 1 did.
	waitApplied(t, []*Member{m1, m2.m}, lastSeq(t, m1), deadline)
	for _, v := range []netip.Prefix{first, second, third} {
		if _, ok := m2.m.Decisions().Lookup(v.Addr()); !ok {
			t.Errorf("member 2 lost %s", v)
		}
		if _, ok := m1.Decisions().Lookup(v.Addr()); !ok {
			t.Errorf("member 1 lost %s", v)
		}
	}
	sameFold(t, []*Member{m1, m2.m}, time.Now())

	rep, err := VerifyLedger(ctx, d1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Accepted != rep.Entries || rep.Authors != 2 {
		t.Fatalf("ledger on the cluster after losing a node: %+v", rep)
	}
	if info1.Hub == "" {
		t.Error("no hub for invitations")
	}
}
