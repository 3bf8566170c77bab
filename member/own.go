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

// maxOwn bounds this member's own decisions: each is keyed by an address
// an attacker chooses (a flood of distinct addresses, each banned on first
// sight, would grow them without end). The bound is the alliance's on its
// decisions (alliance maxDecisions), and so is the rule: when full, the
// one expiring first makes room for the new one.
const maxOwn = 1 << 20

// ownDropBatch is how many values evicted from the own decisions wait
// before the set is rid of them (dropEvicted): that needs the member's
// lock, which detection does not take per decision under a flood.
const ownDropBatch = 1024

// ownEvictWarnEvery spaces the warnings that own decisions are evicted.
const ownEvictWarnEvery = time.Minute

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
	// cap is maxOwn, smaller in tests that exercise eviction.
	cap int
	// dropped is the values evicted to stay under cap whose decisions
	// the set may still hold, until dropEvicted.
	dropped []netip.Prefix
	// evicted counts the evictions, for /metrics; warned is when the
	// last warning of them was logged.
	evicted atomic.Uint64
	warned  time.Time

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
// of the ceasefire brings it back. A new value beyond the cap evicts the
// own decision expiring first.
func (m *Member) decideLocal(d phalanx.Decision) {
	d.Origin = phalanx.OriginLocal
	now := m.clock.Now()
	m.own.mu.Lock()
	if m.own.byValue == nil {
		m.own.byValue = map[netip.Prefix]phalanx.Decision{}
	}
	v := phalanx.NormalizePrefix(d.Value)
	cur, ok := m.own.byValue[v]
	evicted := 0
	if !ok {
		evicted = m.own.makeRoom()
	}
	if !ok || cur.Until().Before(d.Until()) {
		m.own.byValue[v] = d
		m.own.pushExpiry(v, d.Until())
	}
	drop := len(m.own.dropped) >= ownDropBatch
	warn := evicted > 0 && now.Sub(m.own.warned) >= ownEvictWarnEvery
	if warn {
		m.own.warned = now
	}
	m.own.mu.Unlock()
	if !m.own.suspends(d, now) {
		m.ds.Add(d)
	}
	if warn {
		m.log.Warn("member: own decisions at their bound: each new address evicts the decision expiring first",
			"bound", m.own.limit(), "evicted_total", m.own.evicted.Load())
	}
	if drop {
		m.mu.Lock()
		m.dropEvicted(now)
		m.mu.Unlock()
	}
}

// limit is the bound on own decisions.
func (o *own) limit() int {
	if o.cap > 0 {
		return o.cap
	}
	return maxOwn
}

// makeRoom, with o.mu held, evicts the decisions expiring first until one
// more fits under the bound, and returns how many it evicted. They leave
// the set later, a batch at a time (dropEvicted).
func (o *own) makeRoom() int {
	n := 0
	for len(o.byValue) >= o.limit() && len(o.expiries) > 0 {
		e := heap.Pop(&o.expiries).(ownExpiry)
		if d, ok := o.byValue[e.value]; ok && d.Until().UnixNano() == e.until {
			delete(o.byValue, e.value)
			o.dropped = append(o.dropped, e.value)
			n++
		}
	}
	o.evicted.Add(uint64(n))
	return n
}

// dropEvicted, with the member's lock held, deletes from the set the
// decisions on the values evicted from own since the last call — unless
// this member decided the value again since, or the alliance or an import
// holds it: their record is theirs as much as this member's, and leaves
// the set with them (apply deletes it when the alliance's expires).
func (m *Member) dropEvicted(now time.Time) {
	m.own.mu.Lock()
	defer m.own.mu.Unlock()
	if len(m.own.dropped) == 0 {
		return
	}
	m.imp.mu.Lock()
	defer m.imp.mu.Unlock()
	for _, v := range m.own.dropped {
		if _, ok := m.own.byValue[v]; ok {
			continue
		}
		if m.fold != nil {
			if fd, ok := m.fold.InForce(v, now); ok && !m.fold.Suspended(fd.Decision, now) {
				continue
			}
		}
		if d, ok := m.imp.byValue[v]; ok && d.Until().After(now) && !m.own.suspends(d, now) {
			continue
		}
		m.ds.Delete(v)
	}
	m.own.dropped = nil
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
	m.dropEvicted(now)
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

func (h ownExpiries) Len() int { return len(h) }
func (h ownExpiries) Less(i, j int) bool {
	// Ties by value, so that eviction does not depend on map order.
	if h[i].until != h[j].until {
		return h[i].until < h[j].until
	}
	return h[i].value.Compare(h[j].value) < 0
}
func (h ownExpiries) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *ownExpiries) Push(x any)   { *h = append(*h, x.(ownExpiry)) }
func (h *ownExpiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
