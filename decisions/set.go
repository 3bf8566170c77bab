// Package decisions holds the local decision set: the decisions in force
// on this member, merged by value, looked up by address (longest prefix
// match), expired on the clock, and streamed to subscribers (enforcers,
// the API, the alliance publisher) as changes.
package decisions

import (
	"cmp"
	"container/heap"
	"context"
	"iter"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"

	"github.com/phalanx-defence/phalanx"
)

// maxEvidence bounds the evidence lines a merged decision keeps.
const maxEvidence = 8

// Op is what happened to a decision.
type Op int

// Operations.
const (
	Added   Op = iota + 1 // new, or changed in type or expiry
	Deleted               // removed by Delete
	Expired               // its time ran out
)

func (o Op) String() string {
	switch o {
	case Added:
		return "added"
	case Deleted:
		return "deleted"
	case Expired:
		return "expired"
	}
	return "unknown"
}

// Change is one change to the set, delivered to subscribers in the order
// the set applied them.
type Change struct {
	Op       Op
	Decision phalanx.Decision
	// Resync is set on a change queued after older undelivered changes
	// were dropped because the subscriber was too slow: its view may be
	// stale, and it should rebuild it from List.
	Resync bool
	// At is when the write that made this change began, by the wall
	// clock (not the set's clock, which may be a replay's): enforcers
	// measure their apply latency from it, the set's own write (and its
	// lock-free snapshot swap) and any queueing included.
	At time.Time
}

type record struct {
	d     phalanx.Decision
	until time.Time
}

type expiry struct {
	until time.Time
	value netip.Prefix
}

// expiryHeap is a min-heap by until. Entries go stale when a decision is
// extended or deleted; they are skipped when they reach the top.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type subscriber struct {
	ch chan Change
}

// Tuning of the lock-free snapshot (see Set).
const (
	// persistBurst and persistRate bound the copy-on-write updates of the
	// snapshot: each costs tens of microseconds at a million decisions,
	// so a burst beyond this drops the snapshot and rebuilds it once.
	persistBurst = 1024
	persistRate  = 1024 // per second
	// rebuildQuiet is how long writes must pause before the snapshot is
	// rebuilt; rebuildMax bounds how long a steady stream of writes keeps
	// lookups on the locked path.
	rebuildQuiet = 20 * time.Millisecond
	rebuildMax   = time.Second
	// rebuildSpacing keeps rebuilds from taking more than about 5% of the
	// time under a steady stream of writes: a rebuild waits at least this
	// many times the last one's duration after it (at a million
	// decisions a rebuild takes about half a second and blocks writers
	// meanwhile; a member folding 10,000 reports a second would otherwise
	// rebuild every second).
	rebuildSpacing = 20
)

