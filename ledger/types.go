// Package ledger defines the alliance's record: signed, hash-chained
// events. Every report, decision, lift, ceasefire, charter change,
// admission, drill and heartbeat is an Envelope signed by its author
// (ed25519 over a canonical encoding); its ID is the SHA-256 of that
// encoding with the signature included, which is also the NATS message id
// the stream de-duplicates by.
// Each author chains its own envelopes (Prev is the ID of its previous
// one, Seq counts them), so a replayed, dropped or reordered event of one
// member is visible to every other.
//
// A broker can drop or delay envelopes but not forge or alter them.
package ledger

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// Kind says what an envelope records.
type Kind string

// Kinds of envelope.
const (
	KindCharter      Kind = "charter"       // the founding charter or a new version (author: a council member)
	KindAdmission    Kind = "admission"     // a new member or protected party admitted
	KindReport       Kind = "report"        // a member's detection: "I decided against X"
	KindReports      Kind = "reports"       // several reports at once, under one signature
	KindSighting     Kind = "sighting"      // below a member's own threshold: "I saw X fail N times"
	KindManual       Kind = "manual"        // an operator's decision, same policy as a report
	KindLift         Kind = "lift"          // an operator lifts a decision
	KindCeasefire    Kind = "ceasefire"     // alliance-wide stand-down of enforcement, time-boxed
	KindCeasefireEnd Kind = "ceasefire_end" // ends a ceasefire early
	KindDrill        Kind = "drill"         // a synthetic attack to measure time-to-protect
	KindDrillAck     Kind = "drill_ack"     // a member confirms a drill's decision is in force
	KindHeartbeat    Kind = "heartbeat"     // a member is alive and has applied the ledger up to a position
	KindExpel        Kind = "expel"         // a member is expelled: its later envelopes are rejected
	KindKeyRotation  Kind = "key_rotation"  // a member replaces its key
)

// MemberID names a member: the lowercase hex SHA-256 of its ed25519
// public key, first 16 bytes (32 hex characters).
type MemberID string

// Envelope is one signed ledger event. Body holds the kind's payload as
// canonical JSON (the encoding/json form of the payload struct below).
type Envelope struct {
	Alliance string          `json:"alliance"` // the alliance's ID (the charter's genesis envelope ID)
	Kind     Kind            `json:"kind"`
	Author   MemberID        `json:"author"`
	Seq      uint64          `json:"seq"`  // 1 for an author's first envelope, then +1
	Prev     string          `json:"prev"` // ID of the author's previous envelope; "" when Seq is 1
	Time     time.Time       `json:"time"` // the author's clock, UTC
	Body     json.RawMessage `json:"body"`
	Sig      []byte          `json:"sig"` // ed25519 over the canonical encoding without Sig
}

// Report is the body of KindReport and KindManual: a decision one member
// proposes to the alliance, with its evidence.
type Report struct {
	Value     netip.Prefix         `json:"value"`
	Type      phalanx.DecisionType `json:"type"`
	Scenario  string               `json:"scenario"`
	Duration  time.Duration        `json:"duration"`
	FirstSeen time.Time            `json:"first_seen"`
	LastSeen  time.Time            `json:"last_seen"`
	Events    int                  `json:"events"`
	Evidence  []string             `json:"evidence,omitempty"`
	Reason    string               `json:"reason,omitempty"` // manual decisions
}

// Reports is the body of KindReports: reports a member sealed together
// because they were ready together (a burst of detections). Each one
// counts as one report everywhere: the charter's rate limit, the
// consultation policy, the evidence; only the signature is shared. It
// holds 1 to MaxReports reports, within MaxEnvelopeSize.
type Reports struct {
	Reports []Report `json:"reports"`
}

// MaxReports is the most reports one KindReports envelope may carry.
const MaxReports = 256

// Sighting is the body of KindSighting: hostile events from a source that
// stayed under the member's own threshold. Summed across members within
// the policy's window, sightings become a collective decision.
type Sighting struct {
	Source   netip.Addr `json:"source"`
	Scenario string     `json:"scenario"` // the scenario the events counted toward
	Events   int        `json:"events"`
	Since    time.Time  `json:"since"`
}

// Lift is the body of KindLift.
type Lift struct {
	Value  netip.Prefix `json:"value"`
	Reason string       `json:"reason"`
}

// Ceasefire is the body of KindCeasefire. A zero Scope and empty Scenario
// stand down everything.
type Ceasefire struct {
	ID       string       `json:"id"`
	Until    time.Time    `json:"until"`
	Scenario string       `json:"scenario,omitempty"`
	Scope    netip.Prefix `json:"scope,omitzero"`
	Reason   string       `json:"reason"`
}

// CeasefireEnd is the body of KindCeasefireEnd.
type CeasefireEnd struct {
	ID string `json:"id"`
}

// Admission is the body of KindAdmission. It is authored by the joiner
// itself, as its first envelope (Seq 1), signed with the key it declares,
// and it carries the grant of a council member's invitation. The fold
// accepts an admission only if:
//
//   - the envelope's Author, Member and MemberIDOf(PublicKey) are the same,
//     and the envelope verifies with PublicKey;
//   - Grant decodes (charter.DecodeGrant) and verifies (charter.VerifyGrant)
//     against the current key of its Inviter, who is a council member,
//     unexpired at the envelope's Time (which the fold keeps within
//     MaxClockSkew of its own clock when it first sees the envelope);
//   - the grant names this alliance, and its Nonce, Role and Guarantor are
//     the Admission's own;
//   - the nonce was never used by an earlier admission (single use).
//
// charter.CheckAdmission performs every check but the last, which needs
// the fold's record of spent nonces: it returns the nonce for the fold to
// look up and record.
type Admission struct {
	Member    MemberID       `json:"member"`
	Name      string         `json:"name"`
	PublicKey []byte         `json:"public_key"` // ed25519
	Role      Role           `json:"role"`
	Guarantor MemberID       `json:"guarantor,omitempty"` // protected parties: who vouches for them
	Territory []netip.Prefix `json:"territory,omitempty"`
	Nonce     string         `json:"nonce"`           // the invitation's single-use nonce
	Grant     []byte         `json:"grant,omitempty"` // the inviter's signed grant, charter.EncodeGrant
}

// Role is a member's standing in the alliance.
type Role string

// Roles.
const (
	RoleMember    Role = "member"    // reports count, receives and enforces every decision
	RoleProtected Role = "protected" // receives and enforces; reports count only when its guarantor corroborates
)

// Drill is the body of KindDrill: a synthetic attack from a reserved test
// address (198.18.0.0/15, RFC 2544 benchmarking space).
type Drill struct {
	ID    string     `json:"id"`
	Value netip.Addr `json:"value"`
}

// DrillAck is the body of KindDrillAck.
type DrillAck struct {
	DrillID   string    `json:"drill_id"`
	InForceAt time.Time `json:"in_force_at"` // when the decision was in force at the acknowledging member
}

// Heartbeat is the body of KindHeartbeat.
type Heartbeat struct {
	Applied uint64 `json:"applied"` // the last stream position this member applied
}

// Expel is the body of KindExpel.
type Expel struct {
	Member MemberID `json:"member"`
	Reason string   `json:"reason"`
}

// KeyRotation is the body of KindKeyRotation, signed with the old key.
type KeyRotation struct {
	NewPublicKey []byte `json:"new_public_key"`
}
