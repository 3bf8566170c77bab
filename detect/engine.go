// Package detect turns typed events into decisions: scenarios (leaky
// buckets, triggers and distinct counters) keyed by source address, with
// per-source state bounded by a least-recently-touched eviction.
//
// The Engine is single-goroutine by design: the pipeline feeds it from one
// goroutine, so the hot path takes no lock. An event that matches no bucket
// costs a map lookup; an event that counts costs a second one and
// allocates nothing once the engine has warmed up.
//
// # Successful logins
//
// A success calms the buckets that count authentication failures, but it
// does not reset them: it removes from each bucket of its source only the
// failures (at most four, the most recent) of the same user that just
// logged in. A person who mistyped their password twice and then got in is
// forgiven those two failures; an attacker who owns one account and logs
// in with it between guesses on root, admin, ... is forgiven nothing, and a
// success can never empty a bucket of someone else's failures or grant
// immunity for the failures that follow it.
package detect

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// Defaults for a zero Config.
const (
	DefaultMaxSources     = 200_000 // about 45 MB of bucket state
	DefaultRangeThreshold = 3
	DefaultRangeWindow    = time.Hour
	DefaultEscFactor      = 2
	DefaultEscMemory      = 24 * time.Hour
	DefaultEscMax         = 7 * 24 * time.Hour
)

const (
	evidencePerBucket = 4    // lines a decision carries
	evidenceRing      = 4096 // lines the engine keeps in all
	maxEvidenceLine   = 512  // bytes kept of one line
	forgiveMax        = 4    // failures one success may forgive per bucket
	maxRangeThreshold = 64
)

// Escalation lengthens the decisions against repeat offenders.
type Escalation struct {
	Off bool `yaml:"off,omitempty"` // no escalation
	// Factor multiplies the duration once per previous decision against
	// the same value within Memory (default 2).
	Factor float64       `yaml:"factor,omitempty"`
	Memory time.Duration `yaml:"memory,omitempty"` // default 24h
	Max    time.Duration `yaml:"max,omitempty"`    // cap on an escalated duration (default 7d)
}

// Config configures an Engine. The zero value uses the default scenarios,
// no allowlist, one million buckets, escalation on and IPv6 range decisions
// at three addresses of a /64 within an hour.
type Config struct {
	// Scenarios to run; nil means DefaultScenarios(), an empty non-nil
	// slice means none.
	Scenarios []Scenario
	// Allowlist holds ranges that never yield a decision.
	Allowlist []netip.Prefix
	// BuiltinAllowlist adds loopback, link-local and the unspecified
	// address to the allowlist.
	BuiltinAllowlist bool
	// MaxSources caps the per-source state across scenarios, counted in
	// buckets (one per source and scenario). When full, the least
	// recently touched bucket is evicted.
	MaxSources int
	Escalation Escalation
	// RangeThreshold: when this many distinct addresses of one IPv6 /64
	// are decided within RangeWindow, the /64 is decided as a range too.
	// Zero means the default (3); negative turns range decisions off.
	RangeThreshold int
	RangeWindow    time.Duration
	// Clock is used only for events that carry no time.
	Clock phalanx.Clock
}

// Stats are the engine's counters.
type Stats struct {
	Events      uint64 // events observed
	Allowlisted uint64 // events a scenario would have counted, from an allowlisted source
	Buckets     int    // per-source, per-scenario states tracked now
	MaxBuckets  int    // the cap on Buckets
	Evictions   uint64 // buckets evicted to stay under the cap
	// Decisions counts decisions by scenario; range decisions are counted
	// under their scenario and in RangeDecisions.
	Decisions      map[string]uint64
	RangeDecisions uint64
}

type compiled struct {
	name         string
	typ          Type
	capacity     int
	leak, window int64 // ns
	blackhole    int64
	distinctPath bool
	prefix64     bool
	ents         bool // keeps one entry per counted event: window or distinct
	calm         bool // calmed by a successful login
	services     []phalanx.Service
	methods      []string
	exMethods    []string
	paths        []string
	suffixes     []string
	status       []int
	userPrefixes []string
	dtype        phalanx.DecisionType
	duration     time.Duration
}

