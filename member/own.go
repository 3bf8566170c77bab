package member

import (
	"container/heap"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/ledger"
)

// own keeps the decisions this member takes alone — its own detections —
// apart from the set they are enforced from, so that a ceasefire can
// suspend them like the alliance's decisions and bring them back when it
// ends. Without it a ceasefire stood down only what the ledger decided,
// and the member went on enforcing what it had detected itself.
type own struct {
	mu      sync.Mutex
	byValue map[netip.Prefix]phalanx.Decision
	// expiries orders byValue by expiry, so that the periodic pass
	// forgets the expired without walking them all. An entry is stale
	// when its value's decision was lengthened or lifted since: it is
	// skipped when it comes out, and the heap rebuilt from byValue when
	// stale entries outnumber live ones.
	expiries ownExpiries

	// truce is the ceasefires in force as of the last fold change, read
	// without the member's lock by detection (which must not wait on it
	// under a flood).
	truce atomic.Pointer[[]ledger.Ceasefire]
	// applied is the ceasefires in force at appliedAt, the last
	// reconcile: only a change of them (one began, ended or ran out)
	// brings back own decisions, those they covered.
	applied   []ledger.Ceasefire
	appliedAt time.Time
}

// suspends says whether a ceasefire in force covers d.
func (o *own) suspends(d phalanx.Decision, now time.Time) bool {
	cs := o.truce.Load()
	return cs != nil && coveredBy(*cs, d, now)
}

// coveredBy says whether one of the ceasefires cs covers d at now.
func coveredBy(cs []ledger.Ceasefire, d phalanx.Decision, now time.Time) bool {
	for _, c := range cs {
		if alliance.Covers(c, d, now) {
			return true
		}
	}
	return false
}

// decideLocal enforces d, this member's own detection, unless a ceasefire
// covers it; either way it is remembered until it expires, so that the end
// of the ceasefire brings it back.
func (m *Member) decideLocal(d phalanx.Decision) {
	d.Origin = phalanx.OriginLocal
	m.own.mu.Lock()
	if m.own.byValue == nil {
		m.own.byValue = map[netip.Prefix]phalanx.Decision{}
	}
	v := phalanx.NormalizePrefix(d.Value)
	if cur, ok := m.own.byValue[v]; !ok || cur.Until().Before(d.Until()) {
		m.own.byValue[v] = d
		m.own.pushExpiry(v, d.Until())
	}
	m.own.mu.Unlock()
	if !m.own.suspends(d, m.clock.Now()) {
		m.ds.Add(d)
	}
}

// pushExpiry, with o.mu held, notes that the decision on v now ends at
// until.
func (o *own) pushExpiry(v netip.Prefix, until time.Time) {
	if len(o.expiries) >= 2*len(o.byValue)+64 {
		// Mostly stale: rebuild from what is remembered, which holds
		// until already.
		o.expiries = o.expiries[:0]
		for v, d := range o.byValue {
			o.expiries = append(o.expiries, ownExpiry{until: d.Until().UnixNano(), value: v})
		}
		heap.Init(&o.expiries)
		return
	}
	heap.Push(&o.expiries, ownExpiry{until: until.UnixNano(), value: v})
}

// forgetExpired, with o.mu held, forgets the decisions expired at now.
func (o *own) forgetExpired(now time.Time) {
	for len(o.expiries) > 0 && o.expiries[0].until <= now.UnixNano() {
		e := heap.Pop(&o.expiries).(ownExpiry)
		if d, ok := o.byValue[e.value]; ok && !d.Until().After(now) {
			delete(o.byValue, e.value)
		}
	}
}

// reconcileOwn, called by reconcile with the member's lock held, forgets
// expired own decisions and, if the ceasefires in force changed since the
// last call, enforces again those the former ones covered and the new
// ones do not (reconcile's unmirror removes from the set those a new one
// covers, unless the alliance itself wants them). The others are in the
// set already (decideLocal added them, restoreOwn put them back), so a
// periodic pass costs only the expired, and a change of ceasefires one
// walk adding only what comes back, not thousands of decisions re-added
// under the lock every pass.
func (m *Member) reconcileOwn(cs []ledger.Ceasefire, now time.Time) {
	m.own.truce.Store(&cs)
	m.own.mu.Lock()
	defer m.own.mu.Unlock()
	m.own.forgetExpired(now)
	was, at := m.own.applied, m.own.appliedAt
	m.own.applied, m.own.appliedAt = cs, now
	if len(was) == 0 || slices.Equal(cs, was) {
		return
	}
	for _, d := range m.own.byValue {
		// At the last reconcile, when the former ceasefires were in
		// force: now, one that ran out covers nothing.
		if coveredBy(was, d, at) && !coveredBy(cs, d, now) {
			m.ds.Add(d)
		}
	}
}

// liftOwn drops this member's own decision on a value the alliance lifted
// (an accepted KindLift, from any member the charter lets lift): a lift is
// deliberate, and without this the member's own detection of the value
// would stay enforced, or come back at the next reconcile.
func (m *Member) liftOwn(env ledger.Envelope) {
	l, err := ledger.DecodeBody[ledger.Lift](env)
	if err != nil || !l.Value.IsValid() {
		return
	}
	v := phalanx.NormalizePrefix(l.Value)
	m.own.mu.Lock()
	_, ok := m.own.byValue[v]
	delete(m.own.byValue, v)
	m.own.mu.Unlock()
	if !ok {
		return
	}
	if cur, found := m.ds.Lookup(v.Addr()); found && cur.Value == v && cur.Origin == phalanx.OriginLocal {
		m.ds.Delete(v)
	}
}

// restoreOwn puts this member's own decision on v back in the set, if it
// has one still in force that no ceasefire covers (the alliance's decision
// on v expired, and its removal took the merged record).
func (m *Member) restoreOwn(v netip.Prefix, now time.Time) {
	m.own.mu.Lock()
	d, ok := m.own.byValue[phalanx.NormalizePrefix(v)]
	m.own.mu.Unlock()
	if ok && d.Until().After(now) && !m.own.suspends(d, now) {
		m.ds.Add(d)
	}
}

// ownExpiry is when this member's own decision on value ends, in Unix
// nanoseconds (a third of a time.Time's size, times a million).
type ownExpiry struct {
	until int64
	value netip.Prefix
}

// ownExpiries is a min-heap of ownExpiry by until (container/heap).
type ownExpiries []ownExpiry

func (h ownExpiries) Len() int           { return len(h) }
func (h ownExpiries) Less(i, j int) bool { return h[i].until < h[j].until }
func (h ownExpiries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ownExpiries) Push(x any)        { *h = append(*h, x.(ownExpiry)) }
func (h *ownExpiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
