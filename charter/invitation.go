package charter

// Invitations and grants.
//
// A council member invites before the joiner has a key, so what it signs
// cannot name the joiner. `phalanx alliance invite --role R [--guarantor
// ID]` makes a Grant: the alliance, a fresh single-use nonce (16 random
// bytes, hex), the role, the guarantor (protected parties only), an expiry
// and the inviter's ID, signed by the inviter's ed25519 key over
// "phalanx grant v1\n" followed by the grant's canonical JSON with Sig
// empty (the prefix keeps a grant signature from ever being read as an
// envelope signature, whose bytes start with "{").
//
// The grant travels inside an Invitation, one printable line:
//
//	phalanx1.<base64url, unpadded, of the invitation's canonical JSON>
//
// which adds what the joiner needs to find the alliance: its name, the hub
// (host:port of the NATS hub) and the ID of the charter envelope in force.
// Those three are hints, not signed: the joiner authenticates the alliance
// by fetching the genesis envelope from the hub and checking that its ID is
// the invitation's Alliance (VerifyGenesis), and a hub can drop envelopes
// but not forge them.
//
// The joiner then makes its identity and publishes, as its first envelope,
// a KindAdmission whose body (ledger.Admission) names its key, carries the
// nonce, role and guarantor of the grant and the grant itself
// (EncodeGrant). The fold accepts it only under the rules documented on
// ledger.Admission (CheckAdmission, plus the nonce never having been used).
//
// Until it is used, an invitation is a bearer secret: whoever holds the
// line can join with it, once, before it expires. Send it over a channel
// you would send a password over; expiries are short (MaxInvitationTTL).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// Limits on invitations.
const (
	InvitationPrefix = "phalanx1."
	MaxInvitationLen = 2048                // characters of a token, prefix included
	MaxGrantSize     = 1024                // bytes of an encoded grant
	MaxInvitationTTL = 30 * 24 * time.Hour // the longest an invitation may stay valid
	MinInvitationTTL = time.Minute
)

const grantDomain = "phalanx grant v1\n"

// Grant is what an inviter signs: permission for one joiner, whoever
// presents it first, to join Alliance with Role before Expires.
type Grant struct {
	Alliance  string          `json:"alliance"` // the genesis envelope's ID
	Nonce     string          `json:"nonce"`    // 32 lowercase hex characters, single use
	Role      ledger.Role     `json:"role"`
	Guarantor ledger.MemberID `json:"guarantor,omitempty"` // protected parties only
	Expires   time.Time       `json:"expires"`             // UTC
	Inviter   ledger.MemberID `json:"inviter"`             // a council member
	Sig       []byte          `json:"sig"`                 // ed25519 by the inviter over SigningBytes
}

// Invitation is what the one-line token carries: the grant's fields, and
// hints for finding the alliance.
type Invitation struct {
	Alliance     string          `json:"alliance"`
	AllianceName string          `json:"alliance_name"`
	CharterHash  string          `json:"charter_hash"` // ID of the KindCharter envelope in force when invited
	Hub          string          `json:"hub"`          // host:port of the NATS hub
	Nonce        string          `json:"nonce"`
	Role         ledger.Role     `json:"role"`
	Guarantor    ledger.MemberID `json:"guarantor,omitempty"`
	Expires      time.Time       `json:"expires"`
	Inviter      ledger.MemberID `json:"inviter"`
	Sig          []byte          `json:"sig"` // the grant's signature
}