// bkey identifies a bucket: the (possibly /64-masked) address and the
// scenario. Addresses are unmapped, so 16 bytes do not confuse families.
type bkey struct {
	a [16]byte
	s uint32
}

type entry struct {
	t int64  // when it was counted
	h uint64 // distinct value
	u uint32 // user, for forgiveness
}

type bucket struct {
	key        bkey
	prev, next int32 // LRU list; -1 ends it
	chain      int32 // next bucket of the same address; -1 ends it
	level      int   // leak mode: events in the bucket
	lastLeak   int64
	first      int64
	until      int64 // blackhole: ignore events before
	users      [forgiveMax]uint32
	ui         uint32
	ev         [evidencePerBucket]uint64 // evidence ring sequence numbers
	evN        uint32
	ents       []entry // window and distinct modes, ≤ capacity+1
}

type offence struct {
	n     int32 // decisions within the memory
	last  int64 // time of the last one
	until int64 // when the longest of them ends
}

type rangeState struct {
	addrs []netip.Addr
	times []int64
	scen  []string
}

// Engine runs scenarios over events. It is not safe for concurrent use.
type Engine struct {
	scen    []compiled
	byKind  map[phalanx.EventKind][]int32
	calmers []int32
	allow   []netip.Prefix
	builtin bool
	clock   phalanx.Clock
	seed    maphash.Seed
	max     int
	// idx maps an address to the first of its buckets, chained by
	// bucket.chain: one lookup per event finds every bucket of a source.
	idx      map[[16]byte]int32
	nb       int // buckets in use
	bk       []bucket
	head     int32
	tail     int32
	esc      Escalation
	offences map[netip.Prefix]offence
	offCap   int
	rangeThr int
	rangeWin int64
	ranges   map[netip.Prefix]*rangeState
	rangeCap int

	evLines [][]byte
	evSeq   []uint64
	evNext  uint64

	events, allowlisted, evictions, rangeDecisions uint64
	decided                                        []uint64
}

// authFailureKinds are the kinds a successful login calms.
var authFailureKinds = []phalanx.EventKind{
	phalanx.KindAuthFailed, phalanx.KindInvalidUser, phalanx.KindUserNotAllowed,
	phalanx.KindMaxAuthTries, phalanx.KindMailAuthFailed, phalanx.KindHTTPAuthFailed,
}

