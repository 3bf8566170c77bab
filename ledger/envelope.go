package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"time"
)

// MaxEnvelopeSize caps an encoded envelope (signature included). Decode
// rejects anything larger and Seal refuses to make it.
const MaxEnvelopeSize = 64 << 10

// ErrTooLarge is what Seal's error wraps when the envelope would exceed
// MaxEnvelopeSize: a batch of reports that is too large can be split.
var ErrTooLarge = errors.New("envelope too large")

// The canonical encoding of an envelope is what encoding/json makes of the
// Envelope struct: its fields in declaration order, no white space, Time
// in RFC 3339 with nanoseconds and "Z", Sig in standard base64, and Body
// the canonical encoding of the kind's payload (what encoding/json makes
// of the payload struct). SigningBytes is that encoding with Sig empty
// (encoded as null); Encode is the same with the signature; ID hashes
// Encode. Decode accepts exactly the bytes Encode makes: any other
// spelling of the same content (white space, field order or case, escapes,
// a "+00:00" zone, a duplicate field) is rejected, so one event has one
// encoding and one ID.

// payloads maps every kind to the Go type of its body. KindCharter's body,
// a charter.Charter, belongs to a package that imports this one: it maps
// to nil, Decode checks only that the body is a JSON object and
// DecodeBody[charter.Charter] does the strict, canonical decode.
var payloads = map[Kind]reflect.Type{
	KindCharter:      nil,
	KindAdmission:    reflect.TypeFor[Admission](),
	KindReport:       reflect.TypeFor[Report](),
	KindReports:      reflect.TypeFor[Reports](),
	KindSighting:     reflect.TypeFor[Sighting](),
	KindManual:       reflect.TypeFor[Report](),
	KindLift:         reflect.TypeFor[Lift](),
	KindCeasefire:    reflect.TypeFor[Ceasefire](),
	KindCeasefireEnd: reflect.TypeFor[CeasefireEnd](),
	KindDrill:        reflect.TypeFor[Drill](),
	KindDrillAck:     reflect.TypeFor[DrillAck](),
	KindHeartbeat:    reflect.TypeFor[Heartbeat](),
	KindExpel:        reflect.TypeFor[Expel](),
	KindKeyRotation:  reflect.TypeFor[KeyRotation](),
}

// isPayload holds the payload types this package defines.
var isPayload = func() map[reflect.Type]bool {
	m := map[reflect.Type]bool{}
	for _, t := range payloads {
		if t != nil {
			m[t] = true
		}
	}
	return m
}()

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	_, ok := payloads[k]
	return ok
}

// Chain is an author's position in its own chain: the Seq and ID of the
// last envelope it sealed (zero and "" before the first). The member
// persists it between runs; Seal advances it.
type Chain struct {
	Seq  uint64 `json:"seq"`
	Last string `json:"last"`
}

func (c Chain) check() error {
	if (c.Seq == 0) != (c.Last == "") {
		return fmt.Errorf("chain is inconsistent: seq %d with last %q", c.Seq, clip(c.Last))
	}
	if c.Last != "" && !isLowerHex(c.Last, 64) {
		return fmt.Errorf("chain: last %q is not an envelope ID (64 lowercase hex characters)", clip(c.Last))
	}
	if c.Seq == math.MaxUint64 {
		return errors.New("chain: sequence exhausted")
	}
	return nil
}

// Seal makes the author's next envelope: Author is id.ID, Seq and Prev
// follow chain, Time is at in UTC, Body is body marshalled with
// encoding/json (it must be the kind's payload type), and Sig is id's
// signature over SigningBytes. On success chain advances to the new
// envelope; on error it is unchanged.
//
// The alliance is the ID of the founding charter's envelope, which cannot
// name itself: the founder seals the genesis KindCharter envelope with
// alliance "" and Seq 1, and every later envelope carries its ID.
func Seal(id Identity, chain *Chain, alliance string, kind Kind, body any, at time.Time) (Envelope, error) {
	if chain == nil {
		return Envelope{}, errors.New("seal: nil chain")
	}
	if err := id.check(); err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	if err := chain.check(); err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	if at.IsZero() {
		return Envelope{}, errors.New("seal: zero time")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal %s: body: %w", kind, err)
	}
	e := Envelope{
		Alliance: alliance,
		Kind:     kind,
		Author:   id.ID,
		Seq:      chain.Seq + 1,
		Prev:     chain.Last,
		Time:     at.UTC(),
		Body:     b,
	}
	if _, err := e.check(false); err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	// The body is json.Marshal's, hence canonical: encodeChecked applies.
	e.Sig = ed25519.Sign(id.Private, e.encodeChecked())
	enc := e.encodeChecked()
	if n := len(enc); n > MaxEnvelopeSize {
		return Envelope{}, fmt.Errorf("seal %s: %w: %d bytes, the limit is %d", kind, ErrTooLarge, n, MaxEnvelopeSize)
	}
	sum := sha256.Sum256(enc)
	chain.Seq, chain.Last = e.Seq, hex.EncodeToString(sum[:])
	return e, nil
}

