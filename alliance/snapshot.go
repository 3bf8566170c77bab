package alliance

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// snapshotVersion changes whenever the snapshot's shape does; an old
// snapshot is refused and the member replays the ledger instead.
// Version 2: MemberState's fields gained snake_case JSON names (a version 1
// snapshot would restore them as zero values, e.g. un-expel a member).
// Version 3: the decisions follow the JSON in a binary form (encoding a
// million decisions as JSON took minutes of CPU).
const snapshotVersion = 3

// snapshot is the fold state but its decisions: a line of JSON, which the
// decisions follow in the form appendDecision writes. Ordered state
// (members, LRU lists, nonces) is kept in order so a restored fold evicts
// exactly as the original would have.
type snapshot struct {
	Version    int               `json:"version"`
	Alliance   string            `json:"alliance"`
	Applied    uint64            `json:"applied"`
	Charter    charter.Charter   `json:"charter"`
	Members    []member          `json:"members"`
	Pending    []pending         `json:"pending"`
	Sightings  []sightings       `json:"sightings"`
	Nonces     []string          `json:"nonces"`
	Ceasefires []ceasefire       `json:"ceasefires"`
	Drills     []DrillResult     `json:"drills"`
	Breaches   []Breach          `json:"breaches"`
	Rejections map[string]uint64 `json:"rejections"`
}

// Capture is a consistent copy of a fold's state, for a snapshot. Taking
// it copies pointers and the small state (members, pending reports,
// sightings: bounded by the caps); encoding it, the costly part, reads
// nothing of the fold, so a member captures under its lock and encodes
// after releasing it.
type Capture struct {
	s snapshot
	// The fold replaces a decision, never edits one, so sharing them
	// with it is safe.
	decisions []*Decision
}

// Capture copies the fold's state for Encode.
func (f *Fold) Capture() *Capture {
	c := &Capture{s: snapshot{
		Version: snapshotVersion, Alliance: f.id, Applied: f.applied, Charter: f.charter,
		Nonces: slices.Clone(f.nonceOrder), Ceasefires: slices.Clone(f.ceasefires), Drills: f.Drills(),
		Breaches: slices.Clone(f.breaches), Rejections: maps.Clone(f.rejections),
		Members:   make([]member, 0, len(f.order)),
		Pending:   make([]pending, 0, f.pendingLRU.Len()),
		Sightings: make([]sightings, 0, f.sightingLRU.Len()),
	}}
	// Slices the fold edits in place are copied; the others it replaces.
	for _, id := range f.order {
		m := *f.members[id]
		m.Reports = slices.Clone(m.Reports)
		c.s.Members = append(c.s.Members, m)
	}
	for e := f.pendingLRU.Front(); e != nil; e = e.Next() {
		p := *e.Value.(*pending)
		p.Reports = slices.Clone(p.Reports)
		c.s.Pending = append(c.s.Pending, p)
	}
	for e := f.sightingLRU.Front(); e != nil; e = e.Next() {
		ss := *e.Value.(*sightings)
		ss.List = slices.Clone(ss.List)
		c.s.Sightings = append(c.s.Sightings, ss)
	}
	c.decisions = make([]*Decision, 0, len(f.decisions))
	for _, d := range f.decisions {
		c.decisions = append(c.decisions, d)
	}
	return c
}

// Applied is the stream position the capture is at.
func (c *Capture) Applied() uint64 { return c.s.Applied }

// Encode writes the snapshot Restore reads.
func (c *Capture) Encode() ([]byte, error) {
	head, err := json.Marshal(c.s)
	if err != nil {
		return nil, fmt.Errorf("alliance: snapshot: %w", err)
	}
	slices.SortFunc(c.decisions, func(a, b *Decision) int { return comparePrefix(a.Value, b.Value) })
	b := make([]byte, 0, len(head)+1+binary.MaxVarintLen64+len(c.decisions)*80)
	b = append(append(b, head...), '\n')
	b = binary.AppendUvarint(b, uint64(len(c.decisions)))
	for _, d := range c.decisions {
		b = appendDecision(b, d)
	}
	return b, nil
}

