package member

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/ledger"
)

// Membership administration: expelling a member and rotating this
// member's own key. Both are signed envelopes like any other, so they go
// through the publisher, which owns the member's chain.

// Files of a key rotation in progress: the sealed rotation envelope and
// the new key. identity.next is written last, so its presence means both
// are complete.
const (
	fileRotationEnv  = "rotation.env"
	fileIdentityNext = "identity.next"
)

// ExpelRequest is the body of POST /v1/expel.
type ExpelRequest struct {
	Member ledger.MemberID `json:"member"`
	Reason string          `json:"reason"`
}

// KeyRotated is what POST /v1/key-rotation returns.
type KeyRotated struct {
	Published
	Member    ledger.MemberID `json:"member"`     // unchanged: a member keeps its ID
	PublicKey []byte          `json:"public_key"` // the new ed25519 key
}

// adminRoutes serves the administration routes on the API's mux.
func (m *Member) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/expel", m.postExpel)
	mux.HandleFunc("POST /v1/key-rotation", m.postKeyRotation)
}

func (m *Member) memberStates() (self alliance.MemberState, all []alliance.MemberState) {
	m.mu.Lock()
	all = m.fold.Members()
	m.mu.Unlock()
	for _, s := range all {
		if s.ID == m.id.ID {
			self = s
		}
	}
	return self, all
}

// postExpel publishes an expulsion. The fold accepts it only from a
// council member (the charter says who); asking first spares an operator
// an envelope that every member would refuse.
func (m *Member) postExpel(w http.ResponseWriter, r *http.Request) {
	var req ExpelRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := req.Member.Check(); err != nil {
		badRequest(w, "member: %v (the ID as `phalanx alliance members` lists it)", err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > maxReason {
		badRequest(w, "reason: say why, in at most %d bytes: it is on the record for every member", maxReason)
		return
	}
	if req.Member == m.id.ID {
		badRequest(w, "a member cannot expel itself: ask another council member")
		return
	}
	self, all := m.memberStates()
	if !self.Council || self.Expelled {
		var council []string
		for _, s := range all {
			if s.Council && !s.Expelled {
				council = append(council, string(s.ID))
			}
		}
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf(
			"only a council member may expel, and this member (%s) is not on the charter's council: run the command on one of %s",
			m.id.ID, strings.Join(council, ", "))})
		return
	}
	found := false
	for _, s := range all {
		if s.ID == req.Member {
			found = true
			if s.Expelled {
				writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("member %s is already expelled", req.Member)})
				return
			}
		}
	}
	if !found {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no member %s in the alliance (see `phalanx alliance members`)", req.Member)})
		return
	}
	pub, err := m.publish(r.Context(), ledger.KindExpel, ledger.Expel{Member: req.Member, Reason: req.Reason})
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, Published{ID: pub.ID, Seq: pub.Seq})
}

// postKeyRotation replaces this member's key: a fresh ed25519 key, the
// rotation signed with the old one; from its place in the ledger on every
// member verifies this member's envelopes with the new key only.
func (m *Member) postKeyRotation(w http.ResponseWriter, r *http.Request) {
	if self, _ := m.memberStates(); self.Expelled {
		writeJSON(w, http.StatusForbidden, apiError{"this member is expelled: the alliance refuses its envelopes, a new key included"})
		return
	}
	next, err := ledger.NewIdentity()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	next.ID = m.id.ID
	pub, err := m.publishOutgoing(r.Context(), outgoing{
		kind: ledger.KindKeyRotation, body: ledger.KeyRotation{NewPublicKey: next.Public}, rotate: &next,
	})
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, KeyRotated{Published: Published{ID: pub.ID, Seq: pub.Seq}, Member: next.ID, PublicKey: next.Public})
}

// stageRotation writes the sealed rotation and the new key next to the
// identity, in that order. Called by the publisher only.
func (m *Member) stageRotation(next ledger.Identity, env ledger.Envelope) error {
	if err := writeFile(filepath.Join(m.dir, fileRotationEnv), env.Encode(), 0o600); err != nil {
		return err
	}
	if err := ledger.SaveIdentity(filepath.Join(m.dir, fileIdentityNext), next); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

// commitRotation makes the new key the identity once its rotation is in
// the ledger. The old key is deleted: the alliance refuses it from now on.
func (m *Member) commitRotation() error {
	next := filepath.Join(m.dir, fileIdentityNext)
	if err := os.Rename(next, filepath.Join(m.dir, fileIdentity)); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if err := os.Remove(filepath.Join(m.dir, fileRotationEnv)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

// finishRotation completes a rotation a crash interrupted: the staged
// envelope is published again (the stream de-duplicates it if it was
// already in), the chain moved past it and the new key put in place.
func (m *Member) finishRotation(ctx context.Context, bus interface {
	Publish(context.Context, string, []byte) (uint64, bool, error)
}) error {
	nextPath := filepath.Join(m.dir, fileIdentityNext)
	next, err := ledger.LoadIdentity(nextPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("member: an interrupted key rotation: %w (restore %s from a backup, or remove it and %s to keep the old key)", err, fileIdentityNext, fileRotationEnv)
	}
	b, err := os.ReadFile(filepath.Join(m.dir, fileRotationEnv))
	if err != nil {
		return fmt.Errorf("member: an interrupted key rotation: %w (remove %s to keep the old key)", err, fileIdentityNext)
	}
	env, err := ledger.Decode(b)
	if err != nil || env.Kind != ledger.KindKeyRotation || env.Author != m.id.ID {
		return fmt.Errorf("member: %s is not this member's key rotation (%v): remove it and %s to keep the old key", fileRotationEnv, err, fileIdentityNext)
	}
	m.log.Warn("member: finishing an interrupted key rotation", "seq", env.Seq)
	if _, _, err := bus.Publish(ctx, env.ID(), b); err != nil {
		return fmt.Errorf("member: finish the key rotation: %w", err)
	}
	if env.Seq > m.chain.Seq {
		m.chain = ledger.Chain{Seq: env.Seq, Last: env.ID()}
		if err := saveChain(m.dir, m.chain); err != nil {
			return err
		}
	}
	m.id.Public, m.id.Private = next.Public, next.Private
	return m.commitRotation()
}

// Expel asks the member to publish an expulsion (it must be on the council).
func (c *APIClient) Expel(ctx context.Context, id ledger.MemberID, reason string) (Published, error) {
	var p Published
	return p, c.do(ctx, http.MethodPost, "/v1/expel", ExpelRequest{Member: id, Reason: reason}, &p)
}

// RotateKey asks the member to replace its key.
func (c *APIClient) RotateKey(ctx context.Context) (KeyRotated, error) {
	var k KeyRotated
	return k, c.do(ctx, http.MethodPost, "/v1/key-rotation", nil, &k)
}
