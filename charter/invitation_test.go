package charter

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

const (
	allianceID  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	charterHash = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func mustInvite(t testing.TB, inviter ledger.Identity, role ledger.Role, guarantor ledger.MemberID) string {
	t.Helper()
	tok, err := NewInvitation(inviter, allianceID, "Riverside Hosting Co-op", charterHash, "hub.example.net:4222", role, guarantor, 24*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestInvitationRoundTrip(t *testing.T) {
	inviter := mustIdentity(t)
	tok := mustInvite(t, inviter, ledger.RoleProtected, inviter.ID)
	if !strings.HasPrefix(tok, InvitationPrefix) || strings.ContainsAny(tok, " \n\t=+/") {
		t.Fatalf("token is not one URL-safe line: %q", tok)
	}
	t.Logf("%d characters: %s", len(tok), tok)
	inv, err := ParseInvitation("  " + tok + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Alliance != allianceID || inv.AllianceName != "Riverside Hosting Co-op" || inv.CharterHash != charterHash ||
		inv.Hub != "hub.example.net:4222" || inv.Role != ledger.RoleProtected || inv.Guarantor != inviter.ID ||
		inv.Inviter != inviter.ID || !inv.Expires.Equal(t0.Add(24*time.Hour)) || len(inv.Nonce) != 32 {
		t.Fatalf("parsed %+v", inv)
	}
	if inv.Token() != tok {
		t.Fatal("token does not round-trip")
	}
	g := inv.Grant()
	if err := VerifyGrant(g, inviter.Public, t0); err != nil {
		t.Fatal(err)
	}
	enc := EncodeGrant(g)
	g2, err := DecodeGrant(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyGrant(g2, inviter.Public, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Each invitation has its own nonce.
	inv2, _ := ParseInvitation(mustInvite(t, inviter, ledger.RoleMember, ""))
	if inv2.Nonce == inv.Nonce {
		t.Fatal("two invitations share a nonce")
	}
	if inv.Expired(t0.Add(time.Hour)) || !inv.Expired(inv.Expires) {
		t.Fatal("Expired is wrong")
	}
}

func TestGrantRejected(t *testing.T) {
	inviter := mustIdentity(t)
	inv, err := ParseInvitation(mustInvite(t, inviter, ledger.RoleMember, ""))
	if err != nil {
		t.Fatal(err)
	}
	g := inv.Grant()
	// Expired: at or after Expires.
	if err := VerifyGrant(g, inviter.Public, g.Expires); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired grant: %v", err)
	}
	if err := VerifyGrant(g, inviter.Public, g.Expires.Add(-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	// Another key.
	if err := VerifyGrant(g, mustIdentity(t).Public, t0); err == nil {
		t.Fatal("verified with another key")
	}
	if err := VerifyGrant(g, inviter.Public[:10], t0); err == nil {
		t.Fatal("verified with a short key")
	}
	other := mustIdentity(t)
	for name, tamper := range map[string]func(*Grant){
		"alliance":  func(g *Grant) { g.Alliance = charterHash },
		"nonce":     func(g *Grant) { g.Nonce = strings.Repeat("0", 32) },
		"role":      func(g *Grant) { g.Role = ledger.RoleProtected; g.Guarantor = inviter.ID },
		"expires":   func(g *Grant) { g.Expires = g.Expires.Add(time.Hour) },
		"inviter":   func(g *Grant) { g.Inviter = other.ID },
		"sig":       func(g *Grant) { g.Sig = append([]byte(nil), g.Sig...); g.Sig[0] ^= 1 },
		"short sig": func(g *Grant) { g.Sig = g.Sig[:63] },
	} {
		x := g
		tamper(&x)
		if err := VerifyGrant(x, inviter.Public, t0); err == nil {
			t.Errorf("tampered %s verifies", name)
		}
	}
	// Decode is strict.
	enc := string(EncodeGrant(g))
	for name, in := range map[string]string{
		"unknown":   strings.Replace(enc, `{"alliance"`, `{"x":1,"alliance"`, 1),
		"spaced":    strings.Replace(enc, `,"nonce"`, `, "nonce"`, 1),
		"trailing":  enc + " ",
		"zone":      strings.Replace(enc, `Z","inviter"`, `+00:00","inviter"`, 1),
		"upper hex": strings.Replace(enc, g.Nonce, strings.ToUpper(g.Nonce), 1),
		"huge":      enc + strings.Repeat(" ", MaxGrantSize),
		"no sig":    string(EncodeGrant(Grant{Alliance: g.Alliance, Nonce: g.Nonce, Role: g.Role, Expires: g.Expires, Inviter: g.Inviter})),
		"bad role":  strings.Replace(enc, `"role":"member"`, `"role":"king"`, 1),
		"guarantor": strings.Replace(enc, `"role":"member"`, `"role":"member","guarantor":"`+string(inviter.ID)+`"`, 1),
		"protected": strings.Replace(enc, `"role":"member"`, `"role":"protected"`, 1),
	} {
		if in == enc {
			t.Errorf("%s: mutation did not apply", name)
		}
		if _, err := DecodeGrant([]byte(in)); err == nil {
			t.Errorf("%s: DecodeGrant accepted %s", name, in)
		}
	}
}

func TestNewInvitationRejects(t *testing.T) {
	inviter := mustIdentity(t)
	member := ledger.RoleMember
	for name, f := range map[string]func() (string, error){
		"ttl 0": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", member, "", 0, t0)
		},
		"ttl 1y": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", member, "", 365*24*time.Hour, t0)
		},
		"zero time": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", member, "", time.Hour, time.Time{})
		},
		"no key": func() (string, error) {
			return NewInvitation(ledger.Identity{ID: inviter.ID}, allianceID, "A", charterHash, "h:1", member, "", time.Hour, t0)
		},
		"bad alliance": func() (string, error) {
			return NewInvitation(inviter, "abc", "A", charterHash, "h:1", member, "", time.Hour, t0)
		},
		"genesis-less": func() (string, error) {
			return NewInvitation(inviter, "", "A", charterHash, "h:1", member, "", time.Hour, t0)
		},
		"bad charter hash": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", "", "h:1", member, "", time.Hour, t0)
		},
		"no name": func() (string, error) {
			return NewInvitation(inviter, allianceID, "", charterHash, "h:1", member, "", time.Hour, t0)
		},
		"hub no port": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "hub.example.net", member, "", time.Hour, t0)
		},
		"hub url": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "nats://hub:4222", member, "", time.Hour, t0)
		},
		"hub port 0": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "hub:0", member, "", time.Hour, t0)
		},
		"hub port +1": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "hub:+1", member, "", time.Hour, t0)
		},
		"bad role": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", "owner", "", time.Hour, t0)
		},
		"member with guarantor": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", member, inviter.ID, time.Hour, t0)
		},
		"protected without guarantor": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, "h:1", ledger.RoleProtected, "", time.Hour, t0)
		},
		"long hub": func() (string, error) {
			return NewInvitation(inviter, allianceID, "A", charterHash, strings.Repeat("a", 300)+":1", member, "", time.Hour, t0)
		},
	} {
		if tok, err := f(); err == nil {
			t.Errorf("%s: made %s", name, tok)
		}
	}
	// IPv6 hubs are fine.
	if _, err := NewInvitation(inviter, allianceID, "A", charterHash, "[2001:db8::1]:4222", member, "", time.Hour, t0); err != nil {
		t.Error(err)
	}
}

