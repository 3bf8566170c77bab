package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// Engines a rule's expressions can run on.
const (
	// EngineRE2 is Go's regexp (the default): linear time on any line.
	EngineRE2 = "re2"
	// EngineBacktracking is github.com/dlclark/regexp2 (.NET syntax:
	// lookaround, backreferences \k<name>, conditionals), for expressions
	// imported from fail2ban that RE2 cannot run; each match of a line is
	// abandoned after BacktrackTimeout.
	EngineBacktracking = "backtracking"
)

// BacktrackTimeout bounds one backtracking match of one line, so that a
// line crafted to backtrack cannot stall ingestion; it counts as no match.
const BacktrackTimeout = 50 * time.Millisecond

// expr is one compiled expression on either engine.
type expr struct {
	re    *regexp.Regexp
	bt    *regexp2.Regexp
	names []string // by submatch index (RE2) or group order (regexp2)
}

func compileExpr(s, engine string) (*expr, error) {
	switch engine {
	case "", EngineRE2:
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, err
		}
		return &expr{re: re, names: re.SubexpNames()}, nil
	case EngineBacktracking:
		bt, err := regexp2.Compile(s, regexp2.None)
		if err != nil {
			return nil, err
		}
		bt.MatchTimeout = BacktrackTimeout
		return &expr{bt: bt, names: bt.GetGroupNames()}, nil
	}
	return nil, fmt.Errorf("unknown engine %q: use re2 or backtracking", engine)
}

// captures is a match: each named group's text, first participating
// group of a name winning (a name may repeat, as in an alternation).
type captures struct {
	s     string
	idx   []int    // RE2 submatch indexes
	names []string // RE2 names
	bt    *regexp2.Match
}

func (e *expr) find(s string) (captures, bool) {
	if e.re != nil {
		idx := e.re.FindStringSubmatchIndex(s)
		if idx == nil {
			return captures{}, false
		}
		return captures{s: s, idx: idx, names: e.names}, true
	}
	m, err := e.bt.FindStringMatch(s)
	if err != nil || m == nil {
		return captures{}, false // a timeout is no match
	}
	return captures{s: s, bt: m}, true
}

func (e *expr) matches(s string) bool {
	if e.re != nil {
		return e.re.MatchString(s)
	}
	ok, err := e.bt.MatchString(s)
	return err == nil && ok
}

// get returns the first participating group called name.
func (c captures) get(name string) (string, bool) {
	if c.bt != nil {
		for _, g := range c.bt.Groups() {
			if g.Name == name && len(g.Captures) > 0 {
				return g.String(), true
			}
		}
		return "", false
	}
	for i, n := range c.names {
		if n == name && c.idx[2*i] >= 0 {
			return c.s[c.idx[2*i]:c.idx[2*i+1]], true
		}
	}
	return "", false
}

// getNonEmpty is get skipping groups that matched nothing (fail2ban's
// alternative user groups).
func (c captures) getNonEmpty(name string) string {
	if c.bt != nil {
		for _, g := range c.bt.Groups() {
			if g.Name == name && len(g.Captures) > 0 && g.String() != "" {
				return g.String()
			}
		}
		return ""
	}
	for i, n := range c.names {
		if n == name && c.idx[2*i] >= 0 && c.idx[2*i+1] > c.idx[2*i] {
			return c.s[c.idx[2*i]:c.idx[2*i+1]]
		}
	}
	return ""
}

// RequiredLiterals returns literal strings (at least minLen bytes, case
// sensitive) that every match of an RE2 expression contains: a rule can
// use them as its `contains:` prefilter. It returns nil when it finds
// none or the expression does not parse.
func RequiredLiterals(re string, minLen int) []string {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	t = t.Simplify()
	var out []string
	var walk func(n *syntax.Regexp)
	walk = func(n *syntax.Regexp) {
		switch n.Op {
		case syntax.OpCapture:
			walk(n.Sub[0])
		case syntax.OpConcat:
			for _, s := range n.Sub {
				walk(s)
			}
		case syntax.OpPlus:
			walk(n.Sub[0])
		case syntax.OpRepeat:
			if n.Min >= 1 {
				walk(n.Sub[0])
			}
		case syntax.OpLiteral:
			if n.Flags&syntax.FoldCase == 0 && len(string(n.Rune)) >= minLen {
				out = append(out, string(n.Rune))
			}
		}
	}
	walk(t)
	return out
}