// Snapshot encodes the fold's state; Restore continues from it at
// Applied()+1.
func (f *Fold) Snapshot() ([]byte, error) { return f.Capture().Encode() }

// Restore rebuilds a fold from genesis and a snapshot taken by Snapshot;
// apply the ledger from Applied()+1 on.
func Restore(genesis ledger.Envelope, snap []byte, opts Options) (*Fold, error) {
	// The snapshot is read before the genesis is verified: most damaged
	// snapshots are refused in microseconds then, not after a signature
	// check (which made FuzzRestore's minimisation of each new input take
	// its whole 60 s budget).
	head, rest, ok := bytes.Cut(snap, []byte{'\n'})
	if !ok {
		return nil, fmt.Errorf("alliance: restore: not a version %d snapshot: replay the ledger instead", snapshotVersion)
	}
	var s snapshot
	if err := json.Unmarshal(head, &s); err != nil {
		return nil, fmt.Errorf("alliance: restore: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("alliance: restore: snapshot version %d, want %d: replay the ledger instead", s.Version, snapshotVersion)
	}
	f, err := New(genesis, opts)
	if err != nil {
		return nil, err
	}
	if s.Alliance != f.id {
		return nil, fmt.Errorf("alliance: restore: snapshot of alliance %s, not %s", s.Alliance, f.id)
	}
	if len(s.Members) > maxMembers || len(s.Pending) > maxPendingValues || len(s.Sightings) > maxSightingSources ||
		len(s.Nonces) > maxNonces {
		return nil, fmt.Errorf("alliance: restore: snapshot exceeds the fold's caps")
	}
	ds, err := readDecisions(rest, f.caps.decisions)
	if err != nil {
		return nil, fmt.Errorf("alliance: restore: decisions: %w", err)
	}
	f.applied = s.Applied
	f.charter, f.policy = s.Charter, withDefaults(s.Charter.Policy)
	f.members, f.order = make(map[ledger.MemberID]*member, len(s.Members)), nil
	for i := range s.Members {
		m := s.Members[i]
		f.members[m.ID] = &m
		f.order = append(f.order, m.ID)
	}
	f.decisions = make(map[netip.Prefix]*Decision, len(ds))
	for _, d := range ds {
		f.decisions[d.Value] = d
		f.bits[d.Value.Bits()]++
	}
	f.rebuildExpiries()
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

// A decision in a snapshot, after the JSON line: the value (4 or 6, the
// address's bytes, the prefix length), then type, scenario, duration,
// first and last seen, events, origin, evidence, reporters and since.
// Integers are varints, times Unix seconds and nanoseconds (UTC), strings
// and lists a length and their items. The decisions are sorted by value,
// each once, so a fold snapshots to the bytes it was restored from.
func appendDecision(b []byte, d *Decision) []byte {
	a := d.Value.Addr()
	if a.Is4() {
		a4 := a.As4()
		b = append(append(b, 4), a4[:]...)
	} else {
		a16 := a.As16()
		b = append(append(b, 6), a16[:]...)
	}
	b = append(b, byte(d.Value.Bits()))
	b = appendString(b, string(d.Type))
	b = appendString(b, d.Scenario)
	b = binary.AppendVarint(b, int64(d.Duration))
	b = appendTime(b, d.FirstSeen)
	b = appendTime(b, d.LastSeen)
	b = binary.AppendVarint(b, int64(d.Events))
	b = appendString(b, string(d.Origin))
	b = binary.AppendUvarint(b, uint64(len(d.Evidence)))
	for _, e := range d.Evidence {
		b = appendString(b, e)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Reporters)))
	for _, r := range d.Reporters {
		b = appendString(b, string(r))
	}
	return binary.AppendUvarint(b, d.Since)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

var errShort = errors.New("truncated")

// decisionReader reads what appendDecision writes. The first error
// sticks; strings that repeat (types, scenarios, origins, reporters) are
// shared, as the fold's own decisions share them.
type decisionReader struct {
	b      []byte
	err    error
	intern map[string]string
}

// readDecisions reads the decisions of a snapshot: at most max, sorted by
// value without repeats, each value as the fold keys it, nothing after.
func readDecisions(b []byte, max int) ([]*Decision, error) {
	r := &decisionReader{b: b, intern: map[string]string{}}
	n := r.uvarint()
	if r.err == nil && n > uint64(max) {
		return nil, fmt.Errorf("%d decisions, more than the fold's cap of %d", n, max)
	}
	// Each decision takes at least 20 bytes: a count beyond that is a lie.
	ds := make([]*Decision, 0, min(n, uint64(len(r.b)/20)))
	for i := uint64(0); i < n && r.err == nil; i++ {
		d := r.decision()
		if r.err != nil {
			break
		}
		if len(ds) > 0 && comparePrefix(ds[len(ds)-1].Value, d.Value) >= 0 {
			return nil, fmt.Errorf("%s out of order or repeated", d.Value)
		}
		ds = append(ds, d)
	}
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) > 0:
		return nil, fmt.Errorf("%d bytes after the last decision", len(r.b))
	}
	return ds, nil
}

