package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Received is an envelope as it came off the wire: decoded and checked
// once, with its encoding, ID and decoded payload kept, so that verifying,
// naming and folding it do not encode or decode it again (at thousands of
// envelopes a second, every member would otherwise spend more on JSON
// than on signatures). It cannot be changed: Envelope returns a copy.
type Received struct {
	env     Envelope
	raw     []byte // exactly env.Encode(), as Decode checked
	id      string
	payload any // pointer to the kind's payload type; nil for KindCharter
	err     error
}

// DecodeReceived is Decode, keeping what Decode worked out.
func DecodeReceived(b []byte) (Received, error) {
	e, payload, err := decode(b)
	if err != nil {
		return Received{}, err
	}
	sum := sha256.Sum256(b)
	return Received{env: e, raw: slices.Clone(b), id: hex.EncodeToString(sum[:]), payload: payload}, nil
}

// Receive makes a Received of an envelope built in memory (by Seal, or by
// a test). An envelope that is not well formed gives a Received whose
// Verify fails with the reason; its Envelope and fields are still e's.
func Receive(e Envelope) Received {
	r, err := DecodeReceived(e.Encode())
	if err != nil {
		return Received{env: e, err: err}
	}
	return r
}

// Envelope is a copy of the envelope.
func (r Received) Envelope() Envelope {
	e := r.env
	e.Body, e.Sig = slices.Clone(e.Body), slices.Clone(e.Sig)
	return e
}

// Kind is the envelope's kind.
func (r Received) Kind() Kind { return r.env.Kind }

// Author is the envelope's author.
func (r Received) Author() MemberID { return r.env.Author }

// Seq is the envelope's place in its author's chain.
func (r Received) Seq() uint64 { return r.env.Seq }

// Time is the author's clock when it sealed the envelope.
func (r Received) Time() time.Time { return r.env.Time }

// ID is the envelope's ID ("" for one that is not well formed).
func (r Received) ID() string { return r.id }

// Payload is the body decoded into the kind's payload type, as a pointer
// (*Report for KindReport, *Reports for KindReports, ...); nil for
// KindCharter and for an envelope that is not well formed.
func (r Received) Payload() any { return r.payload }

// Verify checks that the envelope is well formed and that its signature is
// pub's, as Envelope.Verify does, on the bytes it came in.
func (r Received) Verify(pub ed25519.PublicKey) error {
	if r.err != nil {
		return fmt.Errorf("verify: %w", r.err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, r.signingBytes(), r.env.Sig) {
		return fmt.Errorf("verify: bad signature on %s envelope %d of %s", r.env.Kind, r.env.Seq, r.env.Author)
	}
	return nil
}

// signingBytes derives SigningBytes from the encoding: the canonical form
// ends with the signature, `"sig":"<base64>"}`, which signing replaces
// with null.
func (r Received) signingBytes() []byte {
	const b64 = (ed25519.SignatureSize + 2) / 3 * 4
	tail := len(`"sig":"`) + b64 + len(`"}`)
	if n := len(r.raw) - tail; n > 0 && bytes.HasPrefix(r.raw[n:], []byte(`"sig":"`)) && bytes.HasSuffix(r.raw, []byte(`"}`)) {
		out := make([]byte, 0, n+len(`"sig":null}`))
		return append(append(out, r.raw[:n]...), `"sig":null}`...)
	}
	return r.env.SigningBytes()
}
