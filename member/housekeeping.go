package member

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/migrate"
)

// reconcileSlice is how many values reconcile looks at per hold of the
// member's lock: about a millisecond's work, so that the ledger and the
// API wait that long at most, not for a walk over a million decisions.
const reconcileSlice = 4096

// snapshotShare bounds the time spent snapshotting: the next snapshot
// comes at least snapshotShare times the last one's duration later.
const snapshotShare = 20

// housekeeping publishes heartbeats, saves snapshots and reconciles the
// set with ceasefires that ended by themselves.
func (m *Member) housekeeping(ctx context.Context) error {
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	snap := time.NewTimer(snapshotEvery)
	defer snap.Stop()
	rec := time.NewTicker(reconcileEvery)
	defer rec.Stop()
	beat := func() {
		m.mu.Lock()
		applied := m.fold.Applied()
		m.mu.Unlock()
		m.send(ctx, outgoing{kind: ledger.KindHeartbeat, body: ledger.Heartbeat{Applied: applied}})
	}
	beat()
	saved := m.restored // the fold position of the snapshot on disk
	last := m.reconcileMark()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			beat()
		case <-snap.C:
			start := time.Now()
			applied, err := m.snapshotSince(saved)
			if err != nil {
				m.log.Warn("member: snapshot", "err", err)
			} else {
				saved = applied
			}
			snap.Reset(max(snapshotEvery, snapshotShare*time.Since(start)))
		case <-rec.C:
			last = m.reconcileChanged(last)
		}
	}
}

// saveSnapshot writes the fold's snapshot, so that a restart reads only
// the ledger after it.
func (m *Member) saveSnapshot() error {
	_, err := m.snapshotSince(0)
	return err
}

// snapshotSince writes the fold's snapshot unless the fold is still at
// position saved, the snapshot on disk; it returns the position written.
// The copy is taken under the member's lock, the encoding (the costly
// part) and the write after it.
func (m *Member) snapshotSince(saved uint64) (uint64, error) {
	m.mu.Lock()
	if m.fold == nil || (saved != 0 && m.fold.Applied() == saved) {
		m.mu.Unlock()
		return saved, nil
	}
	c := m.fold.Capture()
	m.mu.Unlock()
	b, err := c.Encode()
	if err != nil {
		return saved, fmt.Errorf("member: snapshot: %w", err)
	}
	if err := writeFile(filepath.Join(m.dir, fileSnapshot), b, 0o600); err != nil {
		return saved, err
	}
	return c.Applied(), nil
}

// reconcileMark is what the periodic reconcile compares the fold with to
// know whether the set may have drifted from it.
type reconcileMark struct {
	ceasefires []ledger.Ceasefire // in force at the last look
	removals   uint64             // the fold's Removals then
}

func (m *Member) reconcileMark() reconcileMark {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return reconcileMark{ceasefires: m.fold.Ceasefires(now), removals: m.fold.Removals()}
}

// reconcileChanged is the periodic reconcile. The ledger path (apply)
// mirrors every decision the fold adds, lifts or expires as it folds, so
// the whole set needs comparing with the fold only when the ceasefires
// in force changed (one started, ended or ran out) or the fold evicted
// more decisions than it remembers; otherwise only the values the fold
// evicted to stay under its cap are looked at, this member's expired own
// decisions forgotten, and its imported decisions put back if the fold
// removed decisions they may have been merged with.
func (m *Member) reconcileChanged(last reconcileMark) reconcileMark {
	now := m.clock.Now()
	m.mu.Lock()
	cs := m.fold.Ceasefires(now)
	evicted, all := m.fold.Evicted()
	removals := m.fold.Removals()
	m.mu.Unlock()
	next := reconcileMark{ceasefires: cs, removals: removals}
	if all || !slices.Equal(cs, last.ceasefires) {
		m.reconcile()
		return next
	}
	m.mu.Lock()
	m.reconcileOwn(cs, now) // under the lock, as own's ceasefires follow the fold's
	m.mu.Unlock()
	m.unmirror(evicted)
	if removals != last.removals {
		m.enforceImported()
	}
	return next
}

// reconcile makes the set's alliance decisions exactly the fold's
// decisions that no ceasefire suspends, and applies the ceasefires in
// force to this member's own and imported decisions. It walks the fold's
// values, then the set's, a slice at a time under the member's lock:
// each value is judged on the fold and the set as they are then, so what
// the ledger path does in between is never undone.
func (m *Member) reconcile() {
	now := m.clock.Now()
	m.mu.Lock()
	m.reconcileOwn(m.fold.Ceasefires(now), now)
	values := m.fold.Values()
	m.mu.Unlock()
	for part := range slices.Chunk(values, reconcileSlice) {
		m.mu.Lock()
		now := m.clock.Now()
		for _, v := range part {
			d, ok := m.fold.InForce(v, now)
			if !ok || m.fold.Suspended(d.Decision, now) {
				continue
			}
			if cur, ok := m.ds.Get(v); ok && !cur.Until().Before(d.Until()) && cur.Type.Strength() >= d.Type.Strength() {
				continue // in force already, as long and as hard
			}
			m.ds.Add(d.Decision)
		}
		m.mu.Unlock()
	}
	m.unmirror(m.ds.Values())
	m.enforceImported()
}

// unmirror deletes from the set, of the values vs, those it holds that
// the fold no longer wants and that are not this member's own or imported
// decisions outside a ceasefire; this member's own decision on a deleted
// value comes back if it outlasts the alliance's (as on an expiry).
func (m *Member) unmirror(vs []netip.Prefix) {
	for part := range slices.Chunk(vs, reconcileSlice) {
		m.mu.Lock()
		now := m.clock.Now()
		for _, v := range part {
			d, ok := m.ds.Get(v)
			if !ok {
				continue
			}
			if fd, ok := m.fold.InForce(v, now); ok && !m.fold.Suspended(fd.Decision, now) {
				continue
			}
			switch {
			case d.Origin == phalanx.OriginLocal && !m.own.suspends(d, now):
			case migrate.IsImported(d.Origin) && !m.own.suspends(d, now):
			default:
				// The alliance no longer wants it, or a ceasefire covers
				// this member's own or imported decision.
				m.ds.Delete(v)
				m.restoreOwn(v, now)
			}
		}
		m.mu.Unlock()
	}
}