// encodeChecked is Encode for an envelope that passed check, whose body
// is therefore canonical: its encoding is written directly when every
// string in it needs no escaping (hex IDs, a kind's name: always, for a
// checked envelope), which costs a fraction of encoding/json's pass over
// the body; otherwise it is Encode.
func (e Envelope) encodeChecked() []byte {
	if !plain(e.Alliance) || !plain(string(e.Kind)) || !plain(string(e.Author)) || !plain(e.Prev) || len(e.Body) == 0 {
		return e.Encode()
	}
	const b64 = (ed25519.SignatureSize + 2) / 3 * 4
	out := make([]byte, 0, 200+len(e.Body)+b64)
	out = append(out, `{"alliance":"`...)
	out = append(out, e.Alliance...)
	out = append(out, `","kind":"`...)
	out = append(out, e.Kind...)
	out = append(out, `","author":"`...)
	out = append(out, e.Author...)
	out = append(out, `","seq":`...)
	out = strconv.AppendUint(out, e.Seq, 10)
	out = append(out, `,"prev":"`...)
	out = append(out, e.Prev...)
	out = append(out, `","time":"`...)
	out = e.Time.AppendFormat(out, time.RFC3339Nano)
	out = append(out, `","body":`...)
	out = append(out, e.Body...)
	out = append(out, `,"sig":`...)
	if e.Sig == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, e.Sig)
		out = append(out, '"')
	}
	return append(out, '}')
}

// plain says whether s is encoded by encoding/json as itself between
// quotes: lowercase letters, digits and underscores only.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// SigningBytes is the canonical encoding of e with Sig empty: what the
// author signs.
func (e Envelope) SigningBytes() []byte {
	e.Sig = nil
	return e.Encode()
}

// Encode is the canonical encoding of e, signature included: what goes on
// the wire. It is nil for an envelope that cannot be encoded (a Body that
// is not JSON, a Time outside years 0–9999), which Seal and Decode never
// return.
func (e Envelope) Encode() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	return b
}

// ID is the lowercase hex SHA-256 of Encode(), "" for an envelope that
// cannot be encoded.
func (e Envelope) ID() string {
	b := e.Encode()
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Decode parses one envelope from the wire. It is strict: the input must
// be at most MaxEnvelopeSize bytes and exactly the canonical encoding of a
// well-formed envelope (no unknown fields, no trailing data, a known kind,
// a non-zero UTC time, a canonical body of the kind's payload, a 64-byte
// signature). It does not verify the signature: that needs the author's
// key (Verify).
func Decode(b []byte) (Envelope, error) {
	e, _, err := decode(b)
	return e, err
}

// decode is Decode, also returning the decoded payload (see check).
func decode(b []byte) (Envelope, any, error) {
	if len(b) > MaxEnvelopeSize {
		return Envelope{}, nil, fmt.Errorf("envelope: %d bytes, the limit is %d", len(b), MaxEnvelopeSize)
	}
	var e Envelope
	if err := strictUnmarshal(b, &e); err != nil {
		return Envelope{}, nil, fmt.Errorf("envelope: %w", err)
	}
	payload, err := e.check(true)
	if err != nil {
		return Envelope{}, nil, fmt.Errorf("envelope: %w", err)
	}
	if !bytes.Equal(e.encodeChecked(), b) {
		return Envelope{}, nil, errors.New("envelope: not in canonical form")
	}
	return e, payload, nil
}

// Verify checks that e is well formed and that Sig is pub's signature of
// SigningBytes. It does not check that pub is Author's key: after a key
// rotation a member signs with a key its ID was not derived from, so the
// caller looks up the author's current key (and, for the envelopes that
// introduce a key — the genesis charter, an admission — checks that
// MemberIDOf(pub) is the Author).
func (e Envelope) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if _, err := e.check(true); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	msg := e.SigningBytes()
	if msg == nil || !ed25519.Verify(pub, msg, e.Sig) {
		return fmt.Errorf("verify: bad signature on %s envelope %d of %s", e.Kind, e.Seq, e.Author)
	}
	return nil
}

