package alliance

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type tmember struct {
	id   ledger.MemberID
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	seq  uint64
	prev string
}

// sign sets e's signature by priv.
func sign(e ledger.Envelope, priv ed25519.PrivateKey) ledger.Envelope {
	e.Sig = ed25519.Sign(priv, e.SigningBytes())
	return e
}

func (m *tmember) identity() ledger.Identity {
	return ledger.Identity{ID: m.id, Public: m.pub, Private: m.priv}
}

// admission is n's own first envelope, joining with a grant inviter signs.
func (h *harness) admission(inviter string, n *tmember, role ledger.Role, guarantor ledger.MemberID, territory ...netip.Prefix) ledger.Envelope {
	tok, err := charter.NewInvitation(h.m[inviter].identity(), h.alliance, "test", h.alliance, "127.0.0.1:4222", role, guarantor, time.Hour, h.at)
	if err != nil {
		h.t.Fatal(err)
	}
	inv, err := charter.ParseInvitation(tok)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.admissionWith(n, charter.EncodeGrant(inv.Grant()), inv.Nonce, role, guarantor, territory...)
}

func (h *harness) admissionWith(n *tmember, grant []byte, nonce string, role ledger.Role, guarantor ledger.MemberID, territory ...netip.Prefix) ledger.Envelope {
	h.m[string(n.id)] = n
	return h.env(string(n.id), ledger.KindAdmission, ledger.Admission{Member: n.id, Name: "n" + string(n.id[:6]), PublicKey: n.pub,
		Role: role, Guarantor: guarantor, Territory: territory, Nonce: nonce, Grant: grant})
}

func newTMember(name string) *tmember {
	seed := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	return &tmember{id: memberID(pub), pub: pub, priv: priv}
}

// harness is an alliance of founder a (council, territory 10.0.0.0/8),
// members b and c, protected party p guaranteed by b, outsider x, and a
// pact with an uptime checker at 203.0.113.0/24.
type harness struct {
	t        testing.TB
	f        *Fold
	genesis  ledger.Envelope
	alliance string
	seq      uint64
	at       time.Time
	m        map[string]*tmember
	log      []applied // everything applied, to replay in another fold
}

type applied struct {
	env ledger.Envelope
	seq uint64
	at  time.Time
}

func testPolicy() charter.Policy {
	return charter.Policy{
		Corroboration: 2, Window: time.Hour,
		Scenarios:      map[string]int{"ssh-exploit": 1, "http-cve*": 1},
		SightingEvents: 6, SightingMembers: 2, SightingDuration: 4 * time.Hour,
		MaxReportsPerMinute: 20, MaxClockSkew: 5 * time.Minute,
	}
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, at: t0, m: map[string]*tmember{}}
	for _, n := range []string{"a", "b", "c", "p", "x"} {
		h.m[n] = newTMember(n)
	}
	cm := func(n string, role ledger.Role) charter.Member {
		return charter.Member{ID: h.m[n].id, Name: n, PublicKey: h.m[n].pub, Role: role}
	}
	a := cm("a", ledger.RoleMember)
	a.Council = true
	a.Territory = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	p := cm("p", ledger.RoleProtected)
	p.Guarantor = h.m["b"].id
	c := charter.Charter{
		Name: "test", Version: 1, Founder: h.m["a"].id, Created: t0,
		Members: []charter.Member{a, cm("b", ledger.RoleMember), cm("c", ledger.RoleMember), p},
		Pacts:   []charter.Pact{{Name: "uptime", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}},
		Policy:  testPolicy(),
	}
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	g := sign(ledger.Envelope{Kind: ledger.KindCharter, Author: h.m["a"].id, Seq: 1, Time: t0, Body: body}, h.m["a"].priv)
	h.genesis, h.alliance = g, envelopeID(g)
	h.m["a"].seq, h.m["a"].prev = 1, h.alliance
	f, err := New(g, Options{Self: h.m["a"].id})
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	return h
}

// env builds the next envelope in n's chain, dated now.
func (h *harness) env(n string, kind ledger.Kind, body any) ledger.Envelope {
	m := h.m[n]
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	e := sign(ledger.Envelope{Alliance: h.alliance, Kind: kind, Author: m.id, Seq: m.seq + 1, Prev: m.prev, Time: h.at, Body: b}, m.priv)
	m.seq, m.prev = e.Seq, envelopeID(e)
	return e
}

