// Package charter is the alliance's founding document: who is a member,
// with which role and territory, who guarantees whom, which outside
// parties are under a pact, and the consultation policy that says how much
// corroboration a report needs before it becomes an alliance-wide
// decision. The charter is carried in the ledger as a KindCharter envelope
// signed by the founder (or, for later versions, a council member), so
// every member folds the ledger with the same one.
package charter

import (
	"net/netip"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// Charter is one version of the alliance's charter.
type Charter struct {
	Name    string          `json:"name"`
	Version int             `json:"version"` // 1 for the founding charter
	Founder ledger.MemberID `json:"founder"`
	Created time.Time       `json:"created"`
	Members []Member        `json:"members"` // the founder at least; admissions add more through the ledger
	Pacts   []Pact          `json:"pacts,omitempty"`
	Policy  Policy          `json:"policy"`
}

// Member is a member or protected party as the charter lists it.
type Member struct {
	ID        ledger.MemberID `json:"id"`
	Name      string          `json:"name"`
	PublicKey []byte          `json:"public_key"`
	Role      ledger.Role     `json:"role"`
	Council   bool            `json:"council,omitempty"` // may change the charter and expel
	Guarantor ledger.MemberID `json:"guarantor,omitempty"`
	Territory []netip.Prefix  `json:"territory,omitempty"` // never decided against
}

// Pact is an outside party that is never auto-banned (a partner's scanner,
// an uptime checker). Reports against it are recorded as breaches.
type Pact struct {
	Name      string         `json:"name"`
	Prefixes  []netip.Prefix `json:"prefixes"`
	Suspended bool           `json:"suspended,omitempty"`
}

// Policy is the consultation policy.
type Policy struct {
	// Corroboration is how many distinct members must report the same
	// value within Window before it becomes an alliance decision, for
	// scenarios not listed in Scenarios. Default 2.
	Corroboration int           `json:"corroboration"`
	Window        time.Duration `json:"window"` // default 1h
	// Scenarios overrides Corroboration per scenario: 1 means a single
	// member's report is enough (high-confidence scenarios such as
	// exploit payloads). A scenario name ending in "*" is a prefix.
	Scenarios map[string]int `json:"scenarios,omitempty"`
	// Sightings: hostile events from one source summed across at least
	// SightingMembers distinct members within Window; reaching
	// SightingEvents makes a collective decision of SightingDuration.
	SightingEvents   int           `json:"sighting_events"`   // default 6
	SightingMembers  int           `json:"sighting_members"`  // default 2
	SightingDuration time.Duration `json:"sighting_duration"` // default 4h
	// MaxReportsPerMinute caps what one member may publish; beyond it its
	// envelopes are rejected and the member is flagged. Default 600.
	MaxReportsPerMinute int `json:"max_reports_per_minute"`
	// MaxClockSkew: envelopes dated further than this from the folding
	// member's clock are rejected. Default 5m.
	MaxClockSkew time.Duration `json:"max_clock_skew"`
}
