package member

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
)

// TestReconcile: the full reconcile puts back an alliance decision the set
// lost and deletes one the fold does not hold; the periodic one does that
// only when something it watches changed (here: the ceasefires in force),
// since the ledger path mirrors every change as it folds.
func TestReconcile(t *testing.T) {
	ctx := t.Context()
	a := newTestAlliance(t, 1, nil)
	m := a.ms[0].m
	c, err := Client(a.dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	decided := netip.MustParsePrefix("198.51.100.81/32")
	if _, err := c.AddDecision(ctx, DecisionRequest{Value: decided.Addr().String(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, []*Member{m}, []netip.Prefix{decided}, deadline)
	stray := netip.MustParsePrefix("198.51.100.82/32")
	now := time.Now()
	disturb := func() {
		m.ds.Delete(decided)
		m.ds.Add(phalanx.Decision{Value: stray, Type: phalanx.Ban, Scenario: "test", Origin: phalanx.OriginAlliance,
			LastSeen: now, Duration: time.Hour})
	}
	held := func(v netip.Prefix) bool { _, ok := m.ds.Get(v); return ok }

	disturb()
	mark := m.reconcileMark()
	m.reconcileChanged(mark)
	if held(decided) || !held(stray) {
		t.Errorf("the periodic reconcile with nothing changed walked the set: decided held %v, stray held %v", held(decided), held(stray))
	}
	m.reconcileChanged(reconcileMark{ceasefires: []ledger.Ceasefire{{ID: "ended", Until: now}}, removals: mark.removals})
	if !held(decided) || held(stray) {
		t.Errorf("after a ceasefire ended: decided held %v (want true), stray held %v (want false)", held(decided), held(stray))
	}

	disturb()
	m.reconcile()
	if !held(decided) || held(stray) {
		t.Errorf("after a full reconcile: decided held %v (want true), stray held %v (want false)", held(decided), held(stray))
	}
}

// TestSnapshotOnlyWhenTheFoldMoved: a snapshot is written only when the
// fold applied something since the one on disk.
func TestSnapshotOnlyWhenTheFoldMoved(t *testing.T) {
	ctx := t.Context()
	a := newTestAlliance(t, 1, nil)
	m := a.ms[0].m
	path := filepath.Join(a.dirs[0], fileSnapshot)
	var at uint64
	for {
		var err error
		if at, err = m.snapshotSince(0); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		again, err := m.snapshotSince(at)
		if m.applied() != at {
			continue // a heartbeat came in between: the fold did move
		}
		if err != nil || again != at {
			t.Fatalf("snapshotSince(%d) with the fold still there = %d, %v", at, again, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a snapshot was written though the fold did not move (stat: %v)", err)
		}
		break
	}
	c, err := Client(a.dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	v := netip.MustParsePrefix("198.51.100.83/32")
	if _, err := c.AddDecision(ctx, DecisionRequest{Value: v.Addr().String(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, []*Member{m}, []netip.Prefix{v}, deadline)
	moved, err := m.snapshotSince(at)
	if err != nil || moved <= at {
		t.Fatalf("snapshotSince(%d) after a decision = %d, %v", at, moved, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot after the fold moved: %v", err)
	}
}
