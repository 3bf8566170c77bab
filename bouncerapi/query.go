package bouncerapi

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/migrate"
)

// Limits on what a query may ask: a bouncer sends a handful of short
// parameters, so anything much larger is a mistake or an attack.
const (
	maxQueryLen  = 4096
	maxListItems = 32
)

var errQuery = errors.New("bouncerapi: bad query")

// filter is the part of a query shared by both routes: which decisions a
// bouncer wants. The zero filter matches everything.
type filter struct {
	scopes      []phalanx.Scope // nil: any
	origins     []string        // lower case; nil: any
	scenIn      []string        // lower case substrings; nil: any
	scenNotIn   []string        // lower case substrings
	typ         string          // "" : any
	value       netip.Prefix    // exact value; invalid: any
	around      netip.Prefix    // ip or range; invalid: none
	contains    bool            // around: decisions containing it (true) or inside it (false)
	scopeNoneOK bool            // scopes named only ones phalanx never has: match nothing
}

// streamQuery is a parsed /v1/decisions/stream query.
type streamQuery struct {
	startup bool
	filter
}

func parseBool(name, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s=%q: use true or false", errQuery, name, s)
}

// splitList splits a comma list, dropping empty items, lower-casing them.
func splitList(name, s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if len(out) == maxListItems {
			return nil, fmt.Errorf("%w: %s: more than %d items", errQuery, name, maxListItems)
		}
		out = append(out, item)
	}
	return out, nil
}

// parseScopes maps CrowdSec scope names to phalanx's. CrowdSec knows more
// scopes (country, as, username); phalanx decides only on addresses and
// ranges, so those are valid and match nothing.
func parseScopes(name, s string) ([]phalanx.Scope, bool, error) {
	items, err := splitList(name, s)
	if err != nil {
		return nil, false, err
	}
	var out []phalanx.Scope
	for _, it := range items {
		switch it {
		case "ip":
			out = append(out, phalanx.ScopeIP)
		case "range":
			out = append(out, phalanx.ScopeRange)
		}
	}
	return out, len(items) > 0 && len(out) == 0, nil
}

func single(q url.Values, name string) (string, bool, error) {
	v, ok := q[name]
	if !ok {
		return "", false, nil
	}
	if len(v) != 1 {
		return "", false, fmt.Errorf("%w: %s given %d times", errQuery, name, len(v))
	}
	return v[0], true, nil
}

func parseRaw(raw string) (url.Values, error) {
	if len(raw) > maxQueryLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", errQuery, maxQueryLen)
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errQuery, err)
	}
	return q, nil
}