// Set is the decision set. It is safe for concurrent use.
//
// Decisions returned by Lookup and List share their Evidence slices with
// the set: treat them as read-only.
//
// Lookup is on the hot path of every enforcer (one per request), writes
// are rare, so reads take no lock: they use snap, an immutable bart.Fast
// table (about a quarter faster to search than bart.Table, for about a
// third more memory: some 105 MB against 77 MB at a million decisions)
// replaced on every write by a copy-on-write update (InsertPersist,
// DeletePersist). Those cost tens of microseconds each at a million
// decisions, so a burst of writes (a member starting up, a large
// blocklist) instead drops the snapshot: lookups fall back to table, the
// mutable copy (a bart.Table, the compact layout), under mu, and the
// snapshot is rebuilt from it in one pass once the writes pause (or by
// Settle), at most once every rebuildSpacing times a rebuild's duration. Writers hold wmu throughout, so a rebuild excludes writers
// without making readers of table wait.
//
// With the system clock, Lookup does not read the clock (it costs more
// than the lookup itself on virtual machines): stale is set by a timer at
// the earliest expiry in the set and cleared by Expire, and while it is
// clear no decision in the set has run out. A decision can thus be
// returned after its Until for as long as that timer fires late (the
// scheduler's latency, normally well under a millisecond), or for as long
// as the wall clock was stepped forward, until Expire removes it. With any
// other clock (a test's, a replay's), Lookup reads it every time and is
// exact.
type Set struct {
	clock phalanx.Clock
	sys   bool // clock is the system clock: expiry is timer driven

	snap  atomic.Pointer[bart.Fast[*record]] // nil while rebuilding
	stale atomic.Bool                        // a decision may have run out

	wmu sync.Mutex // held by writers and by rebuild; taken before mu

	mu sync.RWMutex
	// table holds every record, by value: its exact-match Get serves as
	// the index by value too (a map beside it cost some 60 bytes a
	// decision).
	table bart.Table[*record]
	exp   expiryHeap
	subs  []*subscriber
	wake  chan struct{} // tells Run the earliest expiry may have changed

	// Under wmu.
	expTimer   *time.Timer // sets stale at the earliest expiry
	tokens     float64     // copy-on-write updates allowed now
	refilled   time.Time   // when tokens were last refilled
	rebuild    *time.Timer // rebuilds snap
	dirtySince time.Time   // when snap was dropped
	lastWrite  time.Time
	// rebuiltAt and rebuildCost are when the last rebuild ended and how
	// long it took: rebuilds are spaced rebuildSpacing times their cost.
	rebuiltAt   time.Time
	rebuildCost time.Duration
	// base is the snapshot as it was when a burst dropped it, and pending
	// the writes since, in order: a rebuild clones base and replays
	// pending without holding wmu, so writers wait only for the last few
	// writes, not for the copy of the whole set. base is nil when there
	// is none to start from (pending grew past maxPending: the rebuild
	// then copies table, holding wmu).
	base    *bart.Fast[*record]
	pending []write
	// overflowed: writes were made that pending does not hold (it was
	// full), so a rebuild in progress must copy table instead.
	overflowed bool
	rebuilding bool   // a rebuild is copying base without wmu
	gen        uint64 // counts snapshots published and dropped
}

// write is one change of table, for a rebuild to replay: r nil deletes.
type write struct {
	p netip.Prefix
	r *record
}

// maxPending bounds the writes kept for a rebuild to replay; beyond it a
// rebuild copies the table instead.
const maxPending = 1 << 20

// New returns an empty set that reads the time from clock.
func New(clock phalanx.Clock) *Set {
	if clock == nil {
		clock = phalanx.SystemClock{}
	}
	s := &Set{clock: clock, wake: make(chan struct{}, 1), tokens: persistBurst}
	switch clock.(type) {
	case phalanx.SystemClock, *phalanx.SystemClock:
		s.sys = true
	}
	s.snap.Store(new(bart.Fast[*record]))
	return s
}

// lock takes both locks for a writer.
func (s *Set) lock() {
	s.wmu.Lock()
	s.mu.Lock()
}

func (s *Set) unlock() {
	s.mu.Unlock()
	s.wmu.Unlock()
}

// put stores r in both tables. Under lock.
func (s *Set) put(r *record) {
	s.table.Insert(r.d.Value, r)
	s.update(write{r.d.Value, r})
}

// update applies a write to the snapshot, or drops the snapshot when
// writes come faster than copy-on-write is worth. Under lock.
func (s *Set) update(w write) {
	now := time.Now()
	s.lastWrite = now
	s.tokens = min(persistBurst, s.tokens+now.Sub(s.refilled).Seconds()*persistRate)
	s.refilled = now
	t := s.snap.Load()
	if t != nil && s.tokens >= 1 {
		s.tokens--
		if w.r != nil {
			s.snap.Store(t.InsertPersist(w.p, w.r))
		} else {
			s.snap.Store(t.DeletePersist(w.p))
		}
		return
	}
	if t != nil {
		s.snap.Store(nil)
		s.dirtySince = now
		s.base, s.pending = t, s.pending[:0]
		s.gen++
	}
	if len(s.pending) < maxPending {
		s.pending = append(s.pending, w)
	} else {
		s.base, s.pending, s.overflowed = nil, nil, true
	}
	if s.rebuild == nil {
		s.rebuild = time.AfterFunc(rebuildQuiet, s.rebuildSnap)
	} else if t != nil {
		s.rebuild.Reset(rebuildQuiet)
	}
}

