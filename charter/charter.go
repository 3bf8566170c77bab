package charter

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phalanx-defence/phalanx/ledger"
)

// Limits on what a charter may say. They keep a typo (a window of 1ns, a
// corroboration of 1000) from being accepted and explain what is sane.
const (
	MaxNameLen         = 64  // alliance, member, pact and scenario names, in bytes
	MaxCorroboration   = 100 // members that can be asked to agree
	MaxMembers         = 1000
	MaxPacts           = 1000
	MaxPrefixes        = 1000 // per member or pact
	MaxScenarioEntries = 200
	MaxCharterSize     = ledger.MaxEnvelopeSize
)

// Territory and pact prefixes may not be broader than these: a member
// claiming 0.0.0.0/0 would exempt every attacker from every decision.
const (
	minIPv4Bits = 8
	minIPv6Bits = 16
)

// New makes the founding charter (version 1): the founder is its only
// member, with role member, on the council, with the given territory
// (prefixes are masked to their network address), and the default policy.
func New(name string, founder ledger.Identity, founderName string, territory []netip.Prefix, at time.Time) Charter {
	var terr []netip.Prefix
	for _, p := range territory {
		terr = append(terr, p.Masked())
	}
	return Charter{
		Name:    name,
		Version: 1,
		Founder: founder.ID,
		Created: at.UTC(),
		Members: []Member{{
			ID:        founder.ID,
			Name:      founderName,
			PublicKey: bytes.Clone(founder.Public),
			Role:      ledger.RoleMember,
			Council:   true,
			Territory: terr,
		}},
		Policy: DefaultPolicy(),
	}
}

// DefaultPolicy is the consultation policy of a new charter. Most
// scenarios need two members to agree; the ones where one member's
// detection is already near-certain need one:
//
//   - http-exploit: an exploit payload (traversal, injection, a CVE path);
//   - http-sensitive-files: five distinct secret files (/.env, /.git/config)
//     within a minute, which no browser or crawler asks for;
//   - http-open-proxy: CONNECT or absolute URIs to a web server;
//   - ssh-bf: six password failures within about a minute, a pace no
//     person mistyping reaches (the slow and key scenarios stay at two);
//   - ssh-refused-conn: a connection the member's tcpwrappers already refused;
//   - manual: an operator's own decision.
//
// The slow brute-force and probing scenarios stay at two: a member's office
// behind one NAT address or a misconfigured job should not be banned
// everywhere on one member's word.
func DefaultPolicy() Policy {
	return Policy{
		Corroboration: 2,
		Window:        time.Hour,
		Scenarios: map[string]int{
			"http-exploit":         1,
			"http-sensitive-files": 1,
			"http-open-proxy":      1,
			"ssh-refused-conn":     1,
			"ssh-bf":               1,
			"manual":               1,
		},
		SightingEvents:      6,
		SightingMembers:     2,
		SightingDuration:    4 * time.Hour,
		MaxReportsPerMinute: 600,
		MaxClockSkew:        5 * time.Minute,
	}
}

// Required is the number of distinct members whose reports a scenario
// needs: its exact entry in Scenarios, else the entry of the longest
// "prefix*" that matches it, else Corroboration.
func (p Policy) Required(scenario string) int {
	if n, ok := p.Scenarios[scenario]; ok {
		return n
	}
	best, n := -1, p.Corroboration
	for k, v := range p.Scenarios {
		prefix, ok := strings.CutSuffix(k, "*")
		if ok && len(prefix) > best && strings.HasPrefix(scenario, prefix) {
			best, n = len(prefix), v
		}
	}
	return n
}