// parseCommon reads the filters both routes accept: origins and the
// scenario substrings. Unknown parameters are ignored, as CrowdSec does
// for the ones it does not use (dedup, simulated, limit).
func parseCommon(q url.Values, f *filter) error {
	for _, p := range []struct {
		name string
		dst  *[]string
	}{{"origins", &f.origins}, {"scenarios_containing", &f.scenIn}, {"scenarios_not_containing", &f.scenNotIn}} {
		s, ok, err := single(q, p.name)
		if err != nil {
			return err
		}
		if ok {
			if *p.dst, err = splitList(p.name, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseStreamQuery(raw string) (streamQuery, error) {
	var sq streamQuery
	q, err := parseRaw(raw)
	if err != nil {
		return sq, err
	}
	if s, ok, err := single(q, "startup"); err != nil {
		return sq, err
	} else if ok {
		if sq.startup, err = parseBool("startup", s); err != nil {
			return sq, err
		}
	}
	if s, ok, err := single(q, "scopes"); err != nil {
		return sq, err
	} else if ok {
		if sq.scopes, sq.scopeNoneOK, err = parseScopes("scopes", s); err != nil {
			return sq, err
		}
	}
	// CrowdSec defaults scopes to "ip,range" when absent; phalanx has no
	// other scope, so the default is the zero filter.
	return sq, parseCommon(q, &sq.filter)
}

func parsePrefixParam(name, s string) (netip.Prefix, error) {
	p, err := phalanx.ParsePrefixOrAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %s: %w", errQuery, name, err)
	}
	return p, nil // ParsePrefixOrAddr normalised it
}

// parseListQuery reads a GET /v1/decisions query: ip (decisions that
// contain this address), range (that contain this range), contains=false
// to ask instead for the decisions inside ip or range, scope, value, type.
func parseListQuery(raw string) (filter, error) {
	var f filter
	q, err := parseRaw(raw)
	if err != nil {
		return f, err
	}
	f.contains = true
	if s, ok, err := single(q, "contains"); err != nil {
		return f, err
	} else if ok {
		if f.contains, err = parseBool("contains", s); err != nil {
			return f, err
		}
	}
	ip, hasIP, err := single(q, "ip")
	if err != nil {
		return f, err
	}
	rng, hasRange, err := single(q, "range")
	if err != nil {
		return f, err
	}
	switch {
	case hasIP && hasRange:
		return f, fmt.Errorf("%w: give ip or range, not both", errQuery)
	case hasIP:
		a, err := netip.ParseAddr(strings.TrimSpace(ip))
		if err != nil {
			return f, fmt.Errorf("%w: ip: %w", errQuery, err)
		}
		a = a.Unmap().WithZone("")
		f.around = netip.PrefixFrom(a, a.BitLen())
	case hasRange:
		if f.around, err = parsePrefixParam("range", rng); err != nil {
			return f, err
		}
	}
	if s, ok, err := single(q, "scope"); err != nil {
		return f, err
	} else if ok {
		if f.scopes, f.scopeNoneOK, err = parseScopes("scope", s); err != nil {
			return f, err
		}
	}
	if s, ok, err := single(q, "value"); err != nil {
		return f, err
	} else if ok {
		// A value that is no address (a country, a user name) is a valid
		// CrowdSec query that no phalanx decision matches.
		if p, err := parsePrefixParam("value", s); err == nil {
			f.value = p
		} else {
			f.scopeNoneOK = true
		}
	}
	if s, ok, err := single(q, "type"); err != nil {
		return f, err
	} else if ok {
		f.typ = strings.ToLower(strings.TrimSpace(s))
	}
	return f, parseCommon(q, &f)
}

// match reports whether d passes the filter. origin is d's origin as the
// API names it.
func (f *filter) match(d *phalanx.Decision) bool {
	if f.scopeNoneOK {
		return false
	}
	if f.scopes != nil && !containsScope(f.scopes, d.Scope()) {
		return false
	}
	if f.typ != "" && f.typ != string(d.Type) {
		return false
	}
	if f.value.IsValid() && f.value != d.Value {
		return false
	}
	if f.around.IsValid() {
		if f.contains {
			if d.Value.Bits() > f.around.Bits() || !d.Value.Contains(f.around.Addr()) {
				return false
			}
		} else if f.around.Bits() > d.Value.Bits() || !f.around.Contains(d.Value.Addr()) {
			return false
		}
	}
	if f.origins != nil && !originIn(f.origins, d.Origin) {
		return false
	}
	if f.scenIn != nil || f.scenNotIn != nil {
		scen := strings.ToLower(d.Scenario)
		if f.scenIn != nil && !anyContained(scen, f.scenIn) {
			return false
		}
		if anyContained(scen, f.scenNotIn) {
			return false
		}
	}
	return true
}

func containsScope(ss []phalanx.Scope, s phalanx.Scope) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func anyContained(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// originIn matches an origin by its CrowdSec name or its phalanx name, so
// that a bouncer configured for CrowdSec ("crowdsec,cscli") and one
// configured for phalanx ("local,manual") both work.
func originIn(origins []string, o phalanx.Origin) bool {
	cs := strings.ToLower(crowdsecOrigin(o))
	for _, x := range origins {
		if x == cs || x == strings.ToLower(string(o)) {
			return true
		}
	}
	return false
}

// crowdsecOrigin names a phalanx origin as CrowdSec would: this member's
// own detection is "crowdsec" (CrowdSec's own engine), an operator's
// decision is "cscli", and the alliance's folded decisions are "CAPI" —
// CrowdSec's community feed, which is what operators exclude when they set
// `origins: crowdsec,cscli` to keep only local decisions.
func crowdsecOrigin(o phalanx.Origin) string {
	switch o {
	case phalanx.OriginLocal:
		return "crowdsec"
	case phalanx.OriginManual:
		return "cscli"
	case phalanx.OriginAlliance:
		return "CAPI"
	}
	if migrate.IsImported(o) {
		// Brought over from fail2ban or CrowdSec by `phalanx import`:
		// CrowdSec names what `cscli decisions import` adds so, and a
		// bouncer that filters by origin knows that name.
		return "cscli-import"
	}
	return string(o)
}
