package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// alliance is a made-up genesis envelope ID.
const alliance = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func mustIdentity(t testing.TB) Identity {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sampleReport() Report {
	return Report{
		Value:     netip.MustParsePrefix("203.0.113.7/32"),
		Type:      phalanx.Ban,
		Scenario:  "ssh-bf",
		Duration:  4 * time.Hour,
		FirstSeen: t0.Add(-time.Minute),
		LastSeen:  t0,
		Events:    6,
		Evidence:  []string{`Failed password for root from 203.0.113.7 port 22 ssh2 <&>`},
	}
}

func mustSeal(t testing.TB, id Identity, c *Chain, kind Kind, body any) Envelope {
	t.Helper()
	e, err := Seal(id, c, alliance, kind, body, t0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMemberIDOf(t *testing.T) {
	id := mustIdentity(t)
	if id.ID != MemberIDOf(id.Public) {
		t.Fatalf("ID %s, want MemberIDOf %s", id.ID, MemberIDOf(id.Public))
	}
	if err := id.ID.Check(); err != nil {
		t.Fatal(err)
	}
	// A known vector: sha256 of 32 zero bytes.
	if got, want := MemberIDOf(make([]byte, 32)), MemberID("66687aadf862bd776c8fc18b8e9f8e20"); got != want {
		t.Fatalf("MemberIDOf(zeros) = %s, want %s", got, want)
	}
	for _, bad := range []MemberID{"", "66687AADF862BD776C8FC18B8E9F8E20", "66687aadf862bd776c8fc18b8e9f8e2", "66687aadf862bd776c8fc18b8e9f8e2g"} {
		if bad.Check() == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
}

func TestSealVerifyRoundTrip(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	e := mustSeal(t, id, &c, KindReport, sampleReport())
	if err := e.Verify(id.Public); err != nil {
		t.Fatal(err)
	}
	wire := e.Encode()
	d, err := Decode(wire)
	if err != nil {
		t.Fatalf("Decode(Encode()): %v\n%s", err, wire)
	}
	if !reflect.DeepEqual(d, e) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", d, e)
	}
	if d.ID() != e.ID() {
		t.Fatal("ID changed across a round trip")
	}
	if err := d.Verify(id.Public); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeBody[Report](d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, sampleReport()) {
		t.Fatalf("body: got %+v, want %+v", r, sampleReport())
	}
	other := mustIdentity(t)
	if err := e.Verify(other.Public); err == nil {
		t.Fatal("verified with another member's key")
	}
	if err := e.Verify(id.Public[:31]); err == nil {
		t.Fatal("verified with a short key")
	}
}

func TestEveryKindRoundTrips(t *testing.T) {
	id := mustIdentity(t)
	bodies := map[Kind]any{
		KindAdmission:    Admission{Member: id.ID, Name: "beta", PublicKey: id.Public, Role: RoleMember, Nonce: "n", Grant: []byte("g")},
		KindReport:       sampleReport(),
		KindReports:      Reports{Reports: []Report{sampleReport(), sampleReport()}},
		KindManual:       Report{Value: netip.MustParsePrefix("198.51.100.0/24"), Type: phalanx.Ban, Scenario: "manual", Duration: time.Hour, Reason: "abuse report"},
		KindSighting:     Sighting{Source: netip.MustParseAddr("2001:db8::1"), Scenario: "ssh-slow-bf", Events: 3, Since: t0},
		KindLift:         Lift{Value: netip.MustParsePrefix("203.0.113.7/32"), Reason: "customer"},
		KindCeasefire:    Ceasefire{ID: "c1", Until: t0.Add(time.Hour), Reason: "migration"},
		KindCeasefireEnd: CeasefireEnd{ID: "c1"},
		KindDrill:        Drill{ID: "d1", Value: netip.MustParseAddr("198.18.0.1")},
		KindDrillAck:     DrillAck{DrillID: "d1", InForceAt: t0},
		KindHeartbeat:    Heartbeat{Applied: 42},
		KindExpel:        Expel{Member: id.ID, Reason: "compromised"},
		KindKeyRotation:  KeyRotation{NewPublicKey: id.Public},
		KindCharter:      map[string]any{"name": "x", "version": 2},
	}
	var c Chain
	for kind, body := range bodies {
		e := mustSeal(t, id, &c, kind, body)
		d, err := Decode(e.Encode())
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if !bytes.Equal(d.encodeChecked(), d.Encode()) || e.ID() != d.ID() {
			t.Errorf("%s: direct encoding %q, encoding/json's %q", kind, d.encodeChecked(), d.Encode())
		}
		if err := d.Verify(id.Public); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if len(bodies) != len(payloads) {
		t.Errorf("test covers %d kinds, there are %d", len(bodies), len(payloads))
	}
}

func TestChain(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	var prev Envelope
	for i := 1; i <= 5; i++ {
		e := mustSeal(t, id, &c, KindHeartbeat, Heartbeat{Applied: uint64(i)})
		if e.Seq != uint64(i) {
			t.Fatalf("envelope %d has seq %d", i, e.Seq)
		}
		if i == 1 && e.Prev != "" {
			t.Fatalf("first envelope has prev %q", e.Prev)
		}
		if i > 1 && e.Prev != prev.ID() {
			t.Fatalf("envelope %d: prev %s, want %s", i, e.Prev, prev.ID())
		}
		if c.Seq != e.Seq || c.Last != e.ID() {
			t.Fatalf("chain %+v after envelope %d (%s)", c, e.Seq, e.ID())
		}
		prev = e
	}
	// A failed seal leaves the chain alone.
	before := c
	if _, err := Seal(id, &c, alliance, KindHeartbeat, Report{}, t0); err == nil {
		t.Fatal("sealed a report body as a heartbeat")
	}
	if _, err := Seal(id, &c, alliance, Kind("nope"), Heartbeat{}, t0); err == nil {
		t.Fatal("sealed an unknown kind")
	}
	if c != before {
		t.Fatalf("failed seal moved the chain: %+v → %+v", before, c)
	}
	// Inconsistent chains are refused.
	for _, bad := range []Chain{{Seq: 3}, {Last: prev.ID()}, {Seq: 2, Last: "xyz"}} {
		if _, err := Seal(id, &bad, alliance, KindHeartbeat, Heartbeat{}, t0); err == nil {
			t.Errorf("sealed on chain %+v", bad)
		}
	}
	if _, err := Seal(id, nil, alliance, KindHeartbeat, Heartbeat{}, t0); err == nil {
		t.Error("sealed on a nil chain")
	}
}

func TestSealTime(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	paris := time.FixedZone("CET", 3600)
	e, err := Seal(id, &c, alliance, KindHeartbeat, Heartbeat{}, t0.In(paris))
	if err != nil {
		t.Fatal(err)
	}
	if e.Time.Location() != time.UTC || !e.Time.Equal(t0) {
		t.Fatalf("time %v, want %v in UTC", e.Time, t0)
	}
	if _, err := Seal(id, &c, alliance, KindHeartbeat, Heartbeat{}, time.Time{}); err == nil {
		t.Fatal("sealed with a zero time")
	}
}

func TestGenesisAlliance(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	g, err := Seal(id, &c, "", KindCharter, map[string]string{"name": "x"}, t0)
	if err != nil {
		t.Fatalf("genesis charter: %v", err)
	}
	if _, err := Decode(g.Encode()); err != nil {
		t.Fatal(err)
	}
	// Nothing else may lack an alliance, not even a later charter.
	if _, err := Seal(id, &c, "", KindCharter, map[string]string{"name": "x"}, t0); err == nil {
		t.Fatal("second charter without an alliance")
	}
	var c2 Chain
	if _, err := Seal(id, &c2, "", KindReport, sampleReport(), t0); err == nil {
		t.Fatal("report without an alliance")
	}
	if _, err := Seal(id, &c2, "ABC", KindReport, sampleReport(), t0); err == nil {
		t.Fatal("report with a malformed alliance")
	}
}

func TestTamperFailsVerify(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	c.Seq, c.Last = 6, strings.Repeat("ab", 32)
	e := mustSeal(t, id, &c, KindReport, sampleReport())
	other := sampleReport()
	other.Value = netip.MustParsePrefix("203.0.113.8/32")
	otherBody, _ := json.Marshal(other)
	tampers := map[string]func(*Envelope){
		"alliance": func(e *Envelope) { e.Alliance = strings.Repeat("1", 64) },
		"kind":     func(e *Envelope) { e.Kind = KindManual },
		"author":   func(e *Envelope) { e.Author = MemberIDOf(make([]byte, 32)) },
		"seq":      func(e *Envelope) { e.Seq++ },
		"prev":     func(e *Envelope) { e.Prev = strings.Repeat("cd", 32) },
		"time":     func(e *Envelope) { e.Time = e.Time.Add(time.Nanosecond) },
		"body":     func(e *Envelope) { e.Body = otherBody },
		"sig":      func(e *Envelope) { e.Sig = append([]byte(nil), e.Sig...); e.Sig[10] ^= 1 },
	}
	for name, tamper := range tampers {
		x := e
		tamper(&x)
		if err := x.Verify(id.Public); err == nil {
			t.Errorf("tampered %s still verifies", name)
		}
	}
}

// Flipping any bit of the wire form either makes it undecodable or yields
// an envelope with another ID that does not verify; changing any field
// changes the ID.
func TestEveryBit(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	e := mustSeal(t, id, &c, KindReport, sampleReport())
	wire := e.Encode()
	orig := e.ID()
	for i := range len(wire) * 8 {
		b := bytes.Clone(wire)
		b[i/8] ^= 1 << (i % 8)
		d, err := Decode(b)
		if err != nil {
			continue
		}
		if d.ID() == orig {
			t.Fatalf("bit %d flipped: same ID", i)
		}
		if d.Verify(id.Public) == nil {
			t.Fatalf("bit %d flipped: still verifies", i)
		}
	}
	seen := map[string]bool{orig: true}
	for _, mut := range []func(*Envelope){
		func(e *Envelope) { e.Alliance = strings.Repeat("f", 64) },
		func(e *Envelope) { e.Kind = KindManual },
		func(e *Envelope) { e.Author = MemberIDOf(nil) },
		func(e *Envelope) { e.Seq++ },
		func(e *Envelope) { e.Prev = strings.Repeat("e", 64) },
		func(e *Envelope) { e.Time = e.Time.Add(1) },
		func(e *Envelope) { e.Body = json.RawMessage(`{"applied":1}`) },
		func(e *Envelope) { e.Sig = append([]byte(nil), e.Sig...); e.Sig[63] ^= 0x80 },
	} {
		x := e
		mut(&x)
		if seen[x.ID()] {
			t.Fatal("field change kept the ID")
		}
		seen[x.ID()] = true
	}
}

func TestDecodeRejects(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	e := mustSeal(t, id, &c, KindReport, sampleReport())
	wire := string(e.Encode())
	withBody := func(body string) string {
		x := e
		x.Body = json.RawMessage(body)
		return string(x.Encode())
	}
	reportJSON, _ := json.Marshal(sampleReport())
	cases := map[string]string{
		"empty":            "",
		"null":             "null",
		"not json":         "hello",
		"trailing newline": wire + "\n",
		"trailing object":  wire + "{}",
		"leading space":    " " + wire,
		"indented":         indent(wire),
		"unknown field":    strings.Replace(wire, `{"alliance"`, `{"extra":1,"alliance"`, 1),
		"upper-case field": strings.Replace(wire, `"alliance"`, `"Alliance"`, 1),
		"duplicate field":  strings.Replace(wire, `{"alliance"`, `{"kind":"report","alliance"`, 1),
		"field order":      strings.Replace(strings.Replace(wire, `"kind":"report",`, ``, 1), `,"body":`, `,"kind":"report","body":`, 1),
		"bad kind":         strings.Replace(wire, `"kind":"report"`, `"kind":"rapport"`, 1),
		"zone offset":      strings.Replace(wire, `.123456789Z"`, `.123456789+00:00"`, 1),
		"other zone":       strings.Replace(wire, `12:00:00.123456789Z"`, `13:00:00.123456789+01:00"`, 1),
		"zero time":        strings.Replace(wire, `2025-03-01T12:00:00.123456789Z`, `0001-01-01T00:00:00Z`, 1),
		"seq 0":            strings.Replace(wire, `"seq":1`, `"seq":0`, 1),
		"seq 2 no prev":    strings.Replace(wire, `"seq":1`, `"seq":2`, 1),
		"short sig":        strings.Replace(wire, `"sig":"`, `"sig":"AAAA`, 1),
		"no sig":           string(Envelope(e).SigningBytes()),
		"escaped html":     strings.Replace(wire, `\u003c`, `<`, 1),
		"spaced body":      strings.Replace(wire, `,"type"`, `, "type"`, 1),
		"body unknown":     withBody(strings.Replace(string(reportJSON), `{"value"`, `{"x":1,"value"`, 1)),
		"body field order": withBody(`{"type":"ban","value":"203.0.113.7/32"}`),
		"body wrong kind":  withBody(`{"applied":1}`),
		"body null":        withBody(`null`),
		"body upper v6":    withBody(strings.Replace(string(reportJSON), `203.0.113.7/32`, `2001:DB8::/32`, 1)),
		"body empty slice": withBody(strings.Replace(string(reportJSON), `"evidence":["Failed password for root from 203.0.113.7 port 22 ssh2 \u003c\u0026\u003e"]`, `"evidence":[]`, 1)),
		"body float":       withBody(strings.Replace(string(reportJSON), `"events":6`, `"events":6.0`, 1)),
		"oversized":        strings.Replace(wire, `"alliance":"`, `"alliance":"`+strings.Repeat(" ", MaxEnvelopeSize), 1),
		"bad utf8":         strings.Replace(wire, `ssh-bf`, "ssh-\xff", 1),
	}
	for name, in := range cases {
		if in == wire {
			t.Errorf("%s: the mutation did not apply", name)
			continue
		}
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: Decode accepted %q", name, clip(in))
		}
	}
}

func indent(s string) string {
	var b bytes.Buffer
	json.Indent(&b, []byte(s), "", "  ")
	return b.String()
}

func TestDecodeBodyTypes(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	e := mustSeal(t, id, &c, KindReport, sampleReport())
	if _, err := DecodeBody[Lift](e); err == nil {
		t.Error("decoded a report body as a Lift")
	}
	if _, err := DecodeBody[map[string]any](e); err == nil {
		t.Error("decoded a report body as a map")
	}
	m := mustSeal(t, id, &c, KindManual, Report{Value: netip.MustParsePrefix("192.0.2.1/32"), Type: phalanx.Ban, Scenario: "manual", Reason: "x"})
	if _, err := DecodeBody[Report](m); err != nil {
		t.Errorf("manual as Report: %v", err)
	}
	type charterish struct {
		Name string `json:"name"`
	}
	ch := mustSeal(t, id, &c, KindCharter, charterish{Name: "x"})
	if v, err := DecodeBody[charterish](ch); err != nil || v.Name != "x" {
		t.Errorf("charter body: %v %+v", err, v)
	}
	if _, err := DecodeBody[Report](ch); err == nil {
		t.Error("decoded a charter body as a Report")
	}
	type narrower struct{}
	if _, err := DecodeBody[narrower](ch); err == nil {
		t.Error("decoded a charter body with unknown fields")
	}
	ch.Body = json.RawMessage(`{"name":"x" }`)
	if _, err := DecodeBody[charterish](ch); err == nil {
		t.Error("decoded a non-canonical charter body")
	}
}

func TestSealSizeLimit(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	r := sampleReport()
	r.Evidence = []string{strings.Repeat("x", MaxEnvelopeSize)}
	if _, err := Seal(id, &c, alliance, KindReport, r, t0); err == nil {
		t.Fatal("sealed an oversized envelope")
	}
	if c.Seq != 0 {
		t.Fatal("oversized seal moved the chain")
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	// After a rotation a member keeps its ID and signs with the new key.
	old := mustIdentity(t)
	fresh := mustIdentity(t)
	rotated := Identity{ID: old.ID, Public: fresh.Public, Private: fresh.Private}
	var c Chain
	e := mustSeal(t, rotated, &c, KindHeartbeat, Heartbeat{Applied: 1})
	if e.Author != old.ID {
		t.Fatalf("author %s, want %s", e.Author, old.ID)
	}
	if err := e.Verify(fresh.Public); err != nil {
		t.Fatal(err)
	}
	if err := e.Verify(old.Public); err == nil {
		t.Fatal("verified with the retired key")
	}
}

func FuzzDecode(f *testing.F) {
	id, err := NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	var c Chain
	for _, body := range []struct {
		k Kind
		b any
	}{
		{KindCharter, map[string]string{"name": "x"}},
		{KindReport, sampleReport()},
		{KindReports, Reports{Reports: []Report{sampleReport(), sampleReport()}}},
		{KindHeartbeat, Heartbeat{Applied: 7}},
		{KindCeasefire, Ceasefire{ID: "c", Until: t0, Scope: netip.MustParsePrefix("10.0.0.0/8"), Reason: "r"}},
	} {
		a := alliance
		if body.k == KindCharter {
			a = ""
		}
		e, err := Seal(id, &c, a, body.k, body.b, t0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Encode())
	}
	f.Add([]byte(`{"alliance":"","kind":"charter"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("accepted a non-canonical envelope:\n in %q\nout %q", b, e.Encode())
		}
		unsigned := e
		unsigned.Sig = nil
		if !bytes.Equal(unsigned.encodeChecked(), e.SigningBytes()) {
			t.Fatalf("direct encoding of the signed bytes differs from encoding/json's:\n%q\n%q", unsigned.encodeChecked(), e.SigningBytes())
		}
		if e.ID() == "" || len(e.Sig) != ed25519.SignatureSize {
			t.Fatal("accepted envelope without an ID or signature")
		}
		e.Verify(id.Public) // must not panic
		// What a member folds: the same envelope, ID and signed bytes,
		// and the same verdict on a signature.
		r, err := DecodeReceived(b)
		if err != nil {
			t.Fatalf("Decode accepted what DecodeReceived refuses: %v", err)
		}
		if got := r.Envelope(); !bytes.Equal(got.Encode(), b) || r.ID() != e.ID() || !bytes.Equal(r.signingBytes(), e.SigningBytes()) {
			t.Fatalf("Received differs from the envelope: id %s/%s, signing bytes %q/%q", r.ID(), e.ID(), r.signingBytes(), e.SigningBytes())
		}
		if (r.Verify(id.Public) == nil) != (e.Verify(id.Public) == nil) {
			t.Fatal("Received and Envelope verify differently")
		}
		if e.Kind != KindCharter {
			// The body is canonical for its kind.
			_, err := decodeAny(e)
			if err != nil {
				t.Fatalf("accepted envelope whose body does not decode: %v", err)
			}
		}
	})
}

func decodeAny(e Envelope) (any, error) {
	switch e.Kind {
	case KindAdmission:
		return DecodeBody[Admission](e)
	case KindReport, KindManual:
		return DecodeBody[Report](e)
	case KindReports:
		return DecodeBody[Reports](e)
	case KindSighting:
		return DecodeBody[Sighting](e)
	case KindLift:
		return DecodeBody[Lift](e)
	case KindCeasefire:
		return DecodeBody[Ceasefire](e)
	case KindCeasefireEnd:
		return DecodeBody[CeasefireEnd](e)
	case KindDrill:
		return DecodeBody[Drill](e)
	case KindDrillAck:
		return DecodeBody[DrillAck](e)
	case KindHeartbeat:
		return DecodeBody[Heartbeat](e)
	case KindExpel:
		return DecodeBody[Expel](e)
	case KindKeyRotation:
		return DecodeBody[KeyRotation](e)
	}
	return nil, nil
}

func TestReportsBatchBounds(t *testing.T) {
	id := mustIdentity(t)
	var c Chain
	for _, n := range []int{0, MaxReports + 1} {
		_, err := Seal(id, &c, alliance, KindReports, Reports{Reports: make([]Report, n)}, t0)
		if err == nil {
			t.Errorf("sealed a batch of %d reports", n)
		}
	}
	// A batch over the size limit is refused with ErrTooLarge, so that
	// the publisher can split it, and the chain does not move.
	big := make([]Report, MaxReports)
	for i := range big {
		big[i] = sampleReport()
		big[i].Evidence = []string{strings.Repeat("x", 400)}
	}
	before := c
	_, err := Seal(id, &c, alliance, KindReports, Reports{Reports: big}, t0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("sealing %d reports of 400-byte evidence: %v, want ErrTooLarge", len(big), err)
	}
	if c != before {
		t.Fatalf("chain moved on a refused seal: %+v → %+v", before, c)
	}
	e, err := Seal(id, &c, alliance, KindReports, Reports{Reports: big[:100]}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(e.Encode()); err != nil {
		t.Fatalf("a batch of 100: %v", err)
	}
}

// A Received verifies as its envelope does: with its author's key, not
// with another, not once its signature or body is changed; and its
// payload is the body, decoded.
func TestReceived(t *testing.T) {
	id, other := mustIdentity(t), mustIdentity(t)
	var c Chain
	e := mustSeal(t, id, &c, KindReports, Reports{Reports: []Report{sampleReport(), sampleReport()}})
	r, err := DecodeReceived(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(id.Public); err != nil {
		t.Fatalf("own key: %v", err)
	}
	if r.Verify(other.Public) == nil {
		t.Fatal("verified with another member's key")
	}
	if b, ok := r.Payload().(*Reports); !ok || len(b.Reports) != 2 || !reflect.DeepEqual(b.Reports[0], sampleReport()) {
		t.Fatalf("payload %#v", r.Payload())
	}
	if r.ID() != e.ID() || r.Kind() != KindReports || r.Author() != id.ID || r.Seq() != e.Seq || !r.Time().Equal(e.Time) {
		t.Fatal("fields differ from the envelope's")
	}
	// Changing the copy Envelope returns changes nothing.
	cp := r.Envelope()
	cp.Sig[0] ^= 1
	cp.Body[2] = 'X'
	if err := r.Verify(id.Public); err != nil {
		t.Fatalf("after changing a copy: %v", err)
	}
	// A forged signature, and a body changed after signing.
	forged := e
	forged.Sig = append([]byte(nil), e.Sig...)
	forged.Sig[5] ^= 1
	if Receive(forged).Verify(id.Public) == nil {
		t.Fatal("verified a forged signature")
	}
	changed := e
	changed.Body = []byte(strings.Replace(string(e.Body), "203.0.113.7", "203.0.113.8", 1))
	if string(changed.Body) == string(e.Body) {
		t.Fatal("test: the body did not change")
	}
	if Receive(changed).Verify(id.Public) == nil {
		t.Fatal("verified a body changed after signing")
	}
	// Not well formed: Receive keeps the reason, Verify says it.
	bad := e
	bad.Kind = "nonsense"
	if err := Receive(bad).Verify(id.Public); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("malformed envelope: %v", err)
	}
}
