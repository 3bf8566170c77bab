package member

import (
	"net/netip"
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

	// truce is the ceasefires in force as of the last fold change, read
	// without the member's lock by detection (which must not wait on it
	// under a flood).
	truce atomic.Pointer[[]ledger.Ceasefire]
	// hadTruce says a ceasefire was in force at the last reconcile: its
	// end is when own decisions must be put back.
	hadTruce bool
}

// suspends says whether a ceasefire in force covers d.
func (o *own) suspends(d phalanx.Decision, now time.Time) bool {
	cs := o.truce.Load()
	if cs == nil {
		return false
	}
	for _, c := range *cs {
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
	}
	m.own.mu.Unlock()
	if !m.own.suspends(d, m.clock.Now()) {
		m.ds.Add(d)
	}
}

// reconcileOwn, called by reconcile with the member's lock held, forgets
// expired own decisions, enforces those no ceasefire covers, and returns
// the values a ceasefire covers (reconcile removes them from the set unless
// the alliance itself wants them).
func (m *Member) reconcileOwn(cs []ledger.Ceasefire, now time.Time) map[netip.Prefix]bool {
	m.own.truce.Store(&cs)
	suspended := map[netip.Prefix]bool{}
	m.own.mu.Lock()
	defer m.own.mu.Unlock()
	// With no ceasefire now or at the last reconcile, the set holds every
	// own decision already (decideLocal added it): only forget the
	// expired, without re-adding thousands of decisions under a flood.
	restore := len(cs) > 0 || m.own.hadTruce
	m.own.hadTruce = len(cs) > 0
	for v, d := range m.own.byValue {
		switch {
		case !d.Until().After(now):
			delete(m.own.byValue, v)
		case !restore:
		case m.own.suspends(d, now):
			suspended[v] = true
		default:
			m.ds.Add(d)
		}
	}
	return suspended
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