// NewInvitation makes an invitation token signed by inviter, valid for ttl
// (between MinInvitationTTL and MaxInvitationTTL) from at. It cannot check
// that the inviter is on the council or that the guarantor is a member:
// the caller does, against the charter in force, and the fold does again.
func NewInvitation(inviter ledger.Identity, alliance, allianceName, charterHash, hub string, role ledger.Role, guarantor ledger.MemberID, ttl time.Duration, at time.Time) (string, error) {
	if ttl < MinInvitationTTL || ttl > MaxInvitationTTL {
		return "", fmt.Errorf("invitation: validity %s: between %s and %s", human(ttl), human(MinInvitationTTL), human(MaxInvitationTTL))
	}
	if at.IsZero() {
		return "", errors.New("invitation: zero time")
	}
	if len(inviter.Private) != ed25519.PrivateKeySize {
		return "", errors.New("invitation: the inviter's identity has no private key")
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("invitation: nonce: %w", err)
	}
	g := Grant{
		Alliance:  alliance,
		Nonce:     hex.EncodeToString(nonce[:]),
		Role:      role,
		Guarantor: guarantor,
		Expires:   at.Add(ttl).UTC().Truncate(time.Second),
		Inviter:   inviter.ID,
	}
	if err := g.check(false); err != nil {
		return "", fmt.Errorf("invitation: %w", err)
	}
	g.Sig = ed25519.Sign(inviter.Private, g.SigningBytes())
	inv := Invitation{
		Alliance:     g.Alliance,
		AllianceName: allianceName,
		CharterHash:  charterHash,
		Hub:          hub,
		Nonce:        g.Nonce,
		Role:         g.Role,
		Guarantor:    g.Guarantor,
		Expires:      g.Expires,
		Inviter:      g.Inviter,
		Sig:          g.Sig,
	}
	if err := inv.check(); err != nil {
		return "", err
	}
	token := inv.Token()
	if len(token) > MaxInvitationLen {
		return "", fmt.Errorf("invitation: token is %d characters, the limit is %d (shorten the hub's name)", len(token), MaxInvitationLen)
	}
	return token, nil
}

