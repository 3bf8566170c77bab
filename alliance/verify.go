package alliance

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// verify checks e's form and signature against pub (the author's current
// key, which the fold tracks through admissions and rotations).
func verify(e ledger.Envelope, pub []byte) error {
	if err := e.Verify(ed25519.PublicKey(pub)); err != nil {
		return fmt.Errorf("alliance: %w", err)
	}
	return nil
}

func envelopeID(e ledger.Envelope) string { return e.ID() }

func memberID(pub []byte) ledger.MemberID { return ledger.MemberIDOf(pub) }

// withDefaults fills a policy's zero fields with charter.DefaultPolicy's,
// so a charter that leaves them out folds the same on every member.
func withDefaults(p charter.Policy) charter.Policy {
	d := charter.DefaultPolicy()
	if p.Corroboration <= 0 {
		p.Corroboration = d.Corroboration
	}
	if p.Window <= 0 {
		p.Window = d.Window
	}
	if p.SightingEvents <= 0 {
		p.SightingEvents = d.SightingEvents
	}
	if p.SightingMembers <= 0 {
		p.SightingMembers = d.SightingMembers
	}
	if p.SightingDuration <= 0 {
		p.SightingDuration = d.SightingDuration
	}
	if p.MaxReportsPerMinute <= 0 {
		p.MaxReportsPerMinute = d.MaxReportsPerMinute
	}
	if p.MaxClockSkew <= 0 {
		p.MaxClockSkew = d.MaxClockSkew
	}
	return p
}

// required is how many distinct members must report a value of scenario,
// never below one.
func required(p charter.Policy, scenario string) int { return max(p.Required(scenario), 1) }

// councilKey is the current key of a council member still in the
// alliance: what an invitation grant must verify against.
func (f *Fold) councilKey(id ledger.MemberID) (ed25519.PublicKey, bool) {
	m, ok := f.members[id]
	if !ok || !m.Council || m.Expelled {
		return nil, false
	}
	return ed25519.PublicKey(m.PublicKey), true
}

// admit folds an admission: the joiner's own first envelope, signed with
// the key it declares, carrying a council member's invitation grant.
func (f *Fold) admit(env ledger.Envelope, seq uint64, at time.Time) Outcome {
	var a ledger.Admission
	if decodeBody(env.Body, &a) != nil || len(a.PublicKey) != ed25519.PublicKeySize || len(a.Territory) > maxTerritory {
		return f.reject(env, seq, ReasonBadBody)
	}
	if verify(env, a.PublicKey) != nil {
		return f.reject(env, seq, ReasonBadSignature)
	}
	if env.Alliance != f.id {
		return f.reject(env, seq, ReasonWrongAlliance)
	}
	// The grant's expiry is checked at the envelope's time, which must be
	// close to the stream's: a joiner cannot backdate an expired grant.
	if d := env.Time.Sub(at); d > f.policy.MaxClockSkew || d < -f.policy.MaxClockSkew {
		return f.reject(env, seq, ReasonClockSkew)
	}
	cm, nonce, err := charter.CheckAdmission(env, f.councilKey)
	if err != nil {
		f.log.Info("alliance: admission refused", "member", env.Author, "seq", seq, "err", err)
		return f.reject(env, seq, ReasonBadGrant)
	}
	if _, used := f.nonces[nonce]; used {
		return f.reject(env, seq, ReasonNonceUsed)
	}
	if cm.Role == ledger.RoleProtected {
		g, ok := f.members[cm.Guarantor]
		if !ok || g.Protects || g.Expelled {
			return f.reject(env, seq, ReasonBadBody)
		}
	}
	if len(f.members) >= maxMembers {
		return f.reject(env, seq, ReasonFull)
	}
	for len(f.nonceOrder) >= f.caps.nonces {
		delete(f.nonces, f.nonceOrder[0])
		f.nonceOrder = f.nonceOrder[1:]
	}
	f.nonces[nonce] = struct{}{}
	f.nonceOrder = append(f.nonceOrder, nonce)
	cm.Council = false
	cm.Territory = normalizeAll(cm.Territory)
	m := &member{MemberState: MemberState{Member: cm, Admitted: seq}, Protects: cm.Role == ledger.RoleProtected,
		LastSeq: env.Seq, LastID: envelopeID(env)}
	f.members[cm.ID] = m
	f.order = append(f.order, cm.ID)
	f.log.Info("alliance: member admitted", "member", cm.ID, "name", cm.Name, "role", cm.Role, "seq", seq)
	return Outcome{Accepted: true}
}