func (r *decisionReader) decision() *Decision {
	d := &Decision{}
	d.Value = r.value()
	d.Type = phalanx.DecisionType(r.string())
	d.Scenario = r.string()
	d.Duration = time.Duration(r.varint())
	d.FirstSeen = r.time()
	d.LastSeen = r.time()
	d.Events = int(r.varint())
	d.Origin = phalanx.Origin(r.string())
	if n := r.count(maxEvidence); n > 0 {
		d.Evidence = make([]string, n)
		for i := range d.Evidence {
			d.Evidence[i] = r.string()
		}
	}
	if n := r.count(maxMembers); n > 0 {
		d.Reporters = make([]ledger.MemberID, n)
		for i := range d.Reporters {
			d.Reporters[i] = ledger.MemberID(r.string())
		}
	}
	d.Since = r.uvarint()
	return d
}

func (r *decisionReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *decisionReader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.fail(errShort)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *decisionReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decisionReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a list's length, at most max.
func (r *decisionReader) count(max int) int {
	n := r.uvarint()
	if n > uint64(max) || n > uint64(len(r.b)) {
		r.fail(fmt.Errorf("a list of %d items", n))
		return 0
	}
	return int(n)
}

func (r *decisionReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return ""
	}
	b := r.bytes(int(n))
	if s, ok := r.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= maxScenarioLen && len(r.intern) < 4096 {
		r.intern[s] = s
	}
	return s
}

func (r *decisionReader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= uint64(time.Second) {
		r.fail(fmt.Errorf("%d nanoseconds", nsec))
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *decisionReader) value() netip.Prefix {
	var a netip.Addr
	switch fam := r.bytes(1); {
	case fam == nil:
		return netip.Prefix{}
	case fam[0] == 4:
		if b := r.bytes(4); b != nil {
			a = netip.AddrFrom4([4]byte(b))
		}
	case fam[0] == 6:
		if b := r.bytes(16); b != nil {
			a = netip.AddrFrom16([16]byte(b))
		}
	default:
		r.fail(fmt.Errorf("address family %d", fam[0]))
		return netip.Prefix{}
	}
	bits := r.bytes(1)
	if r.err != nil {
		return netip.Prefix{}
	}
	p := netip.PrefixFrom(a, int(bits[0]))
	if !p.IsValid() || normalize(p) != p {
		r.fail(fmt.Errorf("%s/%d is not a value as the fold keys it", a, bits[0]))
		return netip.Prefix{}
	}
	return p
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
