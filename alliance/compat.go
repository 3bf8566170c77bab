package alliance

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// This file holds the few envelope and policy helpers the fold needs.
// They stand in for ledger's and charter's own (Verify, ID, Required,
// DefaultPolicy) until those land, and are the only place that knows the
// encoding, so switching is a change to this file alone.

// signingBytes is the canonical encoding an envelope's signature covers:
// the envelope without its signature.
func signingBytes(e ledger.Envelope) []byte {
	e.Sig = nil
	b, err := json.Marshal(e)
	if err != nil {
		// Only an unencodable body (invalid RawMessage) gets here; such an
		// envelope can carry no valid signature.
		return nil
	}
	return b
}

// verify checks e's signature against pub.
func verify(e ledger.Envelope, pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("alliance: verify: public key of %d bytes", len(pub))
	}
	msg := signingBytes(e)
	if msg == nil || !ed25519.Verify(ed25519.PublicKey(pub), msg, e.Sig) {
		return fmt.Errorf("alliance: verify %s envelope of %s: bad signature", e.Kind, e.Author)
	}
	return nil
}

// sign sets e's signature; tests build envelopes with it.
func sign(e ledger.Envelope, priv ed25519.PrivateKey) ledger.Envelope {
	e.Sig = ed25519.Sign(priv, signingBytes(e))
	return e
}

// envelopeID is the SHA-256 of the signed envelope's encoding, in hex.
func envelopeID(e ledger.Envelope) string {
	b, err := json.Marshal(e)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// memberID derives a member's ID from its public key.
func memberID(pub []byte) ledger.MemberID {
	sum := sha256.Sum256(pub)
	return ledger.MemberID(hex.EncodeToString(sum[:16]))
}

// withDefaults fills a policy's zero fields with the documented defaults,
// so a charter that leaves them out folds the same on every member.
func withDefaults(p charter.Policy) charter.Policy {
	if p.Corroboration <= 0 {
		p.Corroboration = 2
	}
	if p.Window <= 0 {
		p.Window = time.Hour
	}
	if p.SightingEvents <= 0 {
		p.SightingEvents = 6
	}
	if p.SightingMembers <= 0 {
		p.SightingMembers = 2
	}
	if p.SightingDuration <= 0 {
		p.SightingDuration = 4 * time.Hour
	}
	if p.MaxReportsPerMinute <= 0 {
		p.MaxReportsPerMinute = 600
	}
	if p.MaxClockSkew <= 0 {
		p.MaxClockSkew = 5 * time.Minute
	}
	return p
}

// required is how many distinct members must report a value of scenario:
// an exact entry, else the longest matching "prefix*" entry, else the
// default corroboration. Never below 1.
func required(p charter.Policy, scenario string) int {
	n, ok := p.Scenarios[scenario]
	if !ok {
		best := -1
		for k, v := range p.Scenarios {
			pre, isPrefix := strings.CutSuffix(k, "*")
			if isPrefix && strings.HasPrefix(scenario, pre) && len(pre) > best {
				best, n = len(pre), v
			}
		}
		if best < 0 {
			n = p.Corroboration
		}
	}
	return max(n, 1)
}
