package member

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/migrate"
)

// housekeeping publishes heartbeats, saves snapshots and reconciles the
// set with ceasefires that ended by themselves.
func (m *Member) housekeeping(ctx context.Context) error {
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	snap := time.NewTicker(snapshotEvery)
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			beat()
		case <-snap.C:
			if err := m.saveSnapshot(); err != nil {
				m.log.Warn("member: snapshot", "err", err)
			}
		case <-rec.C:
			m.reconcile()
		}
	}
}

// saveSnapshot writes the fold's snapshot, so that a restart reads only
// the ledger after it.
func (m *Member) saveSnapshot() error {
	m.mu.Lock()
	if m.fold == nil {
		m.mu.Unlock()
		return nil
	}
	b, err := m.fold.Snapshot()
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("member: snapshot: %w", err)
	}
	return writeFile(filepath.Join(m.dir, fileSnapshot), b, 0o600)
}

// reconcile makes the set's alliance decisions exactly the fold's
// decisions that no ceasefire suspends.
func (m *Member) reconcile() {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[netip.Prefix]bool{}
	for _, d := range m.fold.Decisions(now) {
		if m.fold.Suspended(d.Decision, now) {
			continue
		}
		want[d.Value] = true
		m.ds.Add(d.Decision)
	}
	cs := m.fold.Ceasefires(now)
	suspended := m.reconcileOwn(cs, now)
	for _, d := range m.ds.List() {
		switch {
		case want[d.Value]:
		case d.Origin == phalanx.OriginLocal && !suspended[d.Value]:
		case migrate.IsImported(d.Origin) && !m.own.suspends(d, now):
		default:
			// The alliance no longer wants it, or a ceasefire covers
			// this member's own or imported decision.
			m.ds.Delete(d.Value)
		}
	}
	m.enforceImported()
}