// Member finds a member or protected party by ID.
func (c Charter) Member(id ledger.MemberID) (Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// CouncilKey is the public key of a council member, for checking the
// grants it signs (CheckAdmission). A fold that tracks key rotations
// passes its own lookup of current keys instead.
func (c Charter) CouncilKey(id ledger.MemberID) (ed25519.PublicKey, bool) {
	m, ok := c.Member(id)
	if !ok || !m.Council || len(m.PublicKey) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(m.PublicKey), true
}

// Validate checks the charter and lists every problem with what to fix.
func (c Charter) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if err := checkName("alliance name", c.Name); err != nil {
		errs = append(errs, err)
	}
	if c.Version < 1 {
		add("version %d: the founding charter is version 1 and each change adds one", c.Version)
	}
	if c.Created.IsZero() {
		add("created is missing: give the time the charter was written")
	} else if c.Created.Location() != time.UTC {
		add("created %s is not in UTC: write it with a Z", c.Created.Format(time.RFC3339))
	}
	if err := c.Founder.Check(); err != nil {
		add("founder: %v", err)
	}
	if len(c.Members) == 0 {
		add("no members: the founder at least must be listed")
	}
	if len(c.Members) > MaxMembers {
		add("%d members: at most %d", len(c.Members), MaxMembers)
	}
	byID := map[ledger.MemberID]Member{}
	names := map[string]bool{}
	keys := map[string]bool{}
	council := 0
	for i, m := range c.Members {
		label := fmt.Sprintf("member %d (%s)", i+1, quote(m.Name))
		if err := checkMember(m); err != nil {
			add("%s: %v", label, err)
		}
		if _, dup := byID[m.ID]; dup {
			add("%s: ID %s is listed twice: list each member once", label, m.ID)
		}
		byID[m.ID] = m
		if names[m.Name] {
			add("%s: the name is taken by another member: names must be unique", label)
		}
		names[m.Name] = true
		if len(m.PublicKey) > 0 && keys[string(m.PublicKey)] {
			add("%s: the public key is another member's: each member has its own", label)
		}
		keys[string(m.PublicKey)] = true
		if m.Council {
			council++
		}
	}
	for i, m := range c.Members {
		if m.Role != ledger.RoleProtected || m.Guarantor == "" {
			continue
		}
		label := fmt.Sprintf("member %d (%s)", i+1, quote(m.Name))
		g, ok := byID[m.Guarantor]
		switch {
		case m.Guarantor == m.ID:
			add("%s: a protected party cannot guarantee itself: name a member as guarantor", label)
		case !ok:
			add("%s: guarantor %s is not listed: name a member of this charter", label, m.Guarantor)
		case g.Role != ledger.RoleMember:
			add("%s: guarantor %s (%s) is a protected party: only a member (role member) can guarantee", label, m.Guarantor, quote(g.Name))
		}
	}
	if len(c.Members) > 0 && council == 0 {
		add("no council member: mark at least one member council, or nobody can change the charter")
	}
	if c.Version == 1 && c.Founder.Check() == nil {
		if f, ok := byID[c.Founder]; !ok {
			add("founder %s is not listed among the members", c.Founder)
		} else if !f.Council {
			add("founder %s (%s) must be on the council of the founding charter", c.Founder, quote(f.Name))
		}
	}
	if len(c.Pacts) > MaxPacts {
		add("%d pacts: at most %d", len(c.Pacts), MaxPacts)
	}
	pacts := map[string]bool{}
	for i, p := range c.Pacts {
		label := fmt.Sprintf("pact %d (%s)", i+1, quote(p.Name))
		if err := checkName("name", p.Name); err != nil {
			add("%s: %v", label, err)
		}
		if pacts[p.Name] {
			add("%s: the name is taken by another pact: names must be unique", label)
		}
		pacts[p.Name] = true
		if len(p.Prefixes) == 0 {
			add("%s: no prefixes: list the addresses the pact covers, or remove it", label)
		}
		if err := checkPrefixes(p.Prefixes); err != nil {
			add("%s: %v", label, err)
		}
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("charter: %w", errors.Join(errs...))
}

// checkMember checks what one member entry says on its own (guarantors
// need the whole list and are checked by Validate and the fold).
func checkMember(m Member) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if err := checkName("name", m.Name); err != nil {
		errs = append(errs, err)
	}
	if err := m.ID.Check(); err != nil {
		errs = append(errs, err)
	}
	if len(m.PublicKey) != ed25519.PublicKeySize {
		add("public key is %d bytes: an ed25519 key is %d", len(m.PublicKey), ed25519.PublicKeySize)
	} else if id := ledger.MemberIDOf(m.PublicKey); id != m.ID {
		add("ID %s is not the ID of its public key (%s): the ID is derived from the key", m.ID, id)
	}
	switch m.Role {
	case ledger.RoleMember:
		if m.Guarantor != "" {
			add("a member (role member) has no guarantor: remove it, or make the role protected")
		}
	case ledger.RoleProtected:
		if m.Council {
			add("a protected party cannot be on the council: make it a member first")
		}
		if m.Guarantor == "" {
			add("a protected party needs a guarantor: name the member who vouches for it")
		} else if err := m.Guarantor.Check(); err != nil {
			add("guarantor: %v", err)
		}
	default:
		add("role %s: use %q or %q", quote(string(m.Role)), ledger.RoleMember, ledger.RoleProtected)
	}
	if err := checkPrefixes(m.Territory); err != nil {
		add("territory: %v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// Validate checks the policy's values are sane.
func (p Policy) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy: "+format, args...))
	}
	if p.Corroboration < 1 || p.Corroboration > MaxCorroboration {
		add("corroboration %d: between 1 (one member's report is enough) and %d", p.Corroboration, MaxCorroboration)
	}
	checkDur := func(what string, d, min, max time.Duration) {
		if d < min || d > max {
			add("%s %s: between %s and %s", what, human(d), human(min), human(max))
		}
	}
	checkDur("window", p.Window, time.Minute, 7*24*time.Hour)
	if len(p.Scenarios) > MaxScenarioEntries {
		add("%d scenario entries: at most %d", len(p.Scenarios), MaxScenarioEntries)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Scenarios)) {
		v := p.Scenarios[k]
		if err := checkScenarioName(k); err != nil {
			add("scenario %s: %v", quote(k), err)
		}
		if v < 1 || v > MaxCorroboration {
			add("scenario %s: corroboration %d: between 1 and %d", quote(k), v, MaxCorroboration)
		}
	}
	if p.SightingEvents < 2 || p.SightingEvents > 1_000_000 {
		add("sighting_events %d: between 2 and 1000000", p.SightingEvents)
	}
	if p.SightingMembers < 2 || p.SightingMembers > MaxCorroboration {
		add("sighting_members %d: between 2 (sightings pool what several members saw) and %d", p.SightingMembers, MaxCorroboration)
	} else if p.SightingEvents >= 2 && p.SightingMembers > p.SightingEvents {
		add("sighting_members %d is more than sighting_events %d: each member contributes at least one event", p.SightingMembers, p.SightingEvents)
	}
	checkDur("sighting_duration", p.SightingDuration, time.Minute, 30*24*time.Hour)
	if p.MaxReportsPerMinute < 1 || p.MaxReportsPerMinute > 1_000_000 {
		add("max_reports_per_minute %d: between 1 and 1000000", p.MaxReportsPerMinute)
	}
	checkDur("max_clock_skew", p.MaxClockSkew, time.Second, time.Hour)
	return errors.Join(errs...)
}