// rebuildSnap publishes a fresh snapshot once writes pause (or have gone
// on for rebuildMax). From the snapshot the burst dropped, it copies and
// replays the writes since without holding wmu, taking it only to collect
// the writes made meanwhile and, once they are few, to replay the last
// ones and publish; without one it copies table, holding wmu.
func (s *Set) rebuildSnap() {
	s.wmu.Lock()
	if s.rebuilding {
		s.wmu.Unlock()
		return
	}
	start, ok := s.rebuildDue(false)
	if !ok {
		s.wmu.Unlock()
		return
	}
	base, ws := s.base, s.pending
	if base == nil {
		s.rebuildLocked(start)
		s.wmu.Unlock()
		return
	}
	// pending now collects only what comes next.
	s.base, s.pending, s.overflowed, s.rebuilding = nil, nil, false, true
	gen := s.gen
	s.wmu.Unlock()

	t := base.Clone() // base is immutable: no lock
	for {
		replay(t, ws)
		s.wmu.Lock()
		ws, s.pending = s.pending, nil
		switch {
		case s.gen != gen:
			// Settle published meanwhile (and perhaps a burst dropped
			// that): t misses what went into it. Start again.
			if s.snap.Load() == nil {
				s.rebuild.Reset(rebuildQuiet)
			}
		case s.overflowed:
			s.rebuildLocked(start)
		case len(ws) <= 4096:
			replay(t, ws)
			s.publish(t, start)
		default:
			s.wmu.Unlock()
			continue
		}
		s.rebuilding = false
		s.wmu.Unlock()
		return
	}
}

func replay(t *bart.Fast[*record], ws []write) {
	for _, w := range ws {
		if w.r != nil {
			t.Insert(w.p, w.r)
		} else {
			t.Delete(w.p)
		}
	}
}

// rebuildDue says whether a rebuild should happen now (force: Settle's),
// rescheduling it otherwise, and when it started. Under wmu.
func (s *Set) rebuildDue(force bool) (time.Time, bool) {
	now := time.Now()
	if s.snap.Load() != nil {
		return now, false
	}
	if !force {
		if quiet := now.Sub(s.lastWrite); quiet < rebuildQuiet && now.Sub(s.dirtySince) < rebuildMax {
			s.rebuild.Reset(rebuildQuiet - quiet)
			return now, false
		}
		if wait := rebuildSpacing*s.rebuildCost - now.Sub(s.rebuiltAt); wait > 0 {
			s.rebuild.Reset(wait)
			return now, false
		}
	}
	return now, true
}

// rebuildLocked copies table into a fresh snapshot. Under wmu.
func (s *Set) rebuildLocked(start time.Time) {
	t := new(bart.Fast[*record])
	for p, r := range s.table.All() {
		t.Insert(p, r)
	}
	s.base, s.pending, s.overflowed = nil, nil, false
	s.publish(t, start)
}

// publish makes t the snapshot. Under wmu.
func (s *Set) publish(t *bart.Fast[*record], start time.Time) {
	s.gen++
	s.snap.Store(t)
	s.tokens = persistBurst
	s.refilled = time.Now()
	s.rebuiltAt, s.rebuildCost = s.refilled, s.refilled.Sub(start)
}

// Settle publishes the lock-free snapshot now if a burst of writes has
// dropped it, instead of when the writes pause (at most a second later,
// or rebuildSpacing times the last rebuild's duration after it).
// It blocks writers, not readers, while it copies the set: about half a
// second at a million decisions. Lookups are correct either way, only
// slower without the snapshot; call it after a bulk load, or before
// measuring them.
func (s *Set) Settle() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if start, ok := s.rebuildDue(true); ok {
		s.rebuildLocked(start)
	}
}