// Token is the invitation's one-line form.
func (inv Invitation) Token() string {
	b, err := json.Marshal(inv)
	if err != nil {
		return ""
	}
	return InvitationPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseInvitation reads a token NewInvitation made. White space around it
// is ignored; otherwise it must be exactly the token of a well-formed
// invitation (size-capped, strict JSON in canonical form, every field
// checked). It does not verify the signature — the joiner does not have
// the inviter's key yet, the fold verifies the grant — nor the expiry
// (Expired).
func ParseInvitation(token string) (Invitation, error) {
	token = strings.TrimSpace(token)
	if len(token) > MaxInvitationLen {
		return Invitation{}, fmt.Errorf("invitation: %d characters, the limit is %d: not an invitation", len(token), MaxInvitationLen)
	}
	rest, ok := strings.CutPrefix(token, InvitationPrefix)
	if !ok {
		return Invitation{}, fmt.Errorf("invitation: does not start with %q: copy the whole line `phalanx alliance invite` printed", InvitationPrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return Invitation{}, errors.New("invitation: damaged (not base64url): copy the whole line again")
	}
	var inv Invitation
	if err := strictUnmarshal(b, &inv); err != nil {
		return Invitation{}, fmt.Errorf("invitation: %w", err)
	}
	if err := inv.check(); err != nil {
		return Invitation{}, err
	}
	if out, _ := json.Marshal(inv); !bytes.Equal(out, b) {
		return Invitation{}, errors.New("invitation: not in canonical form")
	}
	return inv, nil
}

// Grant is the signed grant the invitation carries, which the joiner puts
// in its admission (EncodeGrant).
func (inv Invitation) Grant() Grant {
	return Grant{
		Alliance:  inv.Alliance,
		Nonce:     inv.Nonce,
		Role:      inv.Role,
		Guarantor: inv.Guarantor,
		Expires:   inv.Expires,
		Inviter:   inv.Inviter,
		Sig:       bytes.Clone(inv.Sig),
	}
}

// Expired reports whether the invitation can no longer be used at at.
func (inv Invitation) Expired(at time.Time) bool {
	return !at.Before(inv.Expires)
}

func (inv Invitation) check() error {
	if err := inv.Grant().check(true); err != nil {
		return fmt.Errorf("invitation: %w", err)
	}
	if err := checkName("alliance name", inv.AllianceName); err != nil {
		return fmt.Errorf("invitation: %w", err)
	}
	if !isHex(inv.CharterHash, 64) {
		return fmt.Errorf("invitation: charter hash %s is not an envelope ID (64 lowercase hex characters)", quote(inv.CharterHash))
	}
	if err := checkHub(inv.Hub); err != nil {
		return fmt.Errorf("invitation: %w", err)
	}
	return nil
}

// checkHub accepts host:port with a plain host name or address.
func checkHub(hub string) error {
	host, port, err := net.SplitHostPort(hub)
	if err != nil {
		return fmt.Errorf("hub %s: want host:port: %v", quote(hub), err)
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("hub %s: the host is missing or too long", quote(hub))
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return fmt.Errorf("hub %s: the host may hold letters, digits, '.', '-', '_' and ':' only", quote(hub))
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("hub %s: port %s is not a number between 1 and 65535", quote(hub), quote(port))
	}
	return nil
}

// SigningBytes is what the inviter signs: "phalanx grant v1\n" and the
// grant's canonical encoding with Sig empty.
func (g Grant) SigningBytes() []byte {
	g.Sig = nil
	b := EncodeGrant(g)
	if b == nil {
		return nil
	}
	return append([]byte(grantDomain), b...)
}

// EncodeGrant is the canonical encoding of g (the encoding/json form of
// the struct), nil if g cannot be encoded (an expiry outside years
// 0–9999).
func EncodeGrant(g Grant) []byte {
	b, err := json.Marshal(g)
	if err != nil {
		return nil
	}
	return b
}

// DecodeGrant reads a grant from an admission: at most MaxGrantSize bytes,
// exactly the canonical encoding of a well-formed, signed grant. It does
// not verify the signature (VerifyGrant).
func DecodeGrant(b []byte) (Grant, error) {
	if len(b) > MaxGrantSize {
		return Grant{}, fmt.Errorf("grant: %d bytes, the limit is %d", len(b), MaxGrantSize)
	}
	var g Grant
	if err := strictUnmarshal(b, &g); err != nil {
		return Grant{}, fmt.Errorf("grant: %w", err)
	}
	if err := g.check(true); err != nil {
		return Grant{}, fmt.Errorf("grant: %w", err)
	}
	if !bytes.Equal(EncodeGrant(g), b) {
		return Grant{}, errors.New("grant: not in canonical form")
	}
	return g, nil
}

// VerifyGrant checks that g is well formed, signed by the holder of
// inviterPub and unexpired at at. Which key is the inviter's is the
// caller's to say (the charter's, or the fold's after a key rotation);
// VerifyGrant does not require MemberIDOf(inviterPub) == g.Inviter.
func VerifyGrant(g Grant, inviterPub ed25519.PublicKey, at time.Time) error {
	if len(inviterPub) != ed25519.PublicKeySize {
		return fmt.Errorf("grant: inviter key is %d bytes, want %d", len(inviterPub), ed25519.PublicKeySize)
	}
	if err := g.check(true); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	msg := g.SigningBytes()
	if msg == nil || !ed25519.Verify(inviterPub, msg, g.Sig) {
		return fmt.Errorf("grant: bad signature: not an invitation signed by %s, or altered since", g.Inviter)
	}
	if !at.Before(g.Expires) {
		return fmt.Errorf("grant: the invitation expired at %s: ask for a new one", g.Expires.Format(time.RFC3339))
	}
	return nil
}

func (g Grant) check(signed bool) error {
	if !isHex(g.Alliance, 64) {
		return fmt.Errorf("alliance %s is not an envelope ID (64 lowercase hex characters)", quote(g.Alliance))
	}
	if !isHex(g.Nonce, 32) {
		return fmt.Errorf("nonce %s is not 32 lowercase hex characters", quote(g.Nonce))
	}
	switch g.Role {
	case ledger.RoleMember:
		if g.Guarantor != "" {
			return errors.New("a member (role member) has no guarantor: drop --guarantor, or invite with --role protected")
		}
	case ledger.RoleProtected:
		if g.Guarantor == "" {
			return errors.New("a protected party needs a guarantor: add --guarantor with the ID of the member who vouches for it")
		}
		if err := g.Guarantor.Check(); err != nil {
			return fmt.Errorf("guarantor: %w", err)
		}
	default:
		return fmt.Errorf("role %s: use %q or %q", quote(string(g.Role)), ledger.RoleMember, ledger.RoleProtected)
	}
	if g.Expires.IsZero() {
		return errors.New("no expiry")
	}
	if g.Expires.Location() != time.UTC {
		return errors.New("expiry is not in UTC")
	}
	if y := g.Expires.Year(); y < 1 || y > 9999 {
		return errors.New("expiry out of range")
	}
	if err := g.Inviter.Check(); err != nil {
		return fmt.Errorf("inviter: %w", err)
	}
	if signed && len(g.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature is %d bytes, want %d", len(g.Sig), ed25519.SignatureSize)
	}
	return nil
}

// CheckAdmission applies the admission rules of ledger.Admission to e, but
// for the single use of the nonce, which needs the fold's record: the
// fold calls it with councilKey (the current key of a council member,
// false for anyone else — Charter.CouncilKey when no key has rotated) and
// then refuses the admission if the returned nonce was used before, if
// the member is already admitted, or if its guarantor is not a member in
// its own state. It returns the member to add and the nonce to record.
func CheckAdmission(e ledger.Envelope, councilKey func(ledger.MemberID) (ed25519.PublicKey, bool)) (Member, string, error) {
	if e.Kind != ledger.KindAdmission {
		return Member{}, "", fmt.Errorf("admission: a %s envelope", e.Kind)
	}
	a, err := ledger.DecodeBody[ledger.Admission](e)
	if err != nil {
		return Member{}, "", fmt.Errorf("admission: %w", err)
	}
	m := Member{
		ID:        a.Member,
		Name:      a.Name,
		PublicKey: a.PublicKey,
		Role:      a.Role,
		Guarantor: a.Guarantor,
		Territory: a.Territory,
	}
	if err := checkMember(m); err != nil {
		return Member{}, "", fmt.Errorf("admission of %s: %w", quote(a.Name), err)
	}
	if e.Author != a.Member {
		return Member{}, "", fmt.Errorf("admission of %s: authored by %s, not by the joiner", a.Member, e.Author)
	}
	if e.Seq != 1 {
		return Member{}, "", fmt.Errorf("admission of %s: it is the joiner's envelope %d, not its first", a.Member, e.Seq)
	}
	if err := e.Verify(a.PublicKey); err != nil {
		return Member{}, "", fmt.Errorf("admission of %s: %w", a.Member, err)
	}
	g, err := DecodeGrant(a.Grant)
	if err != nil {
		return Member{}, "", fmt.Errorf("admission of %s: %w", a.Member, err)
	}
	switch {
	case g.Alliance != e.Alliance:
		return Member{}, "", fmt.Errorf("admission of %s: the grant is for another alliance", a.Member)
	case g.Nonce != a.Nonce:
		return Member{}, "", fmt.Errorf("admission of %s: nonce differs from the grant's", a.Member)
	case g.Role != a.Role || g.Guarantor != a.Guarantor:
		return Member{}, "", fmt.Errorf("admission of %s: asks for role %s guaranteed by %q, the grant is for role %s guaranteed by %q", a.Member, a.Role, a.Guarantor, g.Role, g.Guarantor)
	}
	key, ok := councilKey(g.Inviter)
	if !ok {
		return Member{}, "", fmt.Errorf("admission of %s: inviter %s is not a council member", a.Member, g.Inviter)
	}
	if err := VerifyGrant(g, key, e.Time); err != nil {
		return Member{}, "", fmt.Errorf("admission of %s: %w", a.Member, err)
	}
	return m, g.Nonce, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
