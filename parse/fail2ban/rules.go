package fail2ban

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/fail2ban/datedetect"
	"github.com/phalanx-defence/phalanx/parse/rules"
)

// Rules returns the filter as phalanx rules, one per failregex, ready to
// be written under `rules:` in a phalanx rules file (yaml.Marshal of
// rules.File{Rules: ...}) and loaded by `phalanx up` and `replay`.
// Each rule carries the filter's date handling (date:), prefregex
// (prefix:) and ignoreregex (ignore:); its regexp is RE2 where the
// translation is exact, else the rule says engine: backtracking.
//
// A rule sees one line at a time and keeps no state, so what a filter
// does across lines cannot be written as rules; the problems returned say
// which filter features are lost that way (maxlines > 1, <F-MLFID>
// connection tracking), besides the filter's own Problems. The Filter
// itself (NewMatcher) keeps all of it.
func (f *Filter) Rules() ([]rules.Rule, []Problem) {
	var out []rules.Rule
	problems := append([]Problem(nil), f.Problems...)
	date := usableDatepattern(f.Datepattern)
	base := f.Name
	if m := f.Mode(); m != "" {
		base += "-" + m
	}
	if f.MaxLines > 1 {
		problems = append(problems, Problem{Filter: f.Name, Option: "maxlines", Expr: fmt.Sprint(f.MaxLines),
			Reason: "multi-line matching: a rule sees one line at a time, so a failure spread over several lines is missed (phalanx parse --fail2ban-filter keeps it)"})
	}
	usesMLFID := f.Prefregex != nil && strings.Contains(f.Prefregex.Python, "(?P<mlfid>")
	for _, e := range f.Failregex {
		if strings.Contains(e.Python, "(?P<mlfid>") {
			usesMLFID = true
		}
	}
	if usesMLFID {
		problems = append(problems, Problem{Filter: f.Name, Option: "failregex", Expr: "<F-MLFID>",
			Reason: "connection tracking: a rule sees each line alone, so a failure whose address comes on a later line of the same connection is missed, and a later success (<F-NOFAIL>, <F-MLFGAINED>) does not cancel it (phalanx parse --fail2ban-filter keeps it)"})
	}
	for i, e := range f.Failregex {
		r, err := f.rule(e, date)
		if err != "" {
			problems = append(problems, Problem{Filter: f.Name, Option: e.Option, Index: e.Index, Expr: e.Source, Reason: err})
			continue
		}
		r.Name = fmt.Sprintf("%s-%d", base, i)
		r.Service = phalanx.Service(f.Name)
		// What the translation cannot vouch for (an expression fail2ban's
		// Python would refuse, one an engine reads differently) must not
		// become a rule that does not load.
		if err := r.Check(); err != nil {
			problems = append(problems, Problem{Filter: f.Name, Option: e.Option, Index: e.Index, Expr: e.Source,
				Reason: "cannot be written as a rule: " + err.Error()})
			continue
		}
		out = append(out, r)
	}
	return out, problems
}