func (h *harness) apply(e ledger.Envelope) Outcome {
	h.seq++
	h.log = append(h.log, applied{e, h.seq, h.at})
	return h.f.Apply(e, h.seq, h.at)
}

func (h *harness) send(n string, kind ledger.Kind, body any) Outcome {
	return h.apply(h.env(n, kind, body))
}

func rep(v, scenario string) ledger.Report {
	return ledger.Report{Value: mustValue(v), Type: phalanx.Ban, Scenario: scenario, Duration: 4 * time.Hour,
		FirstSeen: t0, LastSeen: t0, Events: 5, Evidence: []string{"Failed password for root from " + v}}
}

func mustValue(s string) netip.Prefix {
	p, err := phalanx.ParsePrefixOrAddr(s)
	if err != nil {
		panic(err)
	}
	return p
}

func values(ds []Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ValueString())
	}
	return out
}

func TestFold(t *testing.T) {
	const bad = "192.0.2.7"
	tests := []struct {
		name       string
		run        func(h *harness) Outcome // the last outcome is checked
		wantReason string
		want       []string          // decisions in force afterwards
		rejections map[string]uint64 // counts afterwards
	}{
		{
			name: "single member, high-confidence scenario",
			run:  func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep(bad, "ssh-exploit")) },
			want: []string{bad},
		},
		{
			name: "scenario prefix rule",
			run:  func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep(bad, "http-cve-2024-1")) },
			want: []string{bad},
		},
		{
			name: "k=2: one member is pending",
			run:  func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep(bad, "ssh-bf")) },
			want: []string{},
		},
		{
			name: "k=2: same member twice is not enough",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
				h.at = h.at.Add(time.Minute)
				return h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want: []string{},
		},
		{
			name: "k=2: two distinct members",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
				h.at = h.at.Add(time.Minute)
				return h.send("c", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want: []string{bad},
		},
		{
			name: "k=2: outside the window is not corroboration",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
				h.at = h.at.Add(61 * time.Minute)
				return h.send("c", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want: []string{},
		},
		{
			name: "manual decision follows the policy",
			run: func(h *harness) Outcome {
				r := rep(bad, "")
				r.Reason = "seen in our SIEM"
				h.send("b", ledger.KindManual, r)
				return h.send("c", ledger.KindManual, r)
			},
			want: []string{bad},
		},
		{
			name: "collective: three members two failures each",
			run: func(h *harness) Outcome {
				s := ledger.Sighting{Source: netip.MustParseAddr(bad), Scenario: "ssh-bf", Events: 2, Since: t0}
				h.send("a", ledger.KindSighting, s)
				h.send("b", ledger.KindSighting, s)
				return h.send("c", ledger.KindSighting, s)
			},
			want: []string{bad},
		},
		{
			name: "collective: one member's two failures",
			run: func(h *harness) Outcome {
				return h.send("a", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr(bad), Scenario: "ssh-bf", Events: 2})
			},
			want: []string{},
		},
		{
			name: "collective: one loud member is still one member",
			run: func(h *harness) Outcome {
				return h.send("a", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr(bad), Scenario: "ssh-bf", Events: 100})
			},
			want: []string{},
		},
		{
			name: "forged signature",
			run: func(h *harness) Outcome {
				e := h.env("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				e.Sig[0] ^= 1
				return h.apply(e)
			},
			wantReason: ReasonBadSignature,
			want:       []string{},
			rejections: map[string]uint64{ReasonBadSignature: 1},
		},
		{
			name: "signed by another member's key",
			run: func(h *harness) Outcome {
				e := h.env("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				return h.apply(sign(e, h.m["c"].priv))
			},
			wantReason: ReasonBadSignature,
			want:       []string{},
			rejections: map[string]uint64{ReasonBadSignature: 1},
		},
		{
			name: "replayed envelope",
			run: func(h *harness) Outcome {
				e := h.env("b", ledger.KindReport, rep(bad, "ssh-bf"))
				h.apply(e)
				return h.apply(e)
			},
			wantReason: ReasonReplay,
			want:       []string{},
			rejections: map[string]uint64{ReasonReplay: 1},
		},
		{
			name: "gap in the author's chain",
			run: func(h *harness) Outcome {
				h.env("b", ledger.KindReport, rep(bad, "ssh-bf")) // never delivered
				return h.send("b", ledger.KindReport, rep(bad, "ssh-exploit"))
			},
			wantReason: ReasonOutOfOrder,
			want:       []string{},
			rejections: map[string]uint64{ReasonOutOfOrder: 1},
		},
		{
			name:       "report from a non-member",
			run:        func(h *harness) Outcome { return h.send("x", ledger.KindReport, rep(bad, "ssh-exploit")) },
			wantReason: ReasonUnknownAuthor,
			want:       []string{},
			rejections: map[string]uint64{ReasonUnknownAuthor: 1},
		},
		{
			name: "wrong alliance",
			run: func(h *harness) Outcome {
				h.alliance = fmt.Sprintf("%x", sha256.Sum256([]byte("other")))
				return h.send("b", ledger.KindReport, rep(bad, "ssh-exploit"))
			},
			wantReason: ReasonWrongAlliance,
			want:       []string{},
			rejections: map[string]uint64{ReasonWrongAlliance: 1},
		},
		{
			name:       "report against allied territory",
			run:        func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep("10.1.2.3", "ssh-exploit")) },
			wantReason: ReasonTerritory,
			want:       []string{},
			rejections: map[string]uint64{ReasonTerritory: 1},
		},
		{
			name:       "range covering allied territory",
			run:        func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep("0.0.0.0/0", "ssh-exploit")) },
			wantReason: ReasonTerritory,
			want:       []string{},
			rejections: map[string]uint64{ReasonTerritory: 1},
		},
		{
			name:       "report against a pact party",
			run:        func(h *harness) Outcome { return h.send("b", ledger.KindReport, rep("203.0.113.9", "ssh-exploit")) },
			wantReason: ReasonPact,
			want:       []string{},
			rejections: map[string]uint64{ReasonPact: 1},
		},
		{
			name:       "protected party alone",
			run:        func(h *harness) Outcome { return h.send("p", ledger.KindReport, rep(bad, "ssh-exploit")) },
			wantReason: ReasonUncorroboratedProtected,
			want:       []string{},
			rejections: map[string]uint64{ReasonUncorroboratedProtected: 1},
		},
		{
			name: "protected party with another member is still alone",
			run: func(h *harness) Outcome {
				h.send("c", ledger.KindReport, rep(bad, "ssh-bf"))
				return h.send("p", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			wantReason: ReasonUncorroboratedProtected,
			want:       []string{},
			rejections: map[string]uint64{ReasonUncorroboratedProtected: 1},
		},
		{
			name: "protected party counts once its guarantor reported",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
				return h.send("p", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want: []string{bad},
		},
		{
			name: "guarantor after the protected party",
			run: func(h *harness) Outcome {
				h.send("p", ledger.KindReport, rep(bad, "ssh-bf"))
				return h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want:       []string{bad},
			rejections: map[string]uint64{ReasonUncorroboratedProtected: 1},
		},
		{
			name: "dated far in the future",
			run: func(h *harness) Outcome {
				h.at = t0.Add(time.Hour)
				e := h.env("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				h.at = t0
				return h.apply(e)
			},
			wantReason: ReasonClockSkew,
			want:       []string{},
			rejections: map[string]uint64{ReasonClockSkew: 1},
		},
		{
			name: "dated far in the past, and the chain goes on",
			run: func(h *harness) Outcome {
				e := h.env("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				h.at = t0.Add(time.Hour)
				h.apply(e)
				return h.send("b", ledger.KindReport, rep("192.0.2.8", "ssh-exploit"))
			},
			want:       []string{"192.0.2.8"},
			rejections: map[string]uint64{ReasonClockSkew: 1},
		},
		{
			name: "expelled member's later envelopes",
			run: func(h *harness) Outcome {
				h.send("a", ledger.KindExpel, ledger.Expel{Member: h.m["c"].id, Reason: "compromised"})
				return h.send("c", ledger.KindReport, rep(bad, "ssh-exploit"))
			},
			wantReason: ReasonExpelled,
			want:       []string{},
			rejections: map[string]uint64{ReasonExpelled: 1},
		},
		{
			name: "expelled member's pending report no longer counts",
			run: func(h *harness) Outcome {
				h.send("c", ledger.KindReport, rep(bad, "ssh-bf"))
				h.send("a", ledger.KindExpel, ledger.Expel{Member: h.m["c"].id})
				return h.send("b", ledger.KindReport, rep(bad, "ssh-bf"))
			},
			want: []string{},
		},
		{
			name:       "only the council expels",
			run:        func(h *harness) Outcome { return h.send("b", ledger.KindExpel, ledger.Expel{Member: h.m["c"].id}) },
			wantReason: ReasonForbidden,
			want:       []string{},
			rejections: map[string]uint64{ReasonForbidden: 1},
		},
		{
			name: "key rotation: the new key signs, the old one no longer does",
			run: func(h *harness) Outcome {
				nk := newTMember("b2")
				h.send("b", ledger.KindKeyRotation, ledger.KeyRotation{NewPublicKey: nk.pub})
				old := h.m["b"].priv
				h.m["b"].priv = nk.priv
				h.send("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				h.m["b"].priv = old
				return h.send("b", ledger.KindReport, rep("192.0.2.8", "ssh-exploit"))
			},
			wantReason: ReasonBadSignature,
			want:       []string{bad},
			rejections: map[string]uint64{ReasonBadSignature: 1},
		},
		{
			name: "lift",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				return h.send("c", ledger.KindLift, ledger.Lift{Value: mustValue(bad), Reason: "false positive"})
			},
			want: []string{},
		},
		{
			name: "decision expires",
			run: func(h *harness) Outcome {
				h.send("b", ledger.KindReport, rep(bad, "ssh-exploit"))
				h.at = h.at.Add(4 * time.Hour)
				return h.send("b", ledger.KindHeartbeat, ledger.Heartbeat{Applied: 1})
			},
			want: []string{},
		},
		{
			name: "drill becomes a decision at once",
			run: func(h *harness) Outcome {
				return h.send("c", ledger.KindDrill, ledger.Drill{ID: "d1", Value: netip.MustParseAddr("198.18.0.1")})
			},
			want: []string{"198.18.0.1"},
		},
		{
			name: "drill outside the reserved range",
			run: func(h *harness) Outcome {
				return h.send("c", ledger.KindDrill, ledger.Drill{ID: "d1", Value: netip.MustParseAddr(bad)})
			},
			wantReason: ReasonBadBody,
			want:       []string{},
			rejections: map[string]uint64{ReasonBadBody: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			out := tt.run(h)
			if out.Reason != tt.wantReason || out.Accepted != (tt.wantReason == "") {
				t.Errorf("outcome %+v, want reason %q", out, tt.wantReason)
			}
			if got := values(h.f.Decisions(h.at)); !slices.Equal(got, tt.want) {
				t.Errorf("decisions %v, want %v", got, tt.want)
			}
			want := tt.rejections
			if want == nil {
				want = map[string]uint64{}
			}
			if got := h.f.Rejections(); !maps.Equal(got, want) {
				t.Errorf("rejections %v, want %v", got, want)
			}
		})
	}
}

func TestCorroboratedDecision(t *testing.T) {
	h := newHarness(t)
	h.send("b", ledger.KindReport, rep("192.0.2.7", "ssh-bf"))
	h.at = h.at.Add(time.Minute)
	out := h.send("c", ledger.KindReport, rep("192.0.2.7", "ssh-bf"))
	if len(out.Changes) != 1 || out.Changes[0].Op != ChangeAdd {
		t.Fatalf("changes %+v, want one add", out.Changes)
	}
	d := out.Changes[0].Decision
	if !slices.Equal(d.Reporters, []ledger.MemberID{h.m["b"].id, h.m["c"].id}) || d.Since != h.seq ||
		d.Origin != phalanx.OriginAlliance || !d.Until().Equal(h.at.Add(4*time.Hour)) || d.Events != 10 {
		t.Errorf("decision %+v", d)
	}
	if got, ok := h.f.Lookup(netip.MustParseAddr("192.0.2.7"), h.at); !ok || got.Value != d.Value {
		t.Errorf("Lookup = %v, %v", got, ok)
	}
	if _, ok := h.f.Lookup(netip.MustParseAddr("192.0.2.8"), h.at); ok {
		t.Error("Lookup found a decision for another address")
	}
	if _, ok := h.f.Lookup(netip.MustParseAddr("192.0.2.7"), h.at.Add(5*time.Hour)); ok {
		t.Error("Lookup found an expired decision")
	}
}

func TestCharterVersion(t *testing.T) {
	h := newHarness(t)
	c := h.f.Charter()
	c.Version = 2
	c.Members = append(slices.Clone(c.Members), charter.Member{ID: h.m["x"].id, Name: "x", PublicKey: h.m["x"].pub, Role: ledger.RoleMember})
	if out := h.send("b", ledger.KindCharter, c); out.Reason != ReasonForbidden {
		t.Errorf("charter from a non-council member: %+v", out)
	}
	if out := h.send("a", ledger.KindCharter, c); !out.Accepted {
		t.Fatalf("charter version 2: %+v", out)
	}
	if out := h.send("x", ledger.KindReport, rep("192.0.2.7", "ssh-exploit")); len(out.Changes) != 1 {
		t.Errorf("member added by version 2: %+v", out)
	}
	if out := h.send("a", ledger.KindCharter, c); out.Reason != ReasonBadBody {
		t.Errorf("same version again: %+v", out)
	}
}

func TestPactBreachRecorded(t *testing.T) {
	h := newHarness(t)
	h.send("c", ledger.KindReport, rep("203.0.113.9", "ssh-bf"))
	b := h.f.Breaches()
	if len(b) != 1 || b[0].Pact != "uptime" || b[0].Author != h.m["c"].id || b[0].Value != mustValue("203.0.113.9") {
		t.Fatalf("breaches %+v", b)
	}
}

func TestRateLimitFlagsFlooder(t *testing.T) {
	h := newHarness(t)
	accepted := 0
	for i := range 1000 {
		h.at = t0.Add(time.Duration(i) * 50 * time.Millisecond) // 1,000 in 50 s
		v := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String()
		if h.send("b", ledger.KindReport, rep(v, "ssh-bf")).Accepted {
			accepted++
		}
	}
	if max := testPolicy().MaxReportsPerMinute; accepted > max {
		t.Errorf("%d reports accepted, at most %d allowed", accepted, max)
	}
	if n := len(h.f.Decisions(h.at)); n != 0 {
		t.Errorf("%d decisions from one uncorroborated member", n)
	}
	if got := h.f.Rejections()[ReasonRateLimit]; got != uint64(1000-accepted) {
		t.Errorf("rate-limit rejections %d, want %d", got, 1000-accepted)
	}
	for _, m := range h.f.Members() {
		if (m.ID == h.m["b"].id) != (m.Flagged == ReasonRateLimit) {
			t.Errorf("member %s flagged %q", m.Name, m.Flagged)
		}
	}
	// A minute later the member may report again.
	h.at = h.at.Add(2 * time.Minute)
	if out := h.send("b", ledger.KindReport, rep("192.0.2.1", "ssh-exploit")); !out.Accepted {
		t.Errorf("after the minute: %+v", out)
	}
}

func TestCeasefire(t *testing.T) {
	h := newHarness(t)
	h.send("b", ledger.KindReport, rep("192.0.2.7", "ssh-exploit"))
	d, _ := h.f.Lookup(netip.MustParseAddr("192.0.2.7"), h.at)
	if h.f.Suspended(d.Decision, h.at) {
		t.Fatal("suspended before any ceasefire")
	}
	h.send("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "c1", Until: h.at.Add(30 * time.Minute), Scenario: "ssh-exploit", Reason: "false positives"})
	if !h.f.Suspended(d.Decision, h.at) || len(h.f.Ceasefires(h.at)) != 1 {
		t.Error("ceasefire does not suspend the decision")
	}
	other := d.Decision
	other.Scenario = "http-probe"
	if h.f.Suspended(other, h.at) {
		t.Error("ceasefire for one scenario suspends another")
	}
	if later := h.at.Add(31 * time.Minute); h.f.Suspended(d.Decision, later) || len(h.f.Ceasefires(later)) != 0 {
		t.Error("ceasefire did not end by itself")
	}
	h.send("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "c2", Until: h.at.Add(time.Hour), Scope: mustValue("192.0.2.0/24")})
	if !h.f.Suspended(d.Decision, h.at) {
		t.Error("scoped ceasefire does not cover the decision")
	}
	h.send("a", ledger.KindCeasefireEnd, ledger.CeasefireEnd{ID: "c2"})
	h.send("a", ledger.KindCeasefireEnd, ledger.CeasefireEnd{ID: "c1"})
	if h.f.Suspended(d.Decision, h.at) {
		t.Error("ended ceasefire still suspends")
	}
}

func TestAdmissionAndDrill(t *testing.T) {
	h := newHarness(t)
	n := newTMember("n")
	h.m["n"] = n
	adm := h.admission("a", n, ledger.RoleMember, "", netip.MustParsePrefix("172.16.0.0/12"))
	if out := h.apply(adm); !out.Accepted {
		t.Fatalf("admission: %+v", out)
	}
	if out := h.apply(adm); out.Reason != ReasonReplay {
		t.Errorf("replayed admission: %+v", out)
	}
	if out := h.apply(h.admission("b", newTMember("y"), ledger.RoleMember, "")); out.Reason != ReasonBadGrant {
		t.Errorf("invited by a non-council member: %+v", out)
	}
	var a ledger.Admission
	if err := json.Unmarshal(adm.Body, &a); err != nil {
		t.Fatal(err)
	}
	if out := h.apply(h.admissionWith(newTMember("z"), a.Grant, a.Nonce, ledger.RoleMember, "")); out.Reason != ReasonNonceUsed {
		t.Errorf("reused invitation: %+v", out)
	}
	if out := h.apply(h.admission("a", newTMember("w"), ledger.RoleProtected, h.m["p"].id)); out.Reason != ReasonBadBody {
		t.Errorf("protected party guaranteed by a protected party: %+v", out)
	}
	h.at = h.at.Add(2 * time.Hour)
	late := h.admission("a", newTMember("v"), ledger.RoleMember, "")
	h.at = h.at.Add(2 * time.Hour)
	if out := h.apply(late); out.Reason != ReasonClockSkew {
		t.Errorf("late admission: %+v", out)
	}
	if out := h.send("b", ledger.KindReport, rep("172.16.1.1", "ssh-exploit")); out.Reason != ReasonTerritory {
		t.Errorf("new member's territory: %+v", out)
	}
	h.send("n", ledger.KindReport, rep("192.0.2.7", "ssh-bf"))
	if out := h.send("b", ledger.KindReport, rep("192.0.2.7", "ssh-bf")); len(out.Changes) != 1 {
		t.Errorf("new member's report does not count: %+v", out)
	}

	h.send("a", ledger.KindDrill, ledger.Drill{ID: "d1", Value: netip.MustParseAddr("198.18.0.9")})
	h.at = h.at.Add(40 * time.Millisecond)
	h.send("b", ledger.KindDrillAck, ledger.DrillAck{DrillID: "d1", InForceAt: h.at})
	h.at = h.at.Add(10 * time.Millisecond)
	h.send("n", ledger.KindDrillAck, ledger.DrillAck{DrillID: "d1", InForceAt: h.at})
	if out := h.send("n", ledger.KindDrillAck, ledger.DrillAck{DrillID: "d1"}); out.Reason != ReasonDuplicate {
		t.Errorf("second ack: %+v", out)
	}
	dr := h.f.Drills()
	if len(dr) != 1 || len(dr[0].Acks) != 2 || dr[0].Acks[0].Latency != 40*time.Millisecond || dr[0].Acks[1].Latency != 50*time.Millisecond {
		t.Errorf("drills %+v", dr)
	}
	h.send("n", ledger.KindHeartbeat, ledger.Heartbeat{Applied: h.seq})
	ms := h.f.Members()
	if last := ms[len(ms)-1]; last.ID != n.id || last.Admitted == 0 || last.Applied != h.seq-1 || !last.LastHeartbeat.Equal(h.at) {
		t.Errorf("admitted member state %+v", last)
	}
}

// script is a mixed ledger that exercises every kind of state.
func script(h *harness) {
	for i := range 40 {
		v := fmt.Sprintf("192.0.2.%d", i%13)
		switch i % 7 {
		case 0:
			h.send("b", ledger.KindReport, rep(v, "ssh-bf"))
		case 1:
			h.send("c", ledger.KindReport, rep(v, "ssh-bf"))
		case 2:
			h.send("a", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr(v), Scenario: "ssh-bf", Events: 3})
		case 3:
			h.send("c", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr(v), Scenario: "ssh-bf", Events: 3})
		case 4:
			h.send("p", ledger.KindReport, rep(v, "ssh-exploit"))
		case 5:
			h.send("b", ledger.KindReport, rep("203.0.113.1", "ssh-exploit"))
		case 6:
			h.send("a", ledger.KindLift, ledger.Lift{Value: mustValue(fmt.Sprintf("192.0.2.%d", i%5))})
		}
		h.at = h.at.Add(7 * time.Minute)
		if i == 20 {
			h.send("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "c", Until: h.at.Add(time.Hour)})
			h.send("a", ledger.KindDrill, ledger.Drill{ID: "d", Value: netip.MustParseAddr("198.18.1.1")})
			h.send("b", ledger.KindDrillAck, ledger.DrillAck{DrillID: "d"})
		}
	}
	h.send("b", ledger.KindReport, rep("192.0.2.200", "ssh-exploit"))
}

func TestDeterministicAndRestore(t *testing.T) {
	h := newHarness(t)
	script(h)
	other, err := New(h.genesis, Options{Self: h.m["c"].id})
	if err != nil {
		t.Fatal(err)
	}
	var restored *Fold
	half := len(h.log) / 2
	var outA, outB []Outcome
	for i, a := range h.log {
		outB = append(outB, other.Apply(a.env, a.seq, a.at))
		if i == half {
			snap, err := other.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if restored, err = Restore(h.genesis, snap, Options{}); err != nil {
				t.Fatal(err)
			}
			if restored.Applied() != a.seq {
				t.Fatalf("restored at %d, want %d", restored.Applied(), a.seq)
			}
		}
		if i > half {
			outA = append(outA, restored.Apply(a.env, a.seq, a.at))
		}
	}
	if !reflect.DeepEqual(outA, outB[half+1:]) {
		t.Error("restored fold's outcomes differ")
	}
	end := h.at
	want := h.f.Decisions(end)
	if len(want) == 0 {
		t.Fatal("script made no decisions: the test would prove nothing")
	}
	for name, f := range map[string]*Fold{"second": other, "restored": restored} {
		if got := f.Decisions(end); !reflect.DeepEqual(got, want) {
			t.Errorf("%s fold: decisions\n%v\nwant\n%v", name, got, want)
		}
		if !maps.Equal(f.Rejections(), h.f.Rejections()) || !reflect.DeepEqual(f.Breaches(), h.f.Breaches()) ||
			!reflect.DeepEqual(f.Drills(), h.f.Drills()) || !reflect.DeepEqual(f.Members(), h.f.Members()) {
			t.Errorf("%s fold: state differs:\n%v\n%v\n%+v\n%+v\n%+v\n%+v", name, f.Rejections(), h.f.Rejections(), f.Drills(), h.f.Drills(), f.Members(), h.f.Members())
		}
	}
	// The genesis itself, as the stream's first message, is accepted and
	// changes nothing; a stream position already applied is refused.
	g, err := New(h.genesis, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out := g.Apply(h.genesis, 1, t0); !out.Accepted {
		t.Errorf("genesis: %+v", out)
	}
	if out := g.Apply(h.genesis, 1, t0); out.Reason != ReasonStaleSeq {
		t.Errorf("stale position: %+v", out)
	}
}

func TestNewRejectsBadGenesis(t *testing.T) {
	h := newHarness(t)
	forged := h.genesis
	forged.Sig = slices.Clone(forged.Sig)
	forged.Sig[3] ^= 1
	report := h.genesis
	report.Kind = ledger.KindReport
	for name, g := range map[string]ledger.Envelope{"forged": forged, "not a charter": report, "empty": {}} {
		if _, err := New(g, Options{}); err == nil {
			t.Errorf("%s genesis accepted", name)
		}
	}
	if _, err := Restore(h.genesis, []byte(`{"version":1,"alliance":"other"}`), Options{}); err == nil {
		t.Error("snapshot of another alliance restored")
	}
}

func TestBoundedState(t *testing.T) {
	h := newHarness(t)
	h.f.caps = caps{pendingValues: 3, sightingSources: 3, nonces: 2, decisions: 4}
	pol := testPolicy()
	for i := range 10 {
		h.at = t0.Add(time.Duration(i) * time.Minute)
		v := fmt.Sprintf("192.0.2.%d", i)
		h.send("b", ledger.KindReport, rep(v, "ssh-bf"))
		h.send("c", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr(v), Scenario: "x", Events: 1})
		h.send("a", ledger.KindReport, rep(fmt.Sprintf("198.51.100.%d", i), "ssh-exploit"))
		h.apply(h.admission("a", newTMember(v), ledger.RoleMember, ""))
	}
	if len(h.f.pending) != 3 || h.f.pendingLRU.Len() != 3 || len(h.f.sighted) != 3 || len(h.f.nonces) != 2 || len(h.f.decisions) != 4 {
		t.Fatalf("state not bounded: pending %d, sighted %d, nonces %d, decisions %d",
			len(h.f.pending), len(h.f.sighted), len(h.f.nonces), len(h.f.decisions))
	}
	// The most recent survive: c corroborates the last pending value, not
	// the first, which was evicted.
	if out := h.send("c", ledger.KindReport, rep("192.0.2.9", "ssh-bf")); len(out.Changes) != 1 {
		t.Errorf("last pending value was evicted: %+v", out)
	}
	if out := h.send("c", ledger.KindReport, rep("192.0.2.0", "ssh-bf")); len(out.Changes) != 0 {
		t.Errorf("first pending value was kept: %+v", out)
	}
	if _, ok := h.f.Lookup(netip.MustParseAddr("198.51.100.9"), h.at); !ok {
		t.Error("newest decision evicted")
	}
	_ = pol
}

// FuzzApplySigned signs arbitrary bodies of every kind with a member's
// key, so the fuzzer reaches the rules rather than the signature check.
func FuzzApplySigned(f *testing.F) {
	for _, k := range []ledger.Kind{ledger.KindReport, ledger.KindSighting, ledger.KindManual, ledger.KindLift,
		ledger.KindCeasefire, ledger.KindCeasefireEnd, ledger.KindAdmission, ledger.KindExpel, ledger.KindKeyRotation,
		ledger.KindDrill, ledger.KindDrillAck, ledger.KindHeartbeat, ledger.KindCharter} {
		f.Add(string(k), []byte(`{}`), int64(0))
	}
	r, _ := json.Marshal(rep("192.0.2.7", "ssh-exploit"))
	f.Add(string(ledger.KindReport), r, int64(0))
	f.Fuzz(func(t *testing.T, kind string, body []byte, skew int64) {
		h := newHarness(t)
		if !json.Valid(body) {
			return
		}
		m := h.m["a"]
		e := sign(ledger.Envelope{Alliance: h.alliance, Kind: ledger.Kind(kind), Author: m.id, Seq: 2, Prev: m.prev,
			Time: t0.Add(time.Duration(skew)), Body: body}, m.priv)
		h.f.Apply(e, 2, t0)
		h.f.Decisions(t0)
		if _, err := h.f.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzApply(f *testing.F) {
	h := newHarness(f)
	b, _ := json.Marshal(h.env("b", ledger.KindReport, rep("192.0.2.7", "ssh-exploit")))
	f.Add(b, uint64(2))
	b, _ = json.Marshal(h.env("b", ledger.KindSighting, ledger.Sighting{Source: netip.MustParseAddr("192.0.2.7"), Scenario: "x", Events: 3}))
	f.Add(b, uint64(3))
	f.Add([]byte(`{"kind":"report","body":{"value":"::/0"}}`), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seq uint64) {
		// What the wire gives (ledger.Decode), else whatever JSON makes
		// of the bytes: the fold must survive envelopes Decode would refuse.
		e, err := ledger.Decode(data)
		if err != nil && json.Unmarshal(data, &e) != nil {
			return
		}
		fold, err := New(h.genesis, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fold.Apply(e, seq, t0)
		fold.Apply(e, seq+1, t0.Add(time.Second))
		fold.Decisions(t0)
		if _, err := fold.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkApplyCorroborated(b *testing.B) {
	h := newHarness(b)
	pol := testPolicy()
	_ = pol
	type pair struct{ x, y applied }
	pairs := make([]pair, b.N)
	for i := range pairs {
		v := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		h.at = t0.Add(time.Duration(i) * 10 * time.Second) // under the rate limit
		x := applied{h.env("b", ledger.KindReport, rep(v, "ssh-bf")), uint64(2*i + 1), h.at}
		y := applied{h.env("c", ledger.KindReport, rep(v, "ssh-bf")), uint64(2*i + 2), h.at}
		pairs[i] = pair{x, y}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range pairs {
		p := pairs[i]
		h.f.Apply(p.x.env, p.x.seq, p.x.at)
		if out := h.f.Apply(p.y.env, p.y.seq, p.y.at); len(out.Changes) == 0 {
			b.Fatalf("no decision: %+v", out)
		}
	}
}
