// Package alliance folds the alliance ledger into its decision set. No
// coordinator decides: every member folds the same ordered ledger with the
// same charter and gets the same decisions, ceasefires, members, breaches
// and drill results. The fold reads only the envelopes, their stream
// sequence and their stream timestamp, never the local clock or who is
// folding, so two members that applied the same prefix agree exactly, and
// a member restored from a snapshot continues where the snapshot stopped.
//
// Every piece of state an author can grow is capped, with a deterministic
// eviction rule (documented at the caps below), so a hostile or
// compromised member cannot exhaust the memory of the others.
package alliance

import (
	"cmp"
	"container/heap"
	"container/list"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// Caps on state that authors can grow. Eviction is always
// oldest-first in ledger order, so it is the same on every member.
const (
	maxMembers         = 10_000  // admissions beyond it are rejected "full"
	maxTerritory       = 64      // prefixes per admitted member
	maxPendingValues   = 65_536  // values with uncorroborated reports; least recently reported evicted
	maxReportsPerValue = 64      // reports kept per pending value; oldest dropped
	maxSightingSources = 65_536  // sources with sightings; least recently sighted evicted
	maxSightingsPer    = 64      // sightings kept per source; oldest dropped
	maxNonces          = 100_000 // used invitation nonces; oldest forgotten (grants expire long before)
	maxDecisions       = 1 << 20 // decisions in force; the one expiring first is evicted
	maxCeasefires      = 256     // ceasefires in force; more are rejected "full"
	maxCeasefire       = 24 * time.Hour
	maxDrills          = 64 // drill results kept; oldest dropped
	maxAcksPerDrill    = maxMembers
	maxBreaches        = 1024 // breaches kept; oldest dropped
	maxEvidence        = 8    // evidence lines per report and per decision
	maxEvidenceLen     = 512  // bytes per evidence line
	maxScenarioLen     = 128
	maxDuration        = 30 * 24 * time.Hour // longest decision a report can ask for
	drillDuration      = 5 * time.Minute
)

// caps are the attacker-growable caps a fold enforces: the constants
// above, smaller in tests that exercise eviction.
type caps struct{ pendingValues, sightingSources, nonces, decisions int }

func defaultCaps() caps { return caps{maxPendingValues, maxSightingSources, maxNonces, maxDecisions} }

// drillRange is the reserved benchmarking space drills attack from
// (RFC 2544): nothing real lives there, so a drill can never ban anyone.
var drillRange = netip.MustParsePrefix("198.18.0.0/15")

// Options configure a Fold.
type Options struct {
	Self ledger.MemberID // the folding member, for logs only: the fold never depends on it
	Log  *slog.Logger
}

// ChangeOp says what happened to a decision.
type ChangeOp string

// Change operations.
const (
	ChangeAdd    ChangeOp = "add"    // a new decision, or a later expiry for one in force
	ChangeLift   ChangeOp = "lift"   // lifted by an operator
	ChangeExpire ChangeOp = "expire" // its time ran out
)

// Change is one decision added, lifted or expired by an envelope.
type Change struct {
	Op       ChangeOp
	Decision Decision
}

// Decision is an alliance decision: the phalanx decision (Origin alliance,
// or manual for a KindManual; LastSeen is when the policy was met, so
// Until is that plus Duration), who reported it and which stream position
// made it a decision.
type Decision struct {
	phalanx.Decision
	Reporters []ledger.MemberID // in ledger order
	Since     uint64
}

// Outcome is what applying one envelope did.
type Outcome struct {
	Accepted bool
	Reason   string // why not accepted; a stable string metrics label by
	Changes  []Change
	// Refused counts the reports of an accepted KindReports batch that
	// were not folded (Rejections says why).
	Refused int
}

// Rejection reasons.
const (
	ReasonBadBody                 = "bad-body"
	ReasonBadSignature            = "bad-signature"
	ReasonWrongAlliance           = "wrong-alliance"
	ReasonUnknownAuthor           = "unknown-author"
	ReasonExpelled                = "expelled"
	ReasonReplay                  = "replay"
	ReasonOutOfOrder              = "out-of-order"
	ReasonClockSkew               = "clock-skew"
	ReasonRateLimit               = "rate-limit"
	ReasonTerritory               = "territory"
	ReasonPact                    = "pact"
	ReasonUncorroboratedProtected = "uncorroborated-protected"
	ReasonDuplicate               = "duplicate"
	ReasonForbidden               = "forbidden"  // the author's role may not do this
	ReasonBadGrant                = "bad-grant"  // admission without a valid invitation
	ReasonNonceUsed               = "nonce-used" // invitation already used
	ReasonUnknownDrill            = "unknown-drill"
	ReasonUnknownKind             = "unknown-kind"
	ReasonFull                    = "full"      // a cap on members or ceasefires is reached
	ReasonStaleSeq                = "stale-seq" // stream sequence not after the last applied
)

// MemberState is a member as the fold knows it.
type MemberState struct {
	charter.Member           // PublicKey is the current key, after rotations
	Admitted       uint64    `json:"admitted"` // stream position of its admission; 0 for charter members
	LastHeartbeat  time.Time `json:"last_heartbeat"`
	Applied        uint64    `json:"applied"` // the position its last heartbeat reported
	Flagged        string    `json:"flagged"` // why it was flagged, e.g. "rate-limit"
	Expelled       bool      `json:"expelled"`
}

// Breach is a report against a pact party.
type Breach struct {
	Seq      uint64
	At       time.Time
	Author   ledger.MemberID
	Pact     string
	Value    netip.Prefix
	Scenario string
}

// DrillAck is one member's confirmation of a drill.
type DrillAck struct {
	Member    ledger.MemberID
	Latency   time.Duration // ack's stream time − drill's stream time
	InForceAt time.Time     // as the member reported it, on its own clock
}

// DrillResult is one drill and its acknowledgements, in ledger order.
type DrillResult struct {
	ID     string
	Seq    uint64
	At     time.Time
	Author ledger.MemberID
	Value  netip.Addr
	Acks   []DrillAck
}

type member struct {
	MemberState
	LastSeq  uint64
	LastID   string
	Reports  []time.Time // stream times of its recent reports, sightings and manual decisions
	Protects bool        // a protected party
}

type report struct {
	Member    ledger.MemberID
	Guarantor ledger.MemberID // set for a protected party
	Protected bool
	Manual    bool
	Seq       uint64
	At        time.Time
	Scenario  string
	Type      phalanx.DecisionType
	Duration  time.Duration
	FirstSeen time.Time
	Events    int
	Evidence  []string
}

type pending struct {
	Value   netip.Prefix
	Reports []report
}

type sighting struct {
	Member    ledger.MemberID
	Guarantor ledger.MemberID
	Protected bool
	At        time.Time
	Scenario  string
	Events    int
}

type sightings struct {
	Source netip.Addr
	List   []sighting
}

type ceasefire struct {
	ledger.Ceasefire
	Author ledger.MemberID
	Seq    uint64
}

// Fold is the alliance state folded from the ledger. It is not safe for
// concurrent use.
type Fold struct {
	log     *slog.Logger
	caps    caps
	self    ledger.MemberID
	id      string // the alliance ID: the genesis envelope's ID
	genesis ledger.Envelope
	charter charter.Charter
	policy  charter.Policy
	applied uint64

	members map[ledger.MemberID]*member
	order   []ledger.MemberID // charter order, then admissions

	decisions map[netip.Prefix]*Decision
	expiries  expiryHeap
	bits      map[int]int // prefix lengths in use → decision count, so Lookup probes only those

	// For the member mirroring the decisions (mirror.go), not folded
	// state: no snapshot holds them.
	removals   uint64         // decisions removed: lifted, expired or evicted
	evicted    []netip.Prefix // evicted by put since the last Evicted
	evictedAll bool           // more than maxEvictedKept were

	pending     map[netip.Prefix]*list.Element // of *pending
	pendingLRU  *list.List
	sighted     map[netip.Addr]*list.Element // of *sightings
	sightingLRU *list.List

	nonces     map[string]struct{}
	nonceOrder []string

	ceasefires []ceasefire
	drills     []DrillResult
	breaches   []Breach
	rejections map[string]uint64
}

// New starts a fold from the genesis envelope: a KindCharter envelope whose
// body is the founding charter, signed by its founder.
func New(genesis ledger.Envelope, opts Options) (*Fold, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := charter.VerifyGenesis(genesis)
	if err != nil {
		return nil, fmt.Errorf("alliance: %w", err)
	}
	f := &Fold{
		log: log, caps: defaultCaps(), self: opts.Self, id: envelopeID(genesis), genesis: genesis,
		members:     make(map[ledger.MemberID]*member),
		decisions:   make(map[netip.Prefix]*Decision),
		bits:        make(map[int]int),
		pending:     make(map[netip.Prefix]*list.Element),
		pendingLRU:  list.New(),
		sighted:     make(map[netip.Addr]*list.Element),
		sightingLRU: list.New(),
		nonces:      make(map[string]struct{}),
		rejections:  make(map[string]uint64),
	}
	if err := f.setCharter(c); err != nil {
		return nil, err
	}
	founder := f.members[c.Founder] // VerifyGenesis made sure it is listed
	founder.LastSeq, founder.LastID = genesis.Seq, f.id
	return f, nil
}

// setCharter installs a charter version: its members join (or are updated
// in role, territory and council seat; a rotated key and the chain
// position are kept).
func (f *Fold) setCharter(c charter.Charter) error {
	for _, m := range c.Members {
		if len(m.PublicKey) != 32 || memberID(m.PublicKey) != m.ID {
			return fmt.Errorf("alliance: charter member %s: public key does not match its ID", m.ID)
		}
	}
	if len(c.Members) > maxMembers {
		return fmt.Errorf("alliance: charter lists %d members, at most %d", len(c.Members), maxMembers)
	}
	f.charter, f.policy = c, withDefaults(c.Policy)
	for _, cm := range c.Members {
		cm.Territory = normalizeAll(cm.Territory)
		if m, ok := f.members[cm.ID]; ok {
			cm.PublicKey = m.PublicKey
			m.Member = cm
			m.Protects = cm.Role == ledger.RoleProtected
			continue
		}
		f.members[cm.ID] = &member{MemberState: MemberState{Member: cm}, Protects: cm.Role == ledger.RoleProtected}
		f.order = append(f.order, cm.ID)
	}
	return nil
}

// Charter is the charter in force.
func (f *Fold) Charter() charter.Charter { return f.charter }

// Applied is the last stream position applied.
func (f *Fold) Applied() uint64 { return f.applied }

// Apply folds one envelope; seq is its stream sequence and at its stream
// timestamp, the same for every member: windows, expiry and skew are
// measured on it, never on the local clock.
func (f *Fold) Apply(env ledger.Envelope, seq uint64, at time.Time) Outcome {
	return f.ApplyReceived(ledger.Receive(env), seq, at)
}

// ApplyReceived is Apply for an envelope as it came off the wire
// (ledger.DecodeReceived): it is verified on the bytes it came in and its
// body is not decoded again.
func (f *Fold) ApplyReceived(rec ledger.Received, seq uint64, at time.Time) Outcome {
	at = at.UTC()
	if seq <= f.applied && f.applied > 0 {
		return f.reject(rec.Envelope(), seq, ReasonStaleSeq)
	}
	f.applied = seq
	var changes []Change
	changes = f.expire(at, changes)
	out := f.apply(rec, seq, at)
	out.Changes = append(changes, out.Changes...)
	return out
}

func (f *Fold) apply(rec ledger.Received, seq uint64, at time.Time) Outcome {
	env := rec.Envelope()
	if env.Kind == ledger.KindCharter && env.Seq == f.genesis.Seq && env.Author == f.genesis.Author && envelopeID(env) == f.id {
		// The genesis itself, as the stream's first message: already folded.
		return Outcome{Accepted: true}
	}
	m, ok := f.members[env.Author]
	if !ok {
		if env.Kind == ledger.KindAdmission {
			return f.admit(env, seq, at)
		}
		return f.reject(env, seq, ReasonUnknownAuthor)
	}
	if m.Expelled {
		return f.reject(env, seq, ReasonExpelled)
	}
	if rec.Verify(m.PublicKey) != nil {
		return f.reject(env, seq, ReasonBadSignature)
	}
	if env.Alliance != f.id {
		return f.reject(env, seq, ReasonWrongAlliance)
	}
	switch {
	case env.Seq <= m.LastSeq:
		return f.reject(env, seq, ReasonReplay)
	case env.Seq != m.LastSeq+1 || env.Prev != m.LastID:
		return f.reject(env, seq, ReasonOutOfOrder)
	}
	// The envelope is authentic and next in its author's chain: it moves
	// the chain even if what it asks is refused, so the author's later
	// envelopes still chain.
	m.LastSeq, m.LastID = env.Seq, rec.ID()
	if d := env.Time.Sub(at); d > f.policy.MaxClockSkew || d < -f.policy.MaxClockSkew {
		return f.reject(env, seq, ReasonClockSkew)
	}
	switch env.Kind {
	case ledger.KindReport, ledger.KindManual, ledger.KindSighting:
		if !f.allowReport(m, seq, at) {
			return f.reject(env, seq, ReasonRateLimit)
		}
	}
	var out Outcome
	switch env.Kind {
	case ledger.KindReport, ledger.KindManual:
		out = f.applyReport(env, rec.Payload(), m, seq, at)
	case ledger.KindReports:
		out = f.applyReports(env, rec.Payload(), m, seq, at)
	case ledger.KindSighting:
		out = f.applySighting(env, m, seq, at)
	case ledger.KindLift:
		out = f.applyLift(env, m, at)
	case ledger.KindCeasefire:
		out = f.applyCeasefire(env, m, seq, at)
	case ledger.KindCeasefireEnd:
		out = f.applyCeasefireEnd(env, m)
	case ledger.KindAdmission:
		out = Outcome{Reason: ReasonDuplicate} // a member is admitted once
	case ledger.KindExpel:
		out = f.applyExpel(env, m, seq)
	case ledger.KindKeyRotation:
		out = f.applyKeyRotation(env, m)
	case ledger.KindDrill:
		out = f.applyDrill(env, m, seq, at)
	case ledger.KindDrillAck:
		out = f.applyDrillAck(env, m, at)
	case ledger.KindHeartbeat:
		out = f.applyHeartbeat(env, m, at)
	case ledger.KindCharter:
		out = f.applyCharter(env, m)
	default:
		out = Outcome{Reason: ReasonUnknownKind}
	}
	if !out.Accepted {
		f.count(env, seq, out.Reason)
	}
	return out
}

// allowReport counts one report, sighting or manual decision against its
// author's rate limit, and flags the author the first time it is over.
func (f *Fold) allowReport(m *member, seq uint64, at time.Time) bool {
	if f.allow(m, at) {
		return true
	}
	if m.Flagged == "" {
		f.log.Warn("alliance: member flagged", "member", m.ID, "reason", ReasonRateLimit, "seq", seq)
	}
	m.Flagged = ReasonRateLimit
	return false
}

// allow applies the author's sliding-minute rate limit on stream time.
func (f *Fold) allow(m *member, at time.Time) bool {
	cut := at.Add(-time.Minute)
	i := 0
	for i < len(m.Reports) && !m.Reports[i].After(cut) {
		i++
	}
	m.Reports = m.Reports[i:]
	if len(m.Reports) >= f.policy.MaxReportsPerMinute {
		return false
	}
	m.Reports = append(m.Reports, at)
	return true
}

func (f *Fold) reject(env ledger.Envelope, seq uint64, reason string) Outcome {
	f.count(env, seq, reason)
	return Outcome{Reason: reason}
}

func (f *Fold) count(env ledger.Envelope, seq uint64, reason string) {
	f.rejections[reason]++
	if reason != ReasonRateLimit {
		f.log.Info("alliance: envelope rejected", "reason", reason, "kind", env.Kind, "author", env.Author, "seq", seq, "self", f.self)
	}
}

// Rejections counts rejected envelopes by reason.
func (f *Fold) Rejections() map[string]uint64 {
	out := make(map[string]uint64, len(f.rejections))
	for k, v := range f.rejections {
		out[k] = v
	}
	return out
}

// Members lists members and protected parties: charter order, then
// admissions in ledger order.
func (f *Fold) Members() []MemberState {
	out := make([]MemberState, 0, len(f.order))
	for _, id := range f.order {
		ms := f.members[id].MemberState
		ms.Territory = slices.Clone(ms.Territory)
		out = append(out, ms)
	}
	return out
}

// Breaches lists recorded reports against pact parties, oldest first.
func (f *Fold) Breaches() []Breach { return slices.Clone(f.breaches) }

// Drills lists drill results, oldest first.
func (f *Fold) Drills() []DrillResult {
	out := make([]DrillResult, len(f.drills))
	for i, d := range f.drills {
		d.Acks = slices.Clone(d.Acks)
		out[i] = d
	}
	return out
}

// Decisions lists the decisions in force at at, sorted by value.
func (f *Fold) Decisions(at time.Time) []Decision {
	out := make([]Decision, 0, len(f.decisions))
	for _, d := range f.decisions {
		if d.Until().After(at) {
			out = append(out, cloneDecision(*d))
		}
	}
	slices.SortFunc(out, func(a, b Decision) int { return comparePrefix(a.Value, b.Value) })
	return out
}

// Lookup finds the most specific decision in force at at that covers a.
func (f *Fold) Lookup(a netip.Addr, at time.Time) (Decision, bool) {
	a = a.Unmap()
	for bits := a.BitLen(); bits >= 0; bits-- {
		if f.bits[bits] == 0 {
			continue
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if d, ok := f.decisions[p]; ok && d.Until().After(at) {
			return cloneDecision(*d), true
		}
	}
	return Decision{}, false
}

// Ceasefires lists the ceasefires in force at at, in ledger order.
func (f *Fold) Ceasefires(at time.Time) []ledger.Ceasefire {
	var out []ledger.Ceasefire
	for _, c := range f.ceasefires {
		if c.Until.After(at) {
			out = append(out, c.Ceasefire)
		}
	}
	return out
}

// Suspended says whether a ceasefire in force at at covers d: enforcers
// must stand down from it.
func (f *Fold) Suspended(d phalanx.Decision, at time.Time) bool {
	for _, c := range f.ceasefires {
		if Covers(c.Ceasefire, d, at) {
			return true
		}
	}
	return false
}

// Covers says whether ceasefire c, at time at, covers decision d: c is in
// force, and its scenario and scope (when it has them) match d. A member
// applies it to the decisions it takes alone too (its own detections, its
// imports), from the ceasefires the fold lists.
func Covers(c ledger.Ceasefire, d phalanx.Decision, at time.Time) bool {
	if !c.Until.After(at) {
		return false
	}
	if c.Scenario != "" && c.Scenario != d.Scenario {
		return false
	}
	if c.Scope.IsValid() && !c.Scope.Overlaps(d.Value) {
		return false
	}
	return true
}

func cloneDecision(d Decision) Decision {
	d.Reporters = slices.Clone(d.Reporters)
	d.Evidence = slices.Clone(d.Evidence)
	return d
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// normalize makes equal values equal keys: host bits masked, IPv4-mapped
// IPv6 unmapped.
func normalize(p netip.Prefix) netip.Prefix { return phalanx.NormalizePrefix(p) }

func normalizeAll(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix // nil when empty, as a snapshot restores it
	for _, p := range ps {
		if p.IsValid() {
			out = append(out, normalize(p))
		}
	}
	return out
}

// expiry is a decision's end, kept in a heap so expiring costs O(log n);
// entries left by a lifted or extended decision are skipped when popped.
type expiry struct {
	until time.Time
	value netip.Prefix
}

type expiryHeap []expiry

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if c := h[i].until.Compare(h[j].until); c != 0 {
		return c < 0
	}
	return comparePrefix(h[i].value, h[j].value) < 0
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expire drops the decisions whose time ran out by at.
func (f *Fold) expire(at time.Time, changes []Change) []Change {
	for len(f.expiries) > 0 && !f.expiries[0].until.After(at) {
		e := heap.Pop(&f.expiries).(expiry)
		if d, ok := f.decisions[e.value]; ok && d.Until().Equal(e.until) {
			f.remove(e.value)
			changes = append(changes, Change{Op: ChangeExpire, Decision: *d})
		}
	}
	return changes
}

// put installs d and schedules its expiry; when the set is full the
// decision expiring first makes room.
func (f *Fold) put(d *Decision) {
	if _, ok := f.decisions[d.Value]; !ok {
		for len(f.decisions) >= f.caps.decisions && len(f.expiries) > 0 {
			e := heap.Pop(&f.expiries).(expiry)
			if old, ok := f.decisions[e.value]; ok && old.Until().Equal(e.until) {
				f.remove(e.value)
				f.noteEvicted(e.value)
			}
		}
		f.bits[d.Value.Bits()]++
	}
	f.decisions[d.Value] = d
	heap.Push(&f.expiries, expiry{until: d.Until(), value: d.Value})
	if len(f.expiries) > 2*len(f.decisions)+1024 {
		f.rebuildExpiries()
	}
}

func (f *Fold) rebuildExpiries() {
	f.expiries = f.expiries[:0]
	for v, d := range f.decisions {
		f.expiries = append(f.expiries, expiry{until: d.Until(), value: v})
	}
	heap.Init(&f.expiries)
}

func (f *Fold) remove(v netip.Prefix) {
	if _, ok := f.decisions[v]; !ok {
		return
	}
	delete(f.decisions, v)
	f.removals++
	if f.bits[v.Bits()]--; f.bits[v.Bits()] <= 0 {
		delete(f.bits, v.Bits())
	}
}