// arm keeps stale and its timer in step with the earliest expiry. Under
// wmu (exp only changes under it).
func (s *Set) arm() {
	if !s.sys {
		return
	}
	if len(s.exp) == 0 {
		s.stale.Store(false)
		if s.expTimer != nil {
			s.expTimer.Stop()
		}
		return
	}
	// The heap's earliest entry may be stale (deleted or extended), which
	// only makes this earlier than needed: never later.
	d := time.Until(s.exp[0].until)
	if d <= 0 {
		s.stale.Store(true) // until Expire removes it
		return
	}
	s.stale.Store(false)
	if s.expTimer == nil {
		s.expTimer = time.AfterFunc(d, s.expTimerFired)
	} else {
		s.expTimer.Reset(d)
	}
}

func (s *Set) expTimerFired() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.arm()
}

func normalize(p netip.Prefix) netip.Prefix { return phalanx.NormalizePrefix(p) }

// Add adds d, merging it with a decision of the same value: the stronger
// type wins (ban > captcha > throttle) and brings its scenario and origin;
// the later expiry wins; FirstSeen is the earliest, LastSeen the latest;
// events add up unless d repeats the stored decision (same scenario, origin
// and last sighting: a replay or a duplicate delivery); evidence is
// appended without duplicates, keeping the most recent lines.
//
// changed reports whether enforcement must change: the value is new, or its
// type or expiry changed. Only then are subscribers told (Op Added).
// A decision already expired, or with an invalid value or type, is ignored.
func (s *Set) Add(d phalanx.Decision) (changed bool) {
	changed, _ = s.AddBounded(d, 0)
	return changed
}

// AddBounded is Add for a set that is to hold at most limit values (0: no
// bound), each keyed by an address an attacker chooses: a new value when
// the set is full first evicts the decision expiring first (subscribers
// are told, Op Deleted), as the alliance's fold does. evicted counts
// those, not the expired ones collected on the way.
func (s *Set) AddBounded(d phalanx.Decision, limit int) (changed bool, evicted int) {
	at := time.Now()
	d.Value = normalize(d.Value)
	if !d.Value.IsValid() || d.Type.Strength() == 0 {
		return false, 0
	}
	now := s.clock.Now()
	until := d.Until()
	if !until.After(now) {
		return false, 0
	}
	s.lock()
	defer s.unlock()
	r, ok := s.table.Get(d.Value)
	if ok && !r.until.After(now) {
		// Expired but not yet collected: the new decision replaces it.
		s.remove(r)
		ok = false
	}
	if !ok {
		evicted = s.makeRoom(limit, now, at)
		d.Evidence = slices.Clone(d.Evidence[max(0, len(d.Evidence)-maxEvidence):])
		r = &record{d: d, until: until}
		// Expiry first: the timer must cover r before readers can see it.
		s.pushExpiry(r)
		s.put(r)
		s.notify(Change{Op: Added, Decision: r.d, At: at})
		return true, evicted
	}
	merged := merge(r.d, d)
	old := r.d
	// Copy on write: Lookup and List hand out the stored value.
	nr := &record{d: merged, until: merged.Until()}
	if !nr.until.Equal(r.until) {
		s.pushExpiry(nr)
	}
	s.put(nr)
	if merged.Type == old.Type && nr.until.Equal(r.until) {
		return false, 0
	}
	s.notify(Change{Op: Added, Decision: nr.d, At: at})
	return true, 0
}

// makeRoom removes decisions, the one expiring first each time, until a
// new value keeps the set within limit (0: no bound), and returns how
// many were still in force. Under lock.
func (s *Set) makeRoom(limit int, now, at time.Time) (evicted int) {
	for limit > 0 && s.table.Size() >= limit && len(s.exp) > 0 {
		e := heap.Pop(&s.exp).(expiry)
		r, ok := s.table.Get(e.value)
		if !ok || !r.until.Equal(e.until) {
			continue // stale: deleted or extended
		}
		s.remove(r)
		if r.until.After(now) {
			s.notify(Change{Op: Deleted, Decision: r.d, At: at})
			evicted++
		} else {
			s.notify(Change{Op: Expired, Decision: r.d, At: at})
		}
	}
	return evicted
}