func TestParseInvitationRejects(t *testing.T) {
	inviter := mustIdentity(t)
	tok := mustInvite(t, inviter, ledger.RoleMember, "")
	inv, _ := ParseInvitation(tok)
	raw, _ := json.Marshal(inv)
	enc := func(b []byte) string { return InvitationPrefix + base64.RawURLEncoding.EncodeToString(b) }
	for name, in := range map[string]string{
		"empty":         "",
		"no prefix":     strings.TrimPrefix(tok, InvitationPrefix),
		"other version": "phalanx2." + strings.TrimPrefix(tok, InvitationPrefix),
		"padded":        InvitationPrefix + base64.URLEncoding.EncodeToString(raw),
		"std base64":    InvitationPrefix + base64.RawStdEncoding.EncodeToString(raw),
		"truncated":     tok[:len(tok)-4],
		"inner space":   tok[:20] + " " + tok[20:],
		"huge":          tok + strings.Repeat("A", MaxInvitationLen),
		"unknown field": enc([]byte(strings.Replace(string(raw), `{"alliance"`, `{"admin":true,"alliance"`, 1))),
		"indented":      enc([]byte(strings.Replace(string(raw), `,"hub"`, `, "hub"`, 1))),
		"trailing":      enc(append(raw, '\n')),
		"not json":      enc([]byte("hello")),
		"no sig":        enc([]byte(strings.Replace(string(raw), `"sig":"`, `"sig":"AA`, 1))),
		"bad hub":       enc([]byte(strings.Replace(string(raw), `hub.example.net:4222`, `hub.example.net:4222/x`, 1))),
		"control name":  enc([]byte(strings.Replace(string(raw), `Riverside`, `\u001b[2J`, 1))),
	} {
		if name == "std base64" && in == tok {
			continue // no '-' or '_' in this token: the two alphabets agree
		}
		if _, err := ParseInvitation(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A token with one character changed either fails to parse or its
	// grant fails to verify.
	for i := len(InvitationPrefix); i < len(tok); i++ {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		inv, err := ParseInvitation(string(b))
		if err != nil {
			continue
		}
		// Only the unsigned hints may change without breaking the grant.
		if VerifyGrant(inv.Grant(), inviter.Public, t0) == nil {
			orig, _ := ParseInvitation(tok)
			if inv.Grant().Nonce != orig.Nonce || inv.Role != orig.Role || !inv.Expires.Equal(orig.Expires) {
				t.Fatalf("character %d changed a signed field and still verifies", i)
			}
		}
	}
}

// admission plays the joiner: a fresh identity publishing its admission
// with the invitation's grant as its first envelope.
func admission(t testing.TB, tok string, name string, at time.Time, mut func(*ledger.Admission)) (ledger.Identity, ledger.Envelope) {
	t.Helper()
	inv, err := ParseInvitation(tok)
	if err != nil {
		t.Fatal(err)
	}
	joiner := mustIdentity(t)
	a := ledger.Admission{
		Member:    joiner.ID,
		Name:      name,
		PublicKey: joiner.Public,
		Role:      inv.Role,
		Guarantor: inv.Guarantor,
		Territory: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Nonce:     inv.Nonce,
		Grant:     EncodeGrant(inv.Grant()),
	}
	if mut != nil {
		mut(&a)
	}
	var chain ledger.Chain
	e, err := ledger.Seal(joiner, &chain, inv.Alliance, ledger.KindAdmission, a, at)
	if err != nil {
		t.Fatal(err)
	}
	return joiner, e
}

func TestCheckAdmission(t *testing.T) {
	c, ids := sample(t)
	founder := ids[0] // on the council
	tok := mustInvite(t, founder, ledger.RoleProtected, founder.ID)
	joiner, e := admission(t, tok, "delta", t0.Add(time.Hour), nil)
	wire, err := ledger.Decode(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	m, nonce, err := CheckAdmission(wire, c.CouncilKey)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := ParseInvitation(tok)
	if m.ID != joiner.ID || m.Name != "delta" || m.Role != ledger.RoleProtected || m.Guarantor != founder.ID || nonce != inv.Nonce || m.Council {
		t.Fatalf("admitted %+v nonce %s", m, nonce)
	}
	c.Members = append(c.Members, m)
	if err := c.Validate(); err != nil {
		t.Fatalf("charter with the admitted member: %v", err)
	}

	// Rejections.
	other := mustIdentity(t)
	if _, _, err := CheckAdmission(e, func(ledger.MemberID) (ed25519.PublicKey, bool) { return nil, false }); err == nil {
		t.Error("accepted a grant from a non-council inviter")
	}
	beta := ids[1] // a member, not on the council
	_, e2 := admission(t, mustInvite(t, beta, ledger.RoleMember, ""), "eps", t0, nil)
	if _, _, err := CheckAdmission(e2, c.CouncilKey); err == nil || !strings.Contains(err.Error(), "not a council member") {
		t.Errorf("grant by a non-council member: %v", err)
	}
	_, late := admission(t, tok, "late", t0.Add(25*time.Hour), nil)
	if _, _, err := CheckAdmission(late, c.CouncilKey); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired grant: %v", err)
	}
	for name, mut := range map[string]func(*ledger.Admission){
		"role":        func(a *ledger.Admission) { a.Role = ledger.RoleMember; a.Guarantor = "" },
		"nonce":       func(a *ledger.Admission) { a.Nonce = strings.Repeat("1", 32) },
		"no grant":    func(a *ledger.Admission) { a.Grant = nil },
		"member id":   func(a *ledger.Admission) { a.Member = other.ID },
		"someone key": func(a *ledger.Admission) { a.PublicKey = other.Public; a.Member = other.ID },
		"bad name":    func(a *ledger.Admission) { a.Name = "" },
		"broad territory": func(a *ledger.Admission) {
			a.Territory = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		},
		"forged grant": func(a *ledger.Admission) {
			inv, _ := ParseInvitation(tok)
			g := inv.Grant()
			g.Role, g.Guarantor = ledger.RoleMember, ""
			a.Grant = EncodeGrant(g)
			a.Role, a.Guarantor = ledger.RoleMember, ""
		},
	} {
		_, bad := admission(t, tok, "x", t0, mut)
		if _, _, err := CheckAdmission(bad, c.CouncilKey); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Another alliance's grant.
	tokOther, err := NewInvitation(founder, charterHash, "Other", charterHash, "h:1", ledger.RoleMember, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	invOther, _ := ParseInvitation(tokOther)
	_, cross := admission(t, tok, "x", t0, func(a *ledger.Admission) {
		a.Role, a.Guarantor, a.Nonce, a.Grant = ledger.RoleMember, "", invOther.Nonce, EncodeGrant(invOther.Grant())
	})
	if _, _, err := CheckAdmission(cross, c.CouncilKey); err == nil || !strings.Contains(err.Error(), "another alliance") {
		t.Errorf("cross-alliance grant: %v", err)
	}
	// Not the joiner's first envelope.
	j := mustIdentity(t)
	chain := ledger.Chain{Seq: 1, Last: charterHash}
	inv2, _ := ParseInvitation(mustInvite(t, founder, ledger.RoleMember, ""))
	a := ledger.Admission{Member: j.ID, Name: "j", PublicKey: j.Public, Role: ledger.RoleMember, Nonce: inv2.Nonce, Grant: EncodeGrant(inv2.Grant())}
	e3, err := ledger.Seal(j, &chain, allianceID, ledger.KindAdmission, a, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckAdmission(e3, c.CouncilKey); err == nil {
		t.Error("accepted an admission that is not the joiner's first envelope")
	}
	// Authored by someone else than the joiner.
	var ch ledger.Chain
	e4, _ := ledger.Seal(founder, &ch, allianceID, ledger.KindAdmission, a, t0)
	if _, _, err := CheckAdmission(e4, c.CouncilKey); err == nil {
		t.Error("accepted an admission authored by the inviter")
	}
	// Not an admission.
	var ch2 ledger.Chain
	hb, _ := ledger.Seal(founder, &ch2, allianceID, ledger.KindHeartbeat, ledger.Heartbeat{}, t0)
	if _, _, err := CheckAdmission(hb, c.CouncilKey); err == nil {
		t.Error("accepted a heartbeat")
	}
}

func FuzzParseInvitation(f *testing.F) {
	id, err := ledger.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustInvite(f, id, ledger.RoleMember, ""))
	f.Add(mustInvite(f, id, ledger.RoleProtected, id.ID))
	f.Add(InvitationPrefix)
	f.Add(InvitationPrefix + "e30")
	f.Fuzz(func(t *testing.T, tok string) {
		inv, err := ParseInvitation(tok)
		if err != nil {
			return
		}
		if inv.Token() != strings.TrimSpace(tok) {
			t.Fatalf("accepted a token that does not re-encode the same:\n in %q\nout %q", tok, inv.Token())
		}
		g := inv.Grant()
		if _, err := DecodeGrant(EncodeGrant(g)); err != nil {
			t.Fatalf("grant of an accepted invitation does not decode: %v", err)
		}
		VerifyGrant(g, id.Public, t0) // must not panic
	})
}

func FuzzDecodeGrant(f *testing.F) {
	id, err := ledger.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	for _, tok := range []string{mustInvite(f, id, ledger.RoleMember, ""), mustInvite(f, id, ledger.RoleProtected, id.ID)} {
		inv, err := ParseInvitation(tok)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EncodeGrant(inv.Grant()))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGrant(b)
		if err != nil {
			return
		}
		if string(EncodeGrant(g)) != string(b) {
			t.Fatalf("accepted a non-canonical grant %q", b)
		}
		VerifyGrant(g, id.Public, t0) // must not panic
	})
}
