package alliance

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// snapshotVersion changes whenever the snapshot's shape does; an old
// snapshot is refused and the member replays the ledger instead.
// Version 2: MemberState's fields gained snake_case JSON names (a version 1
// snapshot would restore them as zero values, e.g. un-expel a member).
const snapshotVersion = 2

// snapshot is the whole fold state. Ordered state (members, LRU lists,
// nonces) is kept in order so a restored fold evicts exactly as the
// original would have.
type snapshot struct {
	Version    int               `json:"version"`
	Alliance   string            `json:"alliance"`
	Applied    uint64            `json:"applied"`
	Charter    charter.Charter   `json:"charter"`
	Members    []member          `json:"members"`
	Decisions  []Decision        `json:"decisions"`
	Pending    []pending         `json:"pending"`
	Sightings  []sightings       `json:"sightings"`
	Nonces     []string          `json:"nonces"`
	Ceasefires []ceasefire       `json:"ceasefires"`
	Drills     []DrillResult     `json:"drills"`
	Breaches   []Breach          `json:"breaches"`
	Rejections map[string]uint64 `json:"rejections"`
}

// Snapshot encodes the fold's state; Restore continues from it at
// Applied()+1.
func (f *Fold) Snapshot() ([]byte, error) {
	s := snapshot{
		Version: snapshotVersion, Alliance: f.id, Applied: f.applied, Charter: f.charter,
		Nonces: f.nonceOrder, Ceasefires: f.ceasefires, Drills: f.drills, Breaches: f.breaches,
		Rejections: f.rejections,
	}
	for _, id := range f.order {
		s.Members = append(s.Members, *f.members[id])
	}
	for _, d := range f.decisions {
		s.Decisions = append(s.Decisions, *d)
	}
	sortDecisions(s.Decisions)
	for e := f.pendingLRU.Front(); e != nil; e = e.Next() {
		s.Pending = append(s.Pending, *e.Value.(*pending))
	}
	for e := f.sightingLRU.Front(); e != nil; e = e.Next() {
		s.Sightings = append(s.Sightings, *e.Value.(*sightings))
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("alliance: snapshot: %w", err)
	}
	return b, nil
}

// Restore rebuilds a fold from genesis and a snapshot taken by Snapshot;
// apply the ledger from Applied()+1 on.
func Restore(genesis ledger.Envelope, snap []byte, opts Options) (*Fold, error) {
	f, err := New(genesis, opts)
	if err != nil {
		return nil, err
	}
	var s snapshot
	if err := json.Unmarshal(snap, &s); err != nil {
		return nil, fmt.Errorf("alliance: restore: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("alliance: restore: snapshot version %d, want %d: replay the ledger instead", s.Version, snapshotVersion)
	}
	if s.Alliance != f.id {
		return nil, fmt.Errorf("alliance: restore: snapshot of alliance %s, not %s", s.Alliance, f.id)
	}
	if len(s.Members) > maxMembers || len(s.Pending) > maxPendingValues || len(s.Sightings) > maxSightingSources ||
		len(s.Nonces) > maxNonces || len(s.Decisions) > maxDecisions {
		return nil, fmt.Errorf("alliance: restore: snapshot exceeds the fold's caps")
	}
	f.applied = s.Applied
	f.charter, f.policy = s.Charter, withDefaults(s.Charter.Policy)
	f.members, f.order = make(map[ledger.MemberID]*member, len(s.Members)), nil
	for i := range s.Members {
		m := s.Members[i]
		f.members[m.ID] = &m
		f.order = append(f.order, m.ID)
	}
	for i := range s.Decisions {
		d := s.Decisions[i]
		f.decisions[d.Value] = &d
		f.bits[d.Value.Bits()]++
		heap.Push(&f.expiries, expiry{until: d.Until(), value: d.Value})
	}
	for i := range s.Pending {
		p := s.Pending[i]
		f.pending[p.Value] = f.pendingLRU.PushBack(&p)
	}
	for i := range s.Sightings {
		ss := s.Sightings[i]
		f.sighted[ss.Source] = f.sightingLRU.PushBack(&ss)
	}
	f.nonceOrder = s.Nonces
	for _, n := range s.Nonces {
		f.nonces[n] = struct{}{}
	}
	f.ceasefires, f.drills, f.breaches = s.Ceasefires, s.Drills, s.Breaches
	if s.Rejections != nil {
		f.rejections = s.Rejections
	}
	return f, nil
}

// decisionJSON adds the alliance fields to the phalanx decision's JSON
// form (whose MarshalJSON would otherwise be promoted and drop them).
type decisionJSON struct {
	Reporters []ledger.MemberID `json:"reporters"`
	Since     uint64            `json:"since"`
}

// MarshalJSON writes the phalanx decision's fields plus reporters and since.
func (d Decision) MarshalJSON() ([]byte, error) {
	base, err := d.Decision.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	extra, err := json.Marshal(decisionJSON{Reporters: d.Reporters, Since: d.Since})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(extra, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var x decisionJSON
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	if err := d.Decision.UnmarshalJSON(b); err != nil {
		return err
	}
	d.Reporters, d.Since = x.Reporters, x.Since
	return nil
}

func sortDecisions(ds []Decision) {
	slices.SortFunc(ds, func(a, b Decision) int { return comparePrefix(a.Value, b.Value) })
}
