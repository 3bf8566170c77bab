package charter

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustIdentity(t testing.TB) ledger.Identity {
	t.Helper()
	id, err := ledger.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sample is a charter with a founder, a second member, a protected party,
// two pacts and a policy with overrides.
func sample(t testing.TB) (Charter, []ledger.Identity) {
	t.Helper()
	ids := []ledger.Identity{mustIdentity(t), mustIdentity(t), mustIdentity(t)}
	c := New("Riverside Hosting Co-op", ids[0], "alpha", []netip.Prefix{netip.MustParsePrefix("192.0.2.77/24")}, t0)
	c.Members = append(c.Members,
		Member{ID: ids[1].ID, Name: "beta", PublicKey: ids[1].Public, Role: ledger.RoleMember,
			Territory: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48")}},
		Member{ID: ids[2].ID, Name: "gamma clinic", PublicKey: ids[2].Public, Role: ledger.RoleProtected, Guarantor: ids[0].ID,
			Territory: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}},
	)
	c.Pacts = []Pact{
		{Name: "uptime-checker", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/29")}},
		{Name: "old-scanner", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")}, Suspended: true},
	}
	c.Policy.Scenarios["ssh-*"] = 3
	c.Policy.Scenarios["ssh-slow-*"] = 2
	return c, ids
}

func TestNew(t *testing.T) {
	founder := mustIdentity(t)
	c := New("A", founder, "alpha", []netip.Prefix{netip.MustParsePrefix("192.0.2.77/24")}, t0.In(time.FixedZone("X", 7200)))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Version != 1 || c.Founder != founder.ID || c.Created.Location() != time.UTC || !c.Created.Equal(t0) {
		t.Fatalf("charter %+v", c)
	}
	m, ok := c.Member(founder.ID)
	if !ok || !m.Council || m.Role != ledger.RoleMember || m.Name != "alpha" {
		t.Fatalf("founder %+v %v", m, ok)
	}
	if m.Territory[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("territory not masked: %v", m.Territory)
	}
	if !reflect.DeepEqual(c.Policy, DefaultPolicy()) {
		t.Fatal("policy is not the default")
	}
	if _, ok := c.Member(ledger.MemberIDOf(nil)); ok {
		t.Fatal("found a stranger")
	}
	if _, ok := c.CouncilKey(founder.ID); !ok {
		t.Fatal("founder has no council key")
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Corroboration != 2 || p.Window != time.Hour || p.SightingEvents != 6 || p.SightingMembers != 2 ||
		p.SightingDuration != 4*time.Hour || p.MaxReportsPerMinute != 600 || p.MaxClockSkew != 5*time.Minute {
		t.Fatalf("defaults %+v", p)
	}
	for _, s := range []string{"http-exploit", "ssh-refused-conn", "ssh-bf", "manual"} {
		if p.Required(s) != 1 {
			t.Errorf("%s needs %d", s, p.Required(s))
		}
	}
	for _, s := range []string{"ssh-slow-bf", "ssh-user-enum", "http-probing", "mail-auth-bf"} {
		if p.Required(s) != 2 {
			t.Errorf("%s needs %d", s, p.Required(s))
		}
	}
}

func TestRequired(t *testing.T) {
	p := Policy{Corroboration: 3, Scenarios: map[string]int{
		"ssh-*":        2,
		"ssh-slow-*":   4,
		"ssh-slow-bf":  5,
		"http-exploit": 1,
	}}
	for s, want := range map[string]int{
		"ssh-bf":        2,
		"ssh-slow-bf":   5, // exact beats prefix
		"ssh-slow-prob": 4, // longest prefix
		"ssh-":          2,
		"ssh":           3,
		"http-exploit":  1,
		"http-exploit2": 3,
		"":              3,
	} {
		if got := p.Required(s); got != want {
			t.Errorf("Required(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	base, ids := sample(t)
	if err := base.Validate(); err != nil {
		t.Fatalf("sample: %v", err)
	}
	clone := func() Charter {
		var c Charter
		b, _ := json.Marshal(base)
		json.Unmarshal(b, &c)
		return c
	}
	stranger := mustIdentity(t)
	cases := []struct {
		name string
		mut  func(*Charter)
		want string // a piece of the error
	}{
		{"no name", func(c *Charter) { c.Name = "" }, "alliance name is missing"},
		{"long name", func(c *Charter) { c.Name = strings.Repeat("x", 65) }, "at most 64"},
		{"control in name", func(c *Charter) { c.Name = "a\x1b[31mb" }, "control"},
		{"bidi in name", func(c *Charter) { c.Name = "a\u202eb" }, "control"},
		{"spaced name", func(c *Charter) { c.Name = " a" }, "space"},
		{"version 0", func(c *Charter) { c.Version = 0 }, "version 0"},
		{"no created", func(c *Charter) { c.Created = time.Time{} }, "created is missing"},
		{"created not utc", func(c *Charter) { c.Created = t0.In(time.FixedZone("X", 3600)) }, "not in UTC"},
		{"bad founder", func(c *Charter) { c.Founder = "x" }, "founder"},
		{"founder not listed", func(c *Charter) { c.Founder = stranger.ID }, "not listed among the members"},
		{"founder off council", func(c *Charter) { c.Members[0].Council = false; c.Members[1].Council = true }, "must be on the council"},
		{"no members", func(c *Charter) { c.Members = nil }, "no members"},
		{"no council", func(c *Charter) { c.Members[0].Council = false; c.Version = 2 }, "no council member"},
		{"duplicate id", func(c *Charter) { c.Members[1] = c.Members[0]; c.Members[1].Name = "x" }, "listed twice"},
		{"duplicate name", func(c *Charter) { c.Members[1].Name = "alpha" }, "name is taken"},
		{"short key", func(c *Charter) { c.Members[1].PublicKey = c.Members[1].PublicKey[:31] }, "31 bytes"},
		{"id not key", func(c *Charter) { c.Members[1].ID = stranger.ID }, "not the ID of its public key"},
		{"bad id", func(c *Charter) { c.Members[1].ID = "BETA" }, "32 lowercase hex"},
		{"bad role", func(c *Charter) { c.Members[1].Role = "admin" }, `role "admin"`},
		{"member with guarantor", func(c *Charter) { c.Members[1].Guarantor = ids[0].ID }, "has no guarantor"},
		{"protected on council", func(c *Charter) { c.Members[2].Council = true }, "cannot be on the council"},
		{"protected no guarantor", func(c *Charter) { c.Members[2].Guarantor = "" }, "needs a guarantor"},
		{"guarantor unknown", func(c *Charter) { c.Members[2].Guarantor = stranger.ID }, "is not listed"},
		{"guarantor self", func(c *Charter) { c.Members[2].Guarantor = ids[2].ID }, "cannot guarantee itself"},
		{"guarantor protected", func(c *Charter) {
			c.Members = append(c.Members, Member{ID: stranger.ID, Name: "delta", PublicKey: stranger.Public, Role: ledger.RoleProtected, Guarantor: ids[2].ID})
		}, "is a protected party"},
		{"territory host bits", func(c *Charter) { c.Members[0].Territory[0] = netip.MustParsePrefix("192.0.2.1/24") }, "write 192.0.2.0/24"},
		{"territory too broad", func(c *Charter) { c.Members[0].Territory[0] = netip.MustParsePrefix("0.0.0.0/0") }, "too broad"},
		{"territory v6 too broad", func(c *Charter) { c.Members[1].Territory[0] = netip.MustParsePrefix("2000::/3") }, "too broad"},
		{"territory 4in6", func(c *Charter) { c.Members[1].Territory[0] = netip.MustParsePrefix("::ffff:192.0.2.0/120") }, "IPv4 form"},
		{"territory invalid", func(c *Charter) { c.Members[1].Territory[0] = netip.Prefix{} }, "invalid prefix"},
		{"territory twice", func(c *Charter) { c.Members[0].Territory = append(c.Members[0].Territory, c.Members[0].Territory[0]) }, "listed twice"},
		{"pact no name", func(c *Charter) { c.Pacts[0].Name = "" }, "pact 1"},
		{"pact dup", func(c *Charter) { c.Pacts[1].Name = c.Pacts[0].Name }, "taken by another pact"},
		{"pact empty", func(c *Charter) { c.Pacts[0].Prefixes = nil }, "no prefixes"},
		{"pact broad", func(c *Charter) { c.Pacts[0].Prefixes[0] = netip.MustParsePrefix("10.0.0.0/7") }, "too broad"},
		{"corroboration 0", func(c *Charter) { c.Policy.Corroboration = 0 }, "corroboration 0"},
		{"corroboration huge", func(c *Charter) { c.Policy.Corroboration = 1000 }, "corroboration 1000"},
		{"window 1ns", func(c *Charter) { c.Policy.Window = 1 }, "window 1ns"},
		{"window 1y", func(c *Charter) { c.Policy.Window = 365 * 24 * time.Hour }, "window 365d"},
		{"scenario star", func(c *Charter) { c.Policy.Scenarios["*"] = 1 }, "set corroboration instead"},
		{"scenario mid star", func(c *Charter) { c.Policy.Scenarios["ssh-*-bf"] = 1 }, "may only end"},
		{"scenario space", func(c *Charter) { c.Policy.Scenarios["ssh bf"] = 1 }, "no spaces"},
		{"scenario empty", func(c *Charter) { c.Policy.Scenarios[""] = 1 }, "name is missing"},
		{"scenario 0", func(c *Charter) { c.Policy.Scenarios["ssh-bf"] = 0 }, "corroboration 0"},
		{"sighting events", func(c *Charter) { c.Policy.SightingEvents = 1 }, "sighting_events 1"},
		{"sighting members", func(c *Charter) { c.Policy.SightingMembers = 1 }, "sighting_members 1"},
		{"sighting members > events", func(c *Charter) { c.Policy.SightingMembers = 7 }, "more than sighting_events"},
		{"sighting duration", func(c *Charter) { c.Policy.SightingDuration = 0 }, "sighting_duration"},
		{"max reports", func(c *Charter) { c.Policy.MaxReportsPerMinute = 0 }, "max_reports_per_minute 0"},
		{"skew", func(c *Charter) { c.Policy.MaxClockSkew = 2 * time.Hour }, "max_clock_skew 2h"},
	}
	for _, tc := range cases {
		c := clone()
		if err := c.Validate(); err != nil {
			t.Fatalf("clone: %v", err)
		}
		tc.mut(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
	// Every problem is reported, not only the first.
	c := clone()
	c.Name = ""
	c.Policy.Window = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "alliance name") || !strings.Contains(err.Error(), "window") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestExplain(t *testing.T) {
	c, _ := sample(t)
	out := c.Explain()
	t.Log("\n" + out)
	must := []string{c.Name, "600 a minute", "5m", "2 distinct members", "within 1h", "6 events", "4h"}
	for _, m := range c.Members {
		must = append(must, m.Name, string(m.ID))
	}
	for _, p := range c.Pacts {
		must = append(must, p.Name, p.Prefixes[0].String())
	}
	for k := range c.Policy.Scenarios {
		must = append(must, k)
	}
	must = append(must, "192.0.2.0/24", "2001:db8:1::/48", "198.51.100.0/28", // territory
		"ssh-*", "3 distinct members must agree", "suspended", "(holds)", "guaranteed by alpha", "council")
	for _, s := range must {
		if !strings.Contains(out, s) {
			t.Errorf("Explain does not mention %q", s)
		}
	}
	lonely := New("Solo", mustIdentity(t), "alpha", nil, t0)
	lonely.Policy.Scenarios = nil
	out = lonely.Explain()
	for _, s := range []string{"Pacts: none", "no member has declared territory"} {
		if !strings.Contains(out, s) {
			t.Errorf("Explain of a lone founder does not say %q:\n%s", s, out)
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 5 * time.Minute: "5m", 30 * time.Second: "30s",
		7 * 24 * time.Hour: "7d", time.Hour + time.Second: "1h0m1s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCharterEnvelope(t *testing.T) {
	c, ids := sample(t)
	var chain ledger.Chain
	g, err := ledger.Seal(ids[0], &chain, "", ledger.KindCharter, c, t0)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := ledger.Decode(g.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyGenesis(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("charter changed through the ledger:\n got %+v\nwant %+v", got, c)
	}
	// Signed by another member: not a genesis.
	var chain2 ledger.Chain
	forged, _ := ledger.Seal(ids[1], &chain2, "", ledger.KindCharter, c, t0)
	if _, err := VerifyGenesis(forged); err == nil {
		t.Fatal("genesis by a non-founder accepted")
	}
	// A later version is not a genesis.
	c2 := c
	c2.Version = 2
	later, _ := ledger.Seal(ids[0], &chain, g.ID(), ledger.KindCharter, c2, t0)
	if _, err := FromEnvelope(later); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyGenesis(later); err == nil {
		t.Fatal("version 2 accepted as genesis")
	}
	// An invalid charter is refused.
	bad := c
	bad.Name = ""
	var chain3 ledger.Chain
	e, _ := ledger.Seal(ids[0], &chain3, "", ledger.KindCharter, bad, t0)
	if _, err := FromEnvelope(e); err == nil {
		t.Fatal("invalid charter accepted")
	}
	// A report is not a charter.
	var chain4 ledger.Chain
	hb, _ := ledger.Seal(ids[0], &chain4, g.ID(), ledger.KindHeartbeat, ledger.Heartbeat{}, t0)
	if _, err := FromEnvelope(hb); err == nil {
		t.Fatal("heartbeat read as a charter")
	}
}

func TestDecode(t *testing.T) {
	c, _ := sample(t)
	b, _ := json.MarshalIndent(c, "", "  ")
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatal("indented round trip differs")
	}
	for name, in := range map[string]string{
		"unknown":  strings.Replace(string(b), `"name"`, `"nmae": 1, "name"`, 1),
		"trailing": string(b) + "{}",
		"invalid":  strings.Replace(string(b), `"version": 1`, `"version": 0`, 1),
		"huge":     string(b) + strings.Repeat(" ", MaxCharterSize),
		"null":     "null",
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeCharter(f *testing.F) {
	id, err := ledger.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	c := New("A", id, "alpha", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, t0)
	c.Pacts = []Pact{{Name: "p", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	b, _ := json.Marshal(c)
	f.Add(b)
	f.Add([]byte(`{"name":"x","members":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid charter: %v", err)
		}
		_ = c.Explain()
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded charter rejected: %v\n%s", err, enc)
		}
		if enc2, _ := json.Marshal(c2); string(enc2) != string(enc) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
