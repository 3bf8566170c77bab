// Package migrate holds what every importer from another tool shares: the
// origins imported decisions carry and the record of what an import left
// out and why. The importers live in its subpackages — crowdsec (decision
// exports and hub scenarios), f2bbans (fail2ban's ban database) and
// f2bjail (fail2ban's jail configuration) — and `phalanx import` wires
// them to a member's data directory.
package migrate

import (
	"sort"
	"strings"

	"github.com/phalanx-defence/phalanx"
)

// Origins of imported decisions. A member keeps them as its own local
// decisions (they are never published unless the operator asks), and the
// prefix tells them apart from detections and alliance decisions.
const (
	OriginPrefix   = "import:"
	OriginCrowdSec = phalanx.Origin(OriginPrefix + "crowdsec")
	OriginFail2ban = phalanx.Origin(OriginPrefix + "fail2ban")
)

// IsImported reports whether o is the origin of an imported decision.
func IsImported(o phalanx.Origin) bool { return strings.HasPrefix(string(o), OriginPrefix) }

// Skip is one input item an import left out, and why.
type Skip struct {
	Where  string `json:"where"`  // "line 12", "alert 3 decision 1", "jail sshd"
	Value  string `json:"value"`  // what was skipped, as the input wrote it (truncated)
	Reason string `json:"reason"` // one of the Reason* constants, or free text
}

// Reasons an item is skipped, shared by the importers so that reports can
// be counted by reason.
const (
	ReasonExpired          = "expired"
	ReasonUnsupportedScope = "unsupported scope"
	ReasonUnsupportedType  = "unsupported type"
	ReasonInvalidValue     = "invalid value"
	ReasonInvalidDuration  = "invalid duration"
	ReasonSimulated        = "simulated"
	ReasonDeleted          = "deleted in the stream"
)

// maxKept bounds the skipped items a report lists one by one: an export of
// a million expired decisions must not make a million-line report. Counts
// by reason stay exact.
const maxKept = 100

// Skips records skipped items: every one counted by reason, the first
// maxKept kept for the report.
type Skips struct {
	ByReason map[string]int `json:"by_reason"`
	Examples []Skip         `json:"examples,omitempty"`
	Total    int            `json:"total"`
}

// Add records one skipped item.
func (s *Skips) Add(where, value, reason string) {
	if s.ByReason == nil {
		s.ByReason = map[string]int{}
	}
	s.ByReason[reason]++
	s.Total++
	if len(s.Examples) < maxKept {
		if len(value) > 80 {
			value = value[:80] + "…"
		}
		s.Examples = append(s.Examples, Skip{Where: where, Value: value, Reason: reason})
	}
}

// Reasons lists the reasons in a stable order, most frequent first.
func (s *Skips) Reasons() []string {
	out := make([]string, 0, len(s.ByReason))
	for r := range s.ByReason {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := s.ByReason[out[i]], s.ByReason[out[j]]
		if a != b {
			return a > b
		}
		return out[i] < out[j]
	})
	return out
}