func merge(a, b phalanx.Decision) phalanx.Decision {
	m := a
	if sb, sa := b.Type.Strength(), a.Type.Strength(); sb > sa || (sb == sa && b.Until().After(a.Until())) {
		m.Type, m.Scenario, m.Origin = b.Type, b.Scenario, b.Origin
	}
	until := a.Until()
	if u := b.Until(); u.After(until) {
		until = u
	}
	if b.LastSeen.After(m.LastSeen) {
		m.LastSeen = b.LastSeen
	}
	if !b.FirstSeen.IsZero() && (m.FirstSeen.IsZero() || b.FirstSeen.Before(m.FirstSeen)) {
		m.FirstSeen = b.FirstSeen
	}
	m.Duration = until.Sub(m.LastSeen)
	duplicate := a.Scenario == b.Scenario && a.Origin == b.Origin && a.LastSeen.Equal(b.LastSeen)
	if !duplicate {
		m.Events = a.Events + b.Events
	}
	ev := slices.Clone(a.Evidence)
	for _, l := range b.Evidence {
		if !slices.Contains(ev, l) {
			ev = append(ev, l)
		}
	}
	m.Evidence = ev[max(0, len(ev)-maxEvidence):]
	return m
}

func (s *Set) pushExpiry(r *record) {
	wasFirst := len(s.exp) == 0 || r.until.Before(s.exp[0].until)
	heap.Push(&s.exp, expiry{until: r.until, value: r.d.Value})
	// Stale entries pile up when decisions are extended: rebuild the heap
	// when they outnumber the live ones.
	if len(s.exp) > 2*s.table.Size()+1024 {
		s.exp = s.exp[:0]
		for _, r := range s.table.All() {
			s.exp = append(s.exp, expiry{until: r.until, value: r.d.Value})
		}
		heap.Init(&s.exp)
	}
	if wasFirst {
		s.arm()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// remove deletes r from the indexes; its heap entry goes stale.
func (s *Set) remove(r *record) {
	s.table.Delete(r.d.Value)
	s.update(write{p: r.d.Value})
}

// Delete removes the decision for p (an address is its full-length
// prefix). It reports whether there was one.
func (s *Set) Delete(p netip.Prefix) bool {
	at := time.Now()
	p = normalize(p)
	s.lock()
	defer s.unlock()
	r, ok := s.table.Get(p)
	if !ok {
		return false
	}
	s.remove(r)
	s.notify(Change{Op: Deleted, Decision: r.d, At: at})
	return true
}

// Lookup returns the most specific decision in force that contains a.
// It takes no lock while the snapshot is published; see Set for when it
// reads the clock.
func (s *Set) Lookup(a netip.Addr) (phalanx.Decision, bool) {
	a = a.Unmap().WithZone("")
	// stale before snap: Expire publishes the snapshot without the expired
	// decisions before it clears stale, so a reader that sees it clear
	// also sees that snapshot.
	fresh := s.sys && !s.stale.Load()
	if t := s.snap.Load(); t != nil {
		r, ok := t.Lookup(a)
		if !ok {
			return phalanx.Decision{}, false
		}
		if fresh {
			return r.d, true
		}
		return inForce(t, a, r, s.clock.Now())
	}
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.table.Lookup(a)
	if !ok {
		return phalanx.Decision{}, false
	}
	return inForce(&s.table, a, r, now)
}

// supernets is what inForce needs of a table: bart.Table or bart.Fast.
type supernets interface {
	Supernets(netip.Prefix) iter.Seq2[netip.Prefix, *record]
}

// inForce returns r, the most specific decision for a in t, if it is in
// force at now, else the most specific one that is.
func inForce[T supernets](t T, a netip.Addr, r *record, now time.Time) (phalanx.Decision, bool) {
	if r.until.After(now) {
		return r.d, true
	}
	// The most specific one has expired but Expire has not run yet: look
	// for a less specific one still in force.
	var best *record
	for _, c := range t.Supernets(netip.PrefixFrom(a, a.BitLen())) {
		if c.until.After(now) && (best == nil || c.d.Value.Bits() > best.d.Value.Bits()) {
			best = c
		}
	}
	if best == nil {
		return phalanx.Decision{}, false
	}
	return best.d, true
}

// Len is the number of decisions held, including expired ones not yet
// collected by Expire.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.table.Size()
}

// List returns the decisions in force now, sorted by expiry, then value.
func (s *Set) List() []phalanx.Decision {
	now := s.clock.Now()
	s.mu.RLock()
	out := make([]phalanx.Decision, 0, s.table.Size())
	for _, r := range s.table.All() {
		if r.until.After(now) {
			out = append(out, r.d)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b phalanx.Decision) int {
		if c := a.Until().Compare(b.Until()); c != 0 {
			return c
		}
		return comparePrefix(a.Value, b.Value)
	})
	return out
}

// Get returns the decision in force on exactly p (an address is its
// full-length prefix), not one on a range that contains it: Lookup
// answers that.
func (s *Set) Get(p netip.Prefix) (phalanx.Decision, bool) {
	p = normalize(p)
	now := s.clock.Now()
	s.mu.RLock()
	r, ok := s.table.Get(p)
	s.mu.RUnlock()
	if !ok || !r.until.After(now) {
		return phalanx.Decision{}, false
	}
	return r.d, true
}

// Values lists the values the set holds, in no order, expired ones not
// yet collected included: for a caller that goes over the whole set and
// looks each one up again (Get), it costs a small part of List, which
// copies and sorts every decision.
func (s *Set) Values() []netip.Prefix {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]netip.Prefix, 0, s.table.Size())
	for p := range s.table.All() {
		out = append(out, p)
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// Subscribe returns a channel of changes, buffered for buf changes, and a
// function that cancels the subscription and closes the channel.
//
// A slow subscriber never blocks the set: when its buffer is full, the
// oldest undelivered change is dropped to make room and the new change is
// marked Resync, telling the subscriber to rebuild its view from List.
func (s *Set) Subscribe(buf int) (<-chan Change, func()) {
	sub := &subscriber{ch: make(chan Change, max(buf, 1))}
	s.lock()
	s.subs = append(s.subs, sub)
	s.unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			s.lock()
			defer s.unlock()
			s.subs = slices.DeleteFunc(s.subs, func(x *subscriber) bool { return x == sub })
			close(sub.ch)
		})
	}
}