func checkScenarioName(k string) error {
	name, prefix := strings.CutSuffix(k, "*")
	if prefix && name == "" {
		return errors.New(`"*" alone matches every scenario: set corroboration instead`)
	}
	if strings.Contains(name, "*") {
		return errors.New(`"*" may only end a name, as a prefix match like ssh-*`)
	}
	if strings.ContainsFunc(name, unicode.IsSpace) {
		return errors.New("scenario names have no spaces")
	}
	return checkName("name", k)
}

// checkName accepts a short, printable, trimmed name.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is missing", what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%s is %d bytes long: at most %d", what, len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %s is not valid UTF-8", what, quote(s))
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%s %s starts or ends with a space", what, quote(s))
	case strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }):
		return fmt.Errorf("%s %s contains control or invisible characters", what, quote(s))
	}
	return nil
}

// checkPrefixes accepts network addresses (no host bits), no broader than
// /8 (IPv4) or /16 (IPv6), each once.
func checkPrefixes(ps []netip.Prefix) error {
	if len(ps) > MaxPrefixes {
		return fmt.Errorf("%d prefixes: at most %d", len(ps), MaxPrefixes)
	}
	var errs []error
	seen := map[netip.Prefix]bool{}
	for _, p := range ps {
		switch {
		case !p.IsValid():
			errs = append(errs, errors.New("an empty or invalid prefix"))
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("%s: write the IPv4 form", p))
		case p.Masked() != p:
			errs = append(errs, fmt.Errorf("%s has host bits set: write %s", p, p.Masked()))
		case p.Addr().Is4() && p.Bits() < minIPv4Bits, p.Addr().Is6() && p.Bits() < minIPv6Bits:
			errs = append(errs, fmt.Errorf("%s is too broad: at most /%d for IPv4 and /%d for IPv6", p, minIPv4Bits, minIPv6Bits))
		case seen[p]:
			errs = append(errs, fmt.Errorf("%s is listed twice", p))
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

// quote quotes a name for an error message, escaping what a terminal
// would interpret.
func quote(s string) string {
	if len(s) > MaxNameLen*2 {
		s = s[:MaxNameLen*2] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Decode parses a charter from JSON (a file an operator edits, say): at
// most MaxCharterSize bytes, no unknown fields, nothing after the object,
// and valid. White space and field order are free; the ledger carries the
// canonical form (FromEnvelope).
func Decode(b []byte) (Charter, error) {
	if len(b) > MaxCharterSize {
		return Charter{}, fmt.Errorf("charter: %d bytes, the limit is %d", len(b), MaxCharterSize)
	}
	var c Charter
	if err := strictUnmarshal(b, &c); err != nil {
		return Charter{}, fmt.Errorf("charter: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Charter{}, err
	}
	return c, nil
}

// FromEnvelope reads the charter a KindCharter envelope carries: the body
// must be its canonical encoding and the charter valid. It does not check
// the signature or who may author charters (the fold does: the founder for
// the genesis envelope, a council member for later versions).
func FromEnvelope(e ledger.Envelope) (Charter, error) {
	if e.Kind != ledger.KindCharter {
		return Charter{}, fmt.Errorf("charter: a %s envelope does not carry a charter", e.Kind)
	}
	c, err := ledger.DecodeBody[Charter](e)
	if err != nil {
		return Charter{}, fmt.Errorf("charter: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Charter{}, err
	}
	return c, nil
}

// VerifyGenesis checks that e founds an alliance: a KindCharter envelope
// without an alliance, the founder's first (Seq 1), authored by the
// charter's founder and signed with the key the charter lists for it, for
// a valid version-1 charter. The alliance's ID is then e.ID(); a joiner
// compares it with its invitation's Alliance.
func VerifyGenesis(e ledger.Envelope) (Charter, error) {
	c, err := FromEnvelope(e)
	if err != nil {
		return Charter{}, err
	}
	switch {
	case e.Alliance != "" || e.Seq != 1:
		return Charter{}, errors.New("genesis: not a founding envelope (it names an alliance or is not its author's first)")
	case c.Version != 1:
		return Charter{}, fmt.Errorf("genesis: charter version %d, want 1", c.Version)
	case e.Author != c.Founder:
		return Charter{}, fmt.Errorf("genesis: authored by %s, the charter's founder is %s", e.Author, c.Founder)
	}
	f, _ := c.Member(c.Founder) // Validate made sure the founder is listed
	if err := e.Verify(f.PublicKey); err != nil {
		return Charter{}, fmt.Errorf("genesis: %w", err)
	}
	return c, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// human writes a duration the short way: 1h, 90m, 4h30m, 7d.
func human(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