// New validates the scenarios and returns an engine.
func New(cfg Config) (*Engine, error) {
	scens := cfg.Scenarios
	if scens == nil {
		scens = DefaultScenarios()
	}
	e := &Engine{
		byKind:   make(map[phalanx.EventKind][]int32),
		builtin:  cfg.BuiltinAllowlist,
		clock:    cfg.Clock,
		seed:     maphash.MakeSeed(),
		max:      cfg.MaxSources,
		head:     -1,
		tail:     -1,
		esc:      cfg.Escalation,
		offences: make(map[netip.Prefix]offence),
		ranges:   make(map[netip.Prefix]*rangeState),
		rangeThr: cfg.RangeThreshold,
		rangeWin: int64(cfg.RangeWindow),
		evLines:  make([][]byte, evidenceRing),
		evSeq:    make([]uint64, evidenceRing),
		decided:  make([]uint64, len(scens)),
	}
	if e.clock == nil {
		e.clock = phalanx.SystemClock{}
	}
	if e.max <= 0 {
		e.max = DefaultMaxSources
	}
	if e.esc.Factor == 0 {
		e.esc.Factor = DefaultEscFactor
	}
	if e.esc.Factor < 1 {
		return nil, fmt.Errorf("detect: escalation factor %v is below 1: use 1 (no growth) or more, or turn escalation off", e.esc.Factor)
	}
	if e.esc.Memory <= 0 {
		e.esc.Memory = DefaultEscMemory
	}
	if e.esc.Max <= 0 {
		e.esc.Max = DefaultEscMax
	}
	if e.rangeThr == 0 {
		e.rangeThr = DefaultRangeThreshold
	}
	if e.rangeThr > maxRangeThreshold {
		return nil, fmt.Errorf("detect: range threshold %d is above %d: lower it", e.rangeThr, maxRangeThreshold)
	}
	if e.rangeWin <= 0 {
		e.rangeWin = int64(DefaultRangeWindow)
	}
	e.offCap = max(e.max/4, 1024)
	e.rangeCap = max(e.max/16, 1024)
	e.idx = make(map[[16]byte]int32, min(e.max, 1<<16))
	for _, p := range cfg.Allowlist {
		if !p.IsValid() {
			return nil, fmt.Errorf("detect: allowlist holds an invalid prefix: remove it")
		}
		e.allow = append(e.allow, phalanx.NormalizePrefix(p))
	}
	seen := make(map[string]bool, len(scens))
	for i := range scens {
		s := &scens[i]
		if field, msg := s.check(); msg != "" {
			return nil, fmt.Errorf("detect: scenario %q: %s: %s", s.Name, field, msg)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("detect: scenario %q is defined twice: rename one", s.Name)
		}
		seen[s.Name] = true
		c := compiled{
			name:         s.Name,
			typ:          s.Type,
			capacity:     s.Capacity,
			leak:         int64(s.Leak),
			window:       int64(s.Window),
			blackhole:    int64(s.Blackhole),
			distinctPath: s.Distinct == DistinctPath,
			prefix64:     s.Group == GroupPrefix64,
			services:     slices.Clone(s.Filter.Services),
			methods:      slices.Clone(s.Filter.Methods),
			exMethods:    slices.Clone(s.Filter.ExcludeMethods),
			paths:        lowerAll(s.Filter.PathsContain),
			suffixes:     lowerAll(s.Filter.ExcludePathSuffixes),
			status:       slices.Clone(s.Filter.Status),
			userPrefixes: slices.Clone(s.Filter.UserPrefixes),
			dtype:        s.Decision.Type,
			duration:     time.Duration(s.Decision.Duration),
		}
		c.ents = c.typ == Distinct || (c.typ == Leaky && c.window > 0)
		for _, k := range s.Filter.Kinds {
			if !slices.Contains(e.byKind[k], int32(i)) {
				e.byKind[k] = append(e.byKind[k], int32(i))
			}
			if c.typ != Trigger && slices.Contains(authFailureKinds, k) {
				c.calm = true
			}
		}
		if c.calm {
			e.calmers = append(e.calmers, int32(i))
		}
		e.scen = append(e.scen, c)
	}
	return e, nil
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// obs is one event on its way through the scenarios.
type obs struct {
	ev       *phalanx.Event
	evidence string
	t        time.Time
	tn       int64
	src      netip.Addr
	seq      uint64 // evidence ring sequence, 0 until stored
	uh       uint32 // user hash, 0 for no user
	a16      [16]byte
	head     int32 // first bucket of the source, once looked up
	looked   bool
}

// Observe feeds one event and appends the decisions it triggers to dst.
// evidence is the raw log line; the engine copies what it keeps.
func (e *Engine) Observe(ev *phalanx.Event, evidence string, dst []phalanx.Decision) []phalanx.Decision {
	e.events++
	if !ev.Source.IsValid() {
		return dst
	}
	if ev.Kind == phalanx.KindAuthSuccess && len(e.calmers) > 0 {
		e.calm(ev)
	}
	list := e.byKind[ev.Kind]
	if len(list) == 0 {
		return dst
	}
	src := ev.Source.Unmap().WithZone("")
	if e.allowed(src) {
		e.allowlisted++
		return dst
	}
	o := obs{ev: ev, evidence: evidence, t: ev.Time, src: src, uh: e.userHash(ev.User), a16: src.As16()}
	if o.t.IsZero() {
		o.t = e.clock.Now()
	}
	o.tn = o.t.UnixNano()
	for _, si := range list {
		c := &e.scen[si]
		if !c.match(ev) {
			continue
		}
		dst = e.count(c, si, &o, dst)
	}
	return dst
}

func (e *Engine) allowed(a netip.Addr) bool {
	if e.builtin && (a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified()) {
		return true
	}
	for _, p := range e.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (e *Engine) userHash(u string) uint32 {
	if u == "" {
		return 0
	}
	h := uint32(maphash.String(e.seed, u))
	if h == 0 {
		h = 1
	}
	return h
}

func (c *compiled) match(ev *phalanx.Event) bool {
	if len(c.services) > 0 && !slices.Contains(c.services, ev.Service) {
		return false
	}
	if len(c.methods) > 0 && !slices.Contains(c.methods, ev.Method) {
		return false
	}
	if len(c.exMethods) > 0 && slices.Contains(c.exMethods, ev.Method) {
		return false
	}
	if len(c.status) > 0 && !slices.Contains(c.status, ev.Status) {
		return false
	}
	if len(c.userPrefixes) > 0 {
		ok := false
		for _, p := range c.userPrefixes {
			if strings.HasPrefix(ev.User, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.paths) > 0 {
		ok := false
		for _, p := range c.paths {
			if containsFold(ev.Path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.suffixes) > 0 {
		p := pathOnly(ev.Path)
		for _, s := range c.suffixes {
			if len(p) >= len(s) && equalFold(p[len(p)-len(s):], s) {
				return false
			}
		}
	}
	return true
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

// equalFold compares s with lower, an ASCII-lowercase string, ignoring
// ASCII case, without allocating.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains lower, ignoring ASCII case.
func containsFold(s, lower string) bool {
	if len(lower) == 0 {
		return true
	}
	first := lower[0]
	for i := 0; i+len(lower) <= len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == first && equalFold(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}

func (e *Engine) keyFor(c *compiled, si int32, a netip.Addr) bkey {
	if c.prefix64 && a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return bkey{a: a.As16(), s: uint32(si)}
}

// find returns the bucket of key, or -1.
func (e *Engine) find(key bkey) int32 {
	i, ok := e.idx[key.a]
	if !ok {
		return -1
	}
	for i >= 0 && e.bk[i].key.s != key.s {
		i = e.bk[i].chain
	}
	return i
}

// bucketFor returns the bucket of scenario si for the observation's
// source, creating it. The source's chain head is looked up once per
// observation.
func (e *Engine) bucketFor(c *compiled, si int32, o *obs) int32 {
	if c.prefix64 && o.src.Is6() {
		key := e.keyFor(c, si, o.src)
		head, ok := e.idx[key.a]
		if !ok {
			head = -1
		}
		i, _ := e.bucket(key, head)
		return i
	}
	if !o.looked {
		h, ok := e.idx[o.a16]
		if !ok {
			h = -1
		}
		o.head, o.looked = h, true
	}
	i, created := e.bucket(bkey{a: o.a16, s: uint32(si)}, o.head)
	if created {
		o.head = i // a new bucket heads its address's chain
	}
	return i
}

// bucket returns the index of the bucket for key, whose address's chain
// starts at head (-1: none), creating it (and evicting the least recently
// touched bucket if full).
func (e *Engine) bucket(key bkey, head int32) (i int32, created bool) {
	for i := head; i >= 0; i = e.bk[i].chain {
		if e.bk[i].key.s == key.s {
			e.touch(i)
			return i, false
		}
	}
	if e.nb >= e.max {
		i = e.tail
		evictedSame := e.bk[i].key.a == key.a
		e.evict(i)
		if evictedSame {
			if h, ok := e.idx[key.a]; ok {
				head = h
			} else {
				head = -1
			}
		}
		ents := e.bk[i].ents[:0]
		e.bk[i] = bucket{ents: ents}
	} else {
		i = int32(len(e.bk))
		e.bk = append(e.bk, bucket{})
	}
	e.nb++
	b := &e.bk[i]
	b.key, b.chain = key, head
	e.idx[key.a] = i
	e.pushFront(i)
	return i, true
}

// evict unlinks bucket i from the LRU list and from its address's chain.
func (e *Engine) evict(i int32) {
	e.unlink(i)
	e.nb--
	e.evictions++
	a := e.bk[i].key.a
	head := e.idx[a]
	if head == i {
		if next := e.bk[i].chain; next >= 0 {
			e.idx[a] = next
		} else {
			delete(e.idx, a)
		}
		return
	}
	for j := head; j >= 0; j = e.bk[j].chain {
		if e.bk[j].chain == i {
			e.bk[j].chain = e.bk[i].chain
			return
		}
	}
}

func (e *Engine) unlink(i int32) {
	b := &e.bk[i]
	if b.prev >= 0 {
		e.bk[b.prev].next = b.next
	} else {
		e.head = b.next
	}
	if b.next >= 0 {
		e.bk[b.next].prev = b.prev
	} else {
		e.tail = b.prev
	}
	b.prev, b.next = -1, -1
}

func (e *Engine) pushFront(i int32) {
	b := &e.bk[i]
	b.prev, b.next = -1, e.head
	if e.head >= 0 {
		e.bk[e.head].prev = i
	}
	e.head = i
	if e.tail < 0 {
		e.tail = i
	}
}

func (e *Engine) touch(i int32) {
	if e.head == i {
		return
	}
	e.unlink(i)
	e.pushFront(i)
}

// count adds one matching event to the scenario's bucket for its source.
func (e *Engine) count(c *compiled, si int32, o *obs, dst []phalanx.Decision) []phalanx.Decision {
	i := e.bucketFor(c, si, o)
	b := &e.bk[i]
	if o.tn < b.until {
		return dst
	}
	tn := o.tn
	n := 0
	switch {
	case c.typ == Trigger:
		b.first, b.evN = tn, 0
		e.addEvidence(b, o)
		n = 1
	case !c.ents:
		if b.level > 0 && tn-b.lastLeak >= c.leak {
			k := (tn - b.lastLeak) / c.leak
			if k >= int64(b.level) {
				b.level = 0
			} else {
				b.level -= int(k)
				b.lastLeak += k * c.leak
			}
		}
		if b.level == 0 {
			b.lastLeak, b.first, b.evN = tn, tn, 0
		}
		b.level++
		b.users[b.ui%forgiveMax] = o.uh
		b.ui++
		e.addEvidence(b, o)
		if b.level > c.capacity {
			n = b.level
		}
	default:
		e.expire(c, b, tn)
		var h uint64
		if c.typ == Distinct {
			v := o.ev.User
			if c.distinctPath {
				v = pathOnly(o.ev.Path)
			}
			h = maphash.String(e.seed, v)
			for _, en := range b.ents {
				if en.h == h {
					return dst // already counted
				}
			}
		}
		if len(b.ents) == 0 {
			b.lastLeak, b.evN = tn, 0
		}
		b.ents = append(b.ents, entry{t: tn, h: h, u: o.uh})
		b.first = b.ents[0].t
		e.addEvidence(b, o)
		if len(b.ents) > c.capacity {
			n = len(b.ents)
		}
	}
	if n == 0 {
		return dst
	}
	dst = e.fire(c, si, b, o, n, dst)
	b.level, b.ui, b.users, b.ents, b.evN = 0, 0, [forgiveMax]uint32{}, b.ents[:0], 0
	b.until = tn + c.blackhole
	return dst
}

// expire drops entries that left a window or leaked out (oldest first).
func (e *Engine) expire(c *compiled, b *bucket, tn int64) {
	k := 0
	if c.window > 0 {
		for k < len(b.ents) && tn-b.ents[k].t > c.window {
			k++
		}
	} else if len(b.ents) > 0 && tn-b.lastLeak >= c.leak {
		l := (tn - b.lastLeak) / c.leak
		if l >= int64(len(b.ents)) {
			k = len(b.ents)
		} else {
			k = int(l)
			b.lastLeak += l * c.leak
		}
	}
	if k > 0 {
		b.ents = b.ents[:copy(b.ents, b.ents[k:])]
	}
}

func (e *Engine) addEvidence(b *bucket, o *obs) {
	if o.seq == 0 {
		if o.evidence == "" {
			return
		}
		e.evNext++
		o.seq = e.evNext
		slot := o.seq % evidenceRing
		line := o.evidence
		if len(line) > maxEvidenceLine {
			line = line[:maxEvidenceLine]
		}
		e.evLines[slot] = append(e.evLines[slot][:0], line...)
		e.evSeq[slot] = o.seq
	}
	b.ev[b.evN%evidencePerBucket] = o.seq
	b.evN++
}

// evidence returns the lines of the bucket still in the ring, oldest first.
func (e *Engine) evidence(b *bucket) []string {
	n := min(b.evN, evidencePerBucket)
	out := make([]string, 0, n)
	for k := b.evN - n; k < b.evN; k++ {
		seq := b.ev[k%evidencePerBucket]
		if seq == 0 {
			continue
		}
		if slot := seq % evidenceRing; e.evSeq[slot] == seq {
			out = append(out, strings.ToValidUTF8(string(e.evLines[slot]), "\uFFFD"))
		}
	}
	return out
}

func (e *Engine) fire(c *compiled, si int32, b *bucket, o *obs, n int, dst []phalanx.Decision) []phalanx.Decision {
	value := netip.PrefixFrom(o.src, o.src.BitLen())
	if c.prefix64 && o.src.Is6() {
		value = netip.PrefixFrom(o.src, 64).Masked()
	}
	d := phalanx.Decision{
		Value:     value,
		Type:      c.dtype,
		Scenario:  c.name,
		Duration:  e.escalate(value, c.duration, o.tn),
		FirstSeen: time.Unix(0, b.first).In(o.t.Location()),
		LastSeen:  o.t,
		Events:    n,
		Origin:    phalanx.OriginLocal,
		Evidence:  e.evidence(b),
	}
	e.decided[si]++
	dst = append(dst, d)
	if e.rangeThr > 0 && value.IsSingleIP() && o.src.Is6() {
		if r, ok := e.trackRange(&d, c, o); ok {
			e.decided[si]++
			e.rangeDecisions++
			dst = append(dst, r)
		}
	}
	return dst
}

// escalate multiplies base once per previous decision against p within
// the escalation memory. A decision taken while an earlier one against p
// is still in force (a second scenario firing on the same attack, or a
// replay that goes on past the ban) is the same offence, not a repeat.
func (e *Engine) escalate(p netip.Prefix, base time.Duration, tn int64) time.Duration {
	if e.esc.Off {
		return base
	}
	of, ok := e.offences[p]
	prev := int32(0)
	switch {
	case ok && tn < of.until:
		prev = of.n - 1
	case ok && tn-of.last <= int64(e.esc.Memory):
		prev = of.n
		of.n++
	default:
		of.n = 1
	}
	d := float64(base)
	limit := float64(max(e.esc.Max, base))
	for range prev {
		d *= e.esc.Factor
		if d >= limit {
			d = limit
			break
		}
	}
	of.last = tn
	of.until = max(of.until, tn+int64(d))
	if !ok && len(e.offences) >= e.offCap {
		e.sweepOffences(tn)
	}
	e.offences[p] = of
	return time.Duration(d)
}

// sweepOffences keeps the offence memory bounded: it forgets offences
// older than the memory and, if that is not enough, arbitrary ones (map
// order) until a quarter of the room is free.
func (e *Engine) sweepOffences(tn int64) {
	for p, of := range e.offences {
		if tn-of.last > int64(e.esc.Memory) && tn >= of.until {
			delete(e.offences, p)
		}
	}
	for p := range e.offences {
		if len(e.offences) < e.offCap*3/4 {
			break
		}
		delete(e.offences, p)
	}
}

// trackRange records an IPv6 decision against its /64 and returns a range
// decision when enough distinct addresses of it were decided recently.
func (e *Engine) trackRange(d *phalanx.Decision, c *compiled, o *obs) (phalanx.Decision, bool) {
	p := netip.PrefixFrom(o.src, 64).Masked()
	st := e.ranges[p]
	if st == nil {
		if len(e.ranges) >= e.rangeCap {
			for q, s := range e.ranges {
				if len(s.times) == 0 || o.tn-s.times[len(s.times)-1] > e.rangeWin || len(e.ranges) >= e.rangeCap*3/4 {
					delete(e.ranges, q)
				}
			}
		}
		st = &rangeState{}
		e.ranges[p] = st
	}
	k := 0
	for k < len(st.times) && o.tn-st.times[k] > e.rangeWin {
		k++
	}
	st.addrs, st.times, st.scen = st.addrs[k:], st.times[k:], st.scen[k:]
	if j := slices.Index(st.addrs, o.src); j >= 0 {
		st.addrs = slices.Delete(st.addrs, j, j+1)
		st.times = slices.Delete(st.times, j, j+1)
		st.scen = slices.Delete(st.scen, j, j+1)
	}
	st.addrs = append(st.addrs, o.src)
	st.times = append(st.times, o.tn)
	st.scen = append(st.scen, c.name)
	if len(st.addrs) < e.rangeThr {
		return phalanx.Decision{}, false
	}
	ev := make([]string, len(st.addrs))
	for j, a := range st.addrs {
		ev[j] = fmt.Sprintf("%s decided by %s at %s", a, st.scen[j], time.Unix(0, st.times[j]).UTC().Format(time.RFC3339))
	}
	r := phalanx.Decision{
		Value:     p,
		Type:      d.Type,
		Scenario:  c.name,
		Duration:  e.escalate(p, time.Duration(c.duration), o.tn),
		FirstSeen: time.Unix(0, st.times[0]).In(o.t.Location()),
		LastSeen:  o.t,
		Events:    len(st.addrs),
		Origin:    phalanx.OriginLocal,
		Evidence:  ev,
	}
	delete(e.ranges, p)
	return r, true
}

// calm forgives, in the buckets of a source that count authentication
// failures, the recent failures of the user who just logged in (see the
// package documentation).
func (e *Engine) calm(ev *phalanx.Event) {
	uh := e.userHash(ev.User)
	if uh == 0 {
		return
	}
	src := ev.Source.Unmap().WithZone("")
	if head, ok := e.idx[src.As16()]; ok {
		for i := head; i >= 0; i = e.bk[i].chain {
			c := &e.scen[e.bk[i].key.s]
			if c.calm && !(c.prefix64 && src.Is6()) {
				e.forgive(c, &e.bk[i], ev, uh)
			}
		}
	}
	if !src.Is6() {
		return
	}
	for _, si := range e.calmers {
		if c := &e.scen[si]; c.prefix64 {
			if i := e.find(e.keyFor(c, si, src)); i >= 0 {
				e.forgive(c, &e.bk[i], ev, uh)
			}
		}
	}
}

func (e *Engine) forgive(c *compiled, b *bucket, ev *phalanx.Event, uh uint32) {
	if len(c.services) > 0 && !slices.Contains(c.services, ev.Service) {
		return
	}
	if c.ents {
		removed := 0
		for j := len(b.ents) - 1; j >= 0 && removed < forgiveMax; j-- {
			if b.ents[j].u == uh {
				b.ents = slices.Delete(b.ents, j, j+1)
				removed++
			}
		}
		return
	}
	m := 0
	for k := range b.users {
		if b.users[k] == uh {
			b.users[k] = 0
			m++
		}
	}
	b.level -= min(m, b.level)
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		Events:         e.events,
		Allowlisted:    e.allowlisted,
		Buckets:        e.nb,
		MaxBuckets:     e.max,
		Evictions:      e.evictions,
		Decisions:      make(map[string]uint64, len(e.scen)),
		RangeDecisions: e.rangeDecisions,
	}
	for i, c := range e.scen {
		if e.decided[i] > 0 {
			s.Decisions[c.name] = e.decided[i]
		}
	}
	return s
}
