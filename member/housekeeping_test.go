package member

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
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
	for end := time.Now().Add(deadline); ; {
		if time.Now().After(end) {
			t.Fatal("the fold never held still long enough to test")
		}
		var err error
		if at, err = m.snapshotSince(0); err != nil {
			t.Fatal(err)
		}
		if at == 0 {
			// Nothing folded yet: 0 is also "no snapshot on disk", which
			// snapshotSince always writes. Wait for the genesis.
			time.Sleep(time.Millisecond) // another goroutine's fold, polled
			continue
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

// TestMemberHeap measures a member's heap per decision held, with the
// embedded hub in the same process: PHALANX_MEMBER_HEAP=200000 go test
// -run TestMemberHeap ./member (with PHALANX_MEMBER_HEAP_PROFILE=FILE for
// a heap profile at the end). A second member publishes that many reports,
// each against a distinct address, in batches; the member folds them, and
// the test takes the heap after a GC with the member still running, and
// the peak HeapInuse seen every 100 ms meanwhile (a snapshot and the
// periodic reconciles included).
func TestMemberHeap(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PHALANX_MEMBER_HEAP"))
	if n <= 0 {
		t.Skip("set PHALANX_MEMBER_HEAP to the number of decisions")
	}
	a := newTestAlliance(t, 2, func(c *charter.Charter) { c.Policy.MaxReportsPerMinute = 1_000_000 })
	m := a.ms[0].m
	a.ms[1].stop(t)
	r := openRogue(t, a.dirs[1])
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	last := publishReports(t, r, n)
	waitApplied(t, []*Member{m}, last, 10*time.Minute)
	folded := time.Since(start)
	t0 := time.Now()
	m.reconcileChanged(m.reconcileMark())
	t1 := time.Now()
	m.reconcile()
	t2 := time.Now()
	if err := m.saveSnapshot(); err != nil {
		t.Fatal(err)
	}
	t.Logf("periodic reconcile with nothing changed %v, full reconcile %v, snapshot %v",
		t1.Sub(t0).Round(time.Microsecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	close(stop)
	<-sampled
	if held := m.ds.Len(); held < n {
		t.Fatalf("the member holds %d decisions of %d", held, n)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d decisions folded in %v: heap in use %.0f MB (%.0f B/decision) after a GC, peak %.0f MB (%.0f B/decision)",
		n, folded.Round(time.Second), float64(ms.HeapInuse)/(1<<20), float64(ms.HeapInuse)/float64(n),
		float64(peak.Load())/(1<<20), float64(peak.Load())/float64(n))
	if path := os.Getenv("PHALANX_MEMBER_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
	}
}