// usableDatepattern keeps the templates of a datepattern that compile
// (the filter's Problems name the others), or "default" when none is left.
func usableDatepattern(p string) string {
	var keep []string
	for _, l := range strings.Split(p, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if _, errs := datedetect.New(l, datedetect.Options{}); len(errs) == 0 {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return "default"
	}
	return strings.Join(keep, "\n")
}

// rule translates one failregex with the filter's prefix and ignores.
func (f *Filter) rule(e *Expr, date string) (rules.Rule, string) {
	hasHost := false
	for _, py := range []string{e.Python, prefPython(f.Prefregex)} {
		for _, g := range [...]string{"(?P<ip4>", "(?P<ip6>", "(?P<dns>"} {
			if strings.Contains(py, g) {
				hasHost = true
			}
		}
	}
	exprs := []string{renameGroups(e.Python, false, hasHost)}
	if f.Prefregex != nil {
		exprs = append(exprs, renameGroups(f.Prefregex.Python, true, hasHost))
	}
	if !strings.Contains(strings.Join(exprs, ""), "(?P<source") {
		return rules.Rule{}, "no address of its own (it only marks a connection, <F-MLFID>, for later lines): a rule cannot use it without connection tracking"
	}
	for _, ig := range f.Ignoreregex {
		exprs = append(exprs, renameGroups(ig.Python, false, hasHost))
	}
	for i := range exprs {
		exprs[i] = globalFlagsToLocal(exprs[i])
	}
	// One engine for all of a rule's expressions: RE2 if every one
	// translates, else all on the backtracking engine.
	out := make([]string, len(exprs))
	engine := ""
	for i, py := range exprs {
		t := translate(py, dialectRE2)
		if len(t.problems) > 0 {
			engine = rules.EngineBacktracking
			break
		}
		if _, err := regexp.Compile(t.expr); err != nil {
			engine = rules.EngineBacktracking
			break
		}
		out[i] = t.expr
	}
	if engine == rules.EngineBacktracking {
		for i, py := range exprs {
			t := translate(py, dialectNET)
			if len(t.problems) > 0 {
				return rules.Rule{}, "cannot be written as a rule: " + strings.Join(t.problems, "; ")
			}
			out[i] = t.expr
		}
	}
	for i := range out {
		out[i] = escapeLineBreaks(out[i])
	}
	r := rules.Rule{Regex: out[0], Date: date, Engine: engine}
	k := 1
	if f.Prefregex != nil {
		r.Prefix = out[k]
		k++
	}
	r.Ignore = append(r.Ignore, out[k:]...)
	if engine == "" {
		r.Contains = prefilter(r.Regex)
	}
	return r, ""
}

// escapeLineBreaks writes a literal line break in an expression as the
// escape \n (\r): the same expression, and one a YAML file keeps intact.
func escapeLineBreaks(s string) string {
	if !strings.ContainsAny(s, "\n\r") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			default:
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		}
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// prefilter picks up to two literals every match of re contains, long
// enough to be worth a substring search, that cannot straddle the place a
// date was cut from (fail2ban leaves "[]" there).
func prefilter(re string) []string {
	lits := rules.RequiredLiterals(re, 4)
	var ok []string
	for _, l := range lits {
		if strings.Contains(l, "[]") || strings.HasPrefix(l, "]") || strings.TrimSpace(l) != l {
			continue
		}
		ok = append(ok, l)
	}
	sort.SliceStable(ok, func(i, j int) bool { return len(ok[i]) > len(ok[j]) })
	if len(ok) > 2 {
		ok = ok[:2]
	}
	return ok
}

var (
	groupOpen = regexp.MustCompile(`\(\?P<(\w+)>`)
	groupRef  = regexp.MustCompile(`\(\?P=(\w+)\)|\(\?\((\w+)\)`)
)

func prefPython(e *Expr) string {
	if e == nil {
		return ""
	}
	return e.Python
}

// ruleGroupName maps fail2ban's group names to the captures rules know:
// the host (ip4, ip6, dns) is the source_name capture — an address there
// is the event's source, anything else (a name, "192.030.0.6") is shown,
// never resolved; <F-ID> is the source only in a regexp without a host;
// user and alt_user the user; nofail and mlfgained mark a benign line;
// content (in a prefix) is what the regexp sees. Every other group keeps
// its name behind "_" (rules ignore it; backreferences keep working).
func ruleGroupName(n string, prefix, hasHost bool) string {
	switch {
	case n == "ip4" || n == "ip6" || n == "dns":
		return "source_name"
	case n == "fid" && !hasHost:
		return "source_name"
	case n == "user" || strings.HasPrefix(n, "alt_") && strings.Contains(n, "user"):
		return "user"
	case n == "nofail" || n == "mlfgained":
		return "nofail"
	case n == "content" && prefix:
		return "content"
	case strings.HasPrefix(n, "_"):
		return n
	}
	return "_" + n
}

func renameGroups(py string, prefix, hasHost bool) string {
	py = groupOpen.ReplaceAllStringFunc(py, func(m string) string {
		n := m[4 : len(m)-1]
		return "(?P<" + ruleGroupName(n, prefix, hasHost) + ">"
	})
	return groupRef.ReplaceAllStringFunc(py, func(m string) string {
		if strings.HasPrefix(m, "(?P=") {
			return "(?P=" + ruleGroupName(m[4:len(m)-1], prefix, hasHost) + ")"
		}
		if n := m[3 : len(m)-1]; !allDigits(n) {
			return "(?(" + ruleGroupName(n, prefix, hasHost) + ")"
		}
		return m // (?(2)...): a number, which renaming leaves as it was
	})
}