// DecodeBody decodes e's payload strictly: T must be the kind's payload
// type (Report for KindReport and KindManual, ..., charter.Charter for
// KindCharter), and Body must be its canonical encoding with no unknown
// fields.
func DecodeBody[T any](e Envelope) (T, error) {
	var v T
	t := reflect.TypeFor[T]()
	want, ok := payloads[e.Kind]
	switch {
	case !ok:
		return v, fmt.Errorf("body: unknown kind %q", clip(string(e.Kind)))
	case want != nil && t != want:
		return v, fmt.Errorf("body: a %s envelope carries a %v, not a %v", e.Kind, want, t)
	case want == nil && isPayload[t]:
		return v, fmt.Errorf("body: a %s envelope does not carry a %v", e.Kind, t)
	}
	if err := canonical(e.Body, &v); err != nil {
		return v, fmt.Errorf("%s body: %w", e.Kind, err)
	}
	return v, nil
}

// check validates e's fields; signed says whether Sig must be present. It
// returns the body decoded into a pointer to the kind's payload type (nil
// for KindCharter's).
func (e Envelope) check(signed bool) (any, error) {
	want, ok := payloads[e.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q", clip(string(e.Kind)))
	}
	if e.Alliance == "" {
		if e.Kind != KindCharter || e.Seq != 1 {
			return nil, fmt.Errorf("%s envelope without an alliance (only the founding charter has none)", e.Kind)
		}
	} else if !isLowerHex(e.Alliance, 64) {
		return nil, fmt.Errorf("alliance %q is not an envelope ID (64 lowercase hex characters)", clip(e.Alliance))
	}
	if err := e.Author.Check(); err != nil {
		return nil, fmt.Errorf("author: %w", err)
	}
	switch {
	case e.Seq == 0:
		return nil, errors.New("seq 0: an author's first envelope has seq 1")
	case e.Seq == 1 && e.Prev != "":
		return nil, errors.New("seq 1 with a prev: an author's first envelope has none")
	case e.Seq > 1 && !isLowerHex(e.Prev, 64):
		return nil, fmt.Errorf("seq %d: prev %q is not an envelope ID (64 lowercase hex characters)", e.Seq, clip(e.Prev))
	}
	if e.Time.IsZero() {
		return nil, errors.New("zero time")
	}
	if e.Time.Location() != time.UTC {
		return nil, fmt.Errorf("time %s is not in UTC", e.Time)
	}
	if y := e.Time.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("time %s is out of range", e.Time)
	}
	if want == nil {
		if len(e.Body) == 0 || e.Body[0] != '{' || !json.Valid(e.Body) {
			return nil, fmt.Errorf("%s body is not a JSON object", e.Kind)
		}
	}
	var v any
	if want != nil {
		v = reflect.New(want).Interface()
		if err := canonical(e.Body, v); err != nil {
			return nil, fmt.Errorf("%s body: %w", e.Kind, err)
		}
		if b, ok := v.(*Reports); ok && (len(b.Reports) == 0 || len(b.Reports) > MaxReports) {
			return nil, fmt.Errorf("%s body: %d reports, want 1 to %d", e.Kind, len(b.Reports), MaxReports)
		}
	}
	if signed && len(e.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d", len(e.Sig), ed25519.SignatureSize)
	}
	return v, nil
}

// canonical decodes b strictly into v (a pointer) and checks that b is
// exactly what encoding/json makes of the result.
func canonical(b []byte, v any) error {
	if err := strictUnmarshal(b, v); err != nil {
		return err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, b) {
		return errors.New("not in canonical form")
	}
	return nil
}

// strictUnmarshal decodes exactly one JSON value from b into v, rejecting
// unknown fields and trailing data.
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
