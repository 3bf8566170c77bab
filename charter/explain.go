package charter

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/phalanx-defence/phalanx/ledger"
)

// Explain says in plain words what the charter means, for `phalanx
// charter show`: who may report, whose reports count, how much
// corroboration each scenario needs, whose territory is protected and
// which pacts hold. Names are those the charter validated (printable, no
// control characters).
func (c Charter) Explain() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	name := func(id ledger.MemberID) string {
		if m, ok := c.Member(id); ok {
			return m.Name
		}
		return string(id)
	}
	pol := c.Policy

	p("Alliance %s, charter version %d, founded by %s", quote(c.Name), c.Version, name(c.Founder))
	if !c.Created.IsZero() {
		p("; this version written %s", c.Created.Format("2006-01-02 15:04 MST"))
	}
	p(".\n\n")

	var members, protected []Member
	for _, m := range c.Members {
		if m.Role == ledger.RoleProtected {
			protected = append(protected, m)
		} else {
			members = append(members, m)
		}
	}
	p("Who may report\n")
	p("  Every member and protected party below may publish reports and sightings,\n")
	p("  at most %d a minute each; beyond that its envelopes are rejected and it is\n", pol.MaxReportsPerMinute)
	p("  flagged. Envelopes dated more than %s from the receiving member's clock are\n", human(pol.MaxClockSkew))
	p("  rejected.\n\n")

	p("Members: their reports count; they receive and enforce every alliance decision.\n")
	if len(members) == 0 {
		p("  (none)\n")
	}
	for _, m := range members {
		p("  %s (%s)", m.Name, m.ID)
		if m.Council {
			p(", council")
		}
		p("\n")
	}
	p("\n")
	if len(protected) > 0 {
		p("Protected parties: they receive and enforce every decision; their reports\n")
		p("count only when their guarantor reports the same address too.\n")
		for _, m := range protected {
			p("  %s (%s), guaranteed by %s\n", m.Name, m.ID, name(m.Guarantor))
		}
		p("\n")
	}
	var council []string
	for _, m := range c.Members {
		if m.Council {
			council = append(council, m.Name)
		}
	}
	if len(council) > 0 {
		p("The council (%s) may change this charter, admit and expel.\n\n", strings.Join(council, ", "))
	}

	p("Whose reports count\n")
	p("  A report becomes an alliance decision when %s report the same\n", members1(pol.Corroboration))
	p("  address within %s. ", human(pol.Window))
	if pol.Corroboration == 1 {
		p("One member's report is enough.\n")
	} else {
		p("A lone report waits for corroboration.\n")
	}
	if len(pol.Scenarios) > 0 {
		p("  Scenarios with their own rule")
		if slices.ContainsFunc(slices.Collect(maps.Keys(pol.Scenarios)), func(k string) bool { return strings.HasSuffix(k, "*") }) {
			p(" (an exact name beats a prefix; the longest prefix wins)")
		}
		p(":\n")
		for _, k := range slices.Sorted(maps.Keys(pol.Scenarios)) {
			n := pol.Scenarios[k]
			what := k
			if prefix, ok := strings.CutSuffix(k, "*"); ok {
				what = fmt.Sprintf("%s (every scenario starting %q)", k, prefix)
			}
			if n == 1 {
				p("    %s: one member's report is enough\n", what)
			} else {
				p("    %s: %s must agree\n", what, members1(n))
			}
		}
	}
	p("  Sightings (events below a member's own threshold) are pooled: %d events\n", pol.SightingEvents)
	p("  from one address, seen by at least %d members within %s, make a %s\n", pol.SightingMembers, human(pol.Window), human(pol.SightingDuration))
	p("  alliance decision.\n\n")

	p("Protected territory: never decided against.\n")
	declared := false
	for _, m := range c.Members {
		if len(m.Territory) > 0 {
			p("  %s: %s\n", m.Name, prefixes(m.Territory))
			declared = true
		}
	}
	if !declared {
		p("  (no member has declared territory)\n")
	}
	p("\n")

	if len(c.Pacts) == 0 {
		p("Pacts: none.\n")
	} else {
		p("Pacts: outside parties never banned automatically; reports against them are\n")
		p("recorded as breaches.\n")
		for _, pa := range c.Pacts {
			if pa.Suspended {
				p("  %s: %s (suspended: does not hold, its addresses are decided like any other)\n", pa.Name, prefixes(pa.Prefixes))
			} else {
				p("  %s: %s (holds)\n", pa.Name, prefixes(pa.Prefixes))
			}
		}
	}
	return b.String()
}

func members1(n int) string {
	if n == 1 {
		return "1 member"
	}
	return fmt.Sprintf("%d distinct members", n)
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