// notify sends c to every subscriber. It runs under the write lock, so
// subscribers see changes in the order they were applied, and it is the
// only sender: after draining one slot, the send cannot block.
func (s *Set) notify(c Change) {
	for _, sub := range s.subs {
		select {
		case sub.ch <- c:
			continue
		default:
		}
		select {
		case <-sub.ch:
		default:
		}
		rc := c
		rc.Resync = true
		select {
		case sub.ch <- rc:
		default:
		}
	}
}

// Expire removes the decisions whose time ran out at now, tells the
// subscribers (Op Expired), and returns how many it removed.
func (s *Set) Expire(now time.Time) int {
	at := time.Now()
	s.lock()
	defer s.unlock()
	// After the removals have been published: see Lookup.
	defer s.arm()
	n := 0
	for len(s.exp) > 0 && !s.exp[0].until.After(now) {
		e := heap.Pop(&s.exp).(expiry)
		r, ok := s.table.Get(e.value)
		if !ok || !r.until.Equal(e.until) {
			continue // stale: deleted or extended
		}
		s.remove(r)
		s.notify(Change{Op: Expired, Decision: r.d, At: at})
		n++
	}
	return n
}

// next returns the earliest pending expiry.
func (s *Set) next() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.exp) == 0 {
		return time.Time{}, false
	}
	return s.exp[0].until, true
}

// Run expires decisions on the clock until ctx ends. It sleeps until the
// next expiry (or until an earlier one is added) instead of polling.
func (s *Set) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.Expire(s.clock.Now())
		wait := time.Hour
		if at, ok := s.next(); ok {
			wait = max(at.Sub(s.clock.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
		}
	}
}
