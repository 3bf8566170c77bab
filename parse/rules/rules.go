// Package rules turns a YAML file of operator-written rules into a parser
// for logs phalanx has no built-in parser for: each rule is an RE2 regexp
// with named captures for the attacker's address, the user and the time,
// guarded by literal substrings that must all appear in a line before the
// regexp runs, so that the many lines a rule is not about cost a few
// substring searches each.
//
// A rule can also carry what a fail2ban filter needs (package
// parse/fail2ban writes such rules when it imports one): `date:` cuts the
// timestamp out of the line first, as fail2ban's date detector does;
// `prefix:` must match before the regexp and its (?P<content>...) capture
// is what the regexp then sees; `ignore:` lists regexps that exclude a
// line; `engine: backtracking` runs expressions RE2 cannot (lookaround,
// backreferences) on a backtracking engine with a per-line time limit.
//
// The same file may hold the scenarios of package detect under
// "scenarios:"; this package leaves that part alone.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/fail2ban/datedetect"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// Rule is one rule as written in YAML.
type Rule struct {
	// Name identifies the rule; required and unique within a file.
	Name string `yaml:"name"`
	// Service is what events are attributed to; default: Name.
	Service phalanx.Service `yaml:"service,omitempty"`
	// Kind is the event kind; default rule_match (info when Benign).
	Kind phalanx.EventKind `yaml:"kind,omitempty"`
	// Benign marks a rule that recognises legitimate activity (a login
	// that worked): its kind must then be one that does not count.
	Benign bool `yaml:"benign,omitempty"`
	// Contains are literal substrings that must all appear in a line
	// before the regexp is tried.
	Contains []string `yaml:"contains,omitempty"`
	// Regex is an RE2 regexp with a (?P<source>...) capture and optional
	// (?P<user>...) and (?P<time>...) captures. A (?P<source_name>...)
	// capture may stand for the source instead: a host name there is
	// shown but never resolved (nor decided against), an address counts
	// as the source. A (?P<nofail>...) capture that takes part marks the
	// line as benign (fail2ban's <F-NOFAIL>). Captures whose names start
	// with "_" are for backreferences and are otherwise ignored.
	Regex string `yaml:"regex"`
	// TimeLayout is the Go layout of the time capture; without it the
	// forms logline recognises are tried.
	TimeLayout string `yaml:"time_layout,omitempty"`

	// Date cuts a timestamp out of the line before Prefix, Ignore and
	// Regex see it, and takes the event's time from it, as fail2ban does:
	// "default" for fail2ban's default date templates, or a fail2ban
	// datepattern such as "{^LN-BEG}%Y-%m-%d %H:%M:%S" (one template per
	// line).
	Date string `yaml:"date,omitempty"`
	// Prefix is a regexp that must match (the line, after Date) before
	// Regex is tried; its (?P<content>...) capture, if any, is the text
	// Ignore and Regex then see, and its source and user captures count
	// when Regex has none (fail2ban's prefregex).
	Prefix string `yaml:"prefix,omitempty"`
	// Ignore lists regexps; a line (the text Regex sees) that one of them
	// matches is not this rule's (fail2ban's ignoreregex).
	Ignore []string `yaml:"ignore,omitempty"`
	// Engine runs Regex, Prefix and Ignore: re2 (default) or backtracking
	// (regexp2's .NET syntax, for expressions RE2 cannot run; each line's
	// match is given up after 50 ms).
	Engine string `yaml:"engine,omitempty"`

	// Line is where the rule starts in its file (0 when built in code).
	Line int `yaml:"-"`
}

// File is the schema of a rules file.
type File struct {
	Rules     []Rule    `yaml:"rules"`
	Scenarios yaml.Node `yaml:"scenarios"` // package detect's
}

// compiled is a validated rule ready to run.
type compiled struct {
	Rule
	re            *expr
	src, user, tm int // capture present: >= 0; -1 when absent
	srcName       bool
	kind          phalanx.EventKind
	service       phalanx.Service
	layoutLen     int // length of the reference time formatted with TimeLayout
	date          *datedetect.Detector
	prefix        *expr
	ignore        []*expr
}

// Set is a compiled rules file. Parse and Test may be called from several
// goroutines at once; SetContext must happen before.
type Set struct {
	rules []compiled
	ctx   *logline.Context
}

// Load reads and compiles a rules file.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return Parse(data, path)
}

// Parse compiles the rules in data; name (the file's) prefixes the errors.
// Every problem found is reported, each as "name:line: rule "x": what to fix".
func Parse(data []byte, name string) (*Set, error) {
	base := filepath.Base(name)
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // an empty file has no rules
		return nil, yamlError(base, err)
	}
	// The typed decode checked the shape; the node tree says where each
	// rule and field is.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(base, err)
	}
	lines := ruleLines(&root)

	s := &Set{}
	var errs []error
	seen := make(map[string]int, len(f.Rules))
	for i, r := range f.Rules {
		var at fieldLines
		if i < len(lines) {
			at = lines[i]
			r.Line = at.rule
		}
		fail := func(field, format string, args ...any) {
			e := &Error{File: base, Line: at.line(field), Rule: r.Name, Index: i + 1, Msg: fmt.Sprintf(format, args...)}
			errs = append(errs, e)
		}
		if prev, dup := seen[r.Name]; dup && r.Name != "" {
			fail("name", "name already used by the rule on line %d: give each rule its own name", prev)
		}
		seen[r.Name] = r.Line
		c, problems := compile(r)
		for _, p := range problems {
			fail(p.field, "%s", p.msg)
		}
		if len(problems) == 0 {
			s.rules = append(s.rules, c)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.share()
	return s, nil
}

// share makes rules with the same date or prefix use one compiled copy,
// so that Parse cuts the date and runs the prefix once per line for all
// of them (a fail2ban filter becomes one rule per failregex, all alike).
func (s *Set) share() {
	dates := map[string]*datedetect.Detector{}
	prefixes := map[string]*expr{}
	for i := range s.rules {
		c := &s.rules[i]
		if c.date != nil {
			if d, ok := dates[c.Date]; ok {
				c.date = d
			} else {
				dates[c.Date] = c.date
			}
		}
		if c.prefix != nil {
			k := c.Engine + "\x00" + c.Prefix
			if p, ok := prefixes[k]; ok {
				c.prefix = p
			} else {
				prefixes[k] = c.prefix
			}
		}
	}
}

// lineMemo remembers, during one line, the date cut and the prefix match
// the previous rule computed, for rules that share them.
type lineMemo struct {
	date     *datedetect.Detector
	text     string
	when     time.Time
	prefix   *expr
	prefIn   string
	prefCaps captures
	prefOK   bool
}

type problem struct{ field, msg string }

var kindSyntax = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Check says whether r is a rule Load and Parse accept on its own (its
// name, kind, engine, date and expressions), and if not, what is wrong
// with it: for a program that writes rules (a translator) to check them
// before it hands them on.
func (r Rule) Check() error {
	_, ps := compile(r)
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.msg
	}
	return errors.New(strings.Join(msgs, "; "))
}

// compile validates r and builds its matcher.
func compile(r Rule) (compiled, []problem) {
	var ps []problem
	add := func(field, format string, args ...any) {
		ps = append(ps, problem{field, fmt.Sprintf(format, args...)})
	}
	c := compiled{Rule: r, src: -1, user: -1, tm: -1}
	if strings.TrimSpace(r.Name) == "" {
		add("name", "no name: add `name:` with a unique name for the rule")
	}
	c.service = r.Service
	if c.service == "" {
		c.service = phalanx.Service(r.Name)
	}
	c.kind = r.Kind
	switch {
	case c.kind == "" && r.Benign:
		c.kind = phalanx.KindInfo
	case c.kind == "":
		c.kind = phalanx.KindRuleMatch
	case !kindSyntax.MatchString(string(c.kind)):
		add("kind", "kind %q is not a kind name: use lower_snake_case such as auth_failed or rule_match", r.Kind)
	case r.Benign && c.kind.Hostile():
		add("kind", "benign rule has kind %q, which counts as hostile: use info or auth_success, or drop `benign: true`", r.Kind)
	case !r.Benign && !c.kind.Hostile():
		add("kind", "kind %q does not count toward a scenario: add `benign: true` if the rule recognises legitimate activity, or use a hostile kind such as auth_failed", r.Kind)
	}
	for i, lit := range r.Contains {
		if lit == "" {
			add("contains", "contains[%d] is empty: remove it or write the literal text a matching line always has", i)
		}
	}
	switch r.Engine {
	case "", EngineRE2, EngineBacktracking:
	default:
		add("engine", "engine %q is not known: use re2 (the default) or backtracking", r.Engine)
		return c, ps
	}
	if r.Date != "" {
		pat := r.Date
		if pat == "default" {
			pat = ""
		}
		d, errs := datedetect.New(pat, datedetect.Options{})
		for _, e := range errs {
			add("date", "%v: write \"default\" or a fail2ban datepattern", e)
		}
		c.date = d
	}
	if r.Prefix != "" {
		pre, err := compileExpr(r.Prefix, r.Engine)
		if err != nil {
			add("prefix", "prefix does not compile (%v): fix it%s", err, engineHint(r.Engine))
		} else {
			c.prefix = pre
			for _, n := range pre.names {
				switch {
				case n == "" || n == "content" || n == "source" || n == "source_name" || n == "user" || n == "nofail" || strings.HasPrefix(n, "_") || n[0] >= '0' && n[0] <= '9':
				default:
					add("prefix", "prefix has a capture named %q: use content, source, source_name, user or nofail, or start the name with \"_\"", n)
				}
			}
		}
	}
	for i, ig := range r.Ignore {
		e, err := compileExpr(ig, r.Engine)
		if err != nil {
			add("ignore", "ignore[%d] does not compile (%v): fix it%s", i, err, engineHint(r.Engine))
			continue
		}
		c.ignore = append(c.ignore, e)
	}
	if r.Regex == "" {
		add("regex", "no regex: add `regex:` with an RE2 pattern that has a (?P<source>...) capture")
		return c, ps
	}
	re, err := compileExpr(r.Regex, r.Engine)
	if err != nil {
		add("regex", "regex does not compile (%v): fix it%s", err, engineHint(r.Engine))
		return c, ps
	}
	c.re = re
	for i, n := range re.names {
		switch {
		case n == "" || n[0] >= '0' && n[0] <= '9' || strings.HasPrefix(n, "_") || n == "nofail":
		case n == "source":
			c.src = i
		case n == "source_name":
			c.srcName = true
		case n == "user":
			c.user = i
		case n == "time":
			c.tm = i
		default:
			add("regex", "regex has a capture named %q: name captures source, user or time, and make other groups unnamed", n)
		}
	}
	prefixSource := false
	if c.prefix != nil {
		for _, n := range c.prefix.names {
			if n == "source" || n == "source_name" {
				prefixSource = true
			}
		}
	}
	if c.src < 0 && !c.srcName && !prefixSource {
		add("regex", "regex has no (?P<source>...) capture: add one that matches the attacker's address")
	}
	if r.TimeLayout != "" {
		// Round-trip a sample time that differs from the reference in
		// every element: a layout with no element formats to itself and
		// "parses" any copy of itself into nothing.
		ref := time.Date(2019, 11, 23, 21, 37, 48, 0, time.UTC)
		f := ref.Format(r.TimeLayout)
		if _, err := time.Parse(r.TimeLayout, f); err != nil || f == r.TimeLayout {
			add("time_layout", "time_layout %q cannot parse a time it formats itself: write the reference time Mon Jan 2 15:04:05 MST 2006 the way the log does, e.g. \"2006/01/02 15:04:05\"", r.TimeLayout)
		}
		c.layoutLen = len(f)
	}
	return c, ps
}

// fieldLines are the lines of one rule and of its fields in the file.
type fieldLines struct {
	rule   int
	fields map[string]int
}

func (f fieldLines) line(field string) int {
	if l, ok := f.fields[field]; ok {
		return l
	}
	return f.rule
}

// ruleLines finds each rule's mapping under the top-level "rules:".
func ruleLines(root *yaml.Node) []fieldLines {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "rules" || doc.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		var out []fieldLines
		for _, item := range doc.Content[i+1].Content {
			fl := fieldLines{rule: item.Line, fields: map[string]int{}}
			for j := 0; j+1 < len(item.Content); j += 2 {
				fl.fields[item.Content[j].Value] = item.Content[j+1].Line
			}
			out = append(out, fl)
		}
		return out
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites yaml's "line N: msg" errors as "file:N: msg".
func yamlError(base string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, lineError(base, e, err))
		}
		return errors.Join(errs...)
	}
	return lineError(base, err.Error(), err)
}

func engineHint(engine string) string {
	if engine == EngineBacktracking {
		return " (the backtracking engine takes .NET syntax: (?<name>...), \\k<name>)"
	}
	return "; RE2 has no lookaround or backreferences (engine: backtracking has them)"
}

func lineError(base, msg string, err error) error {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: base, Line: n, Msg: m[2] + ": fix the YAML (a rule takes the keys name, service, kind, benign, contains, regex, time_layout, date, prefix, ignore and engine)", Err: err}
	}
	return &Error{File: base, Msg: msg + ": fix the YAML", Err: err}
}

// Error is a problem in a rules file, at a line, in a rule.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Rule  string // the rule's name, if it has one
	Index int    // the rule's position, from 1; 0 for errors outside a rule
	Msg   string // what is wrong and what to do
	Err   error  // the underlying YAML error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	switch {
	case e.Rule != "":
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	case e.Index > 0:
		fmt.Fprintf(&b, "rule #%d: ", e.Index)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// SetContext supplies the year and zone for timestamps that lack them.
func (s *Set) SetContext(c *logline.Context) {
	s.ctx = c
	done := map[*datedetect.Detector]*datedetect.Detector{}
	for i := range s.rules {
		d := s.rules[i].date
		if d == nil {
			continue
		}
		if n, ok := done[d]; ok {
			s.rules[i].date = n
			continue
		}
		n := d.WithOptions(datedetect.Options{Location: loc(c), Now: clock(c)})
		done[d] = n
		s.rules[i].date = n
	}
}

// clock is the context's notion of now for dates without a year or day.
func clock(c *logline.Context) func() time.Time {
	switch {
	case c != nil && c.Now != nil:
		return c.Now
	case c != nil && c.Year != 0:
		y := c.Year
		return func() time.Time { return time.Date(y, 12, 31, 23, 59, 59, 0, loc(c)) }
	}
	return nil
}

// Rules returns the rules in file order.
func (s *Set) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i := range s.rules {
		out[i] = s.rules[i].Rule
	}
	return out
}

// Len is the number of rules.
func (s *Set) Len() int { return len(s.rules) }

// Parse tries each rule on the line, prefilter first, and fills ev from
// the first that matches with a valid address. It returns false when none
// did.
func (s *Set) Parse(line string, ev *phalanx.Event) bool {
	var memo lineMemo
	for i := range s.rules {
		if _, ok := s.rules[i].match(line, s.ctx, ev, &memo); ok {
			return true
		}
	}
	return false
}

// Result is what Test found for one line.
type Result struct {
	Line  string
	Rule  string        // the rule that matched; "" if none
	Event phalanx.Event // what it extracted
	// Rejected says, for rules whose regexp matched but whose line did
	// not count, why not (a source that is not an IP address).
	Rejected []string
}

// Test runs the set over sample lines and reports, per line, which rule
// matched and what it extracted: the engine of `phalanx rules test`.
func (s *Set) Test(lines []string) []Result {
	out := make([]Result, len(lines))
	for i, line := range lines {
		r := Result{Line: line}
		var memo lineMemo
		for j := range s.rules {
			var ev phalanx.Event
			why, ok := s.rules[j].match(line, s.ctx, &ev, &memo)
			if ok {
				r.Rule, r.Event = s.rules[j].Name, ev
				break
			}
			if why != "" {
				r.Rejected = append(r.Rejected, fmt.Sprintf("rule %q: %s", s.rules[j].Name, why))
			}
		}
		out[i] = r
	}
	return out
}

// match runs one rule. why explains a regexp match that does not count.
func (c *compiled) match(line string, ctx *logline.Context, ev *phalanx.Event, memo *lineMemo) (why string, ok bool) {
	for _, lit := range c.Contains {
		if !strings.Contains(line, lit) {
			return "", false
		}
	}
	text := line
	var dated time.Time
	if c.date != nil {
		if memo.date != c.date {
			dm := c.date.Find(line)
			memo.date, memo.text, memo.when = c.date, dm.Cut(line), dm.Time
		}
		text, dated = memo.text, memo.when
	}
	var pre captures
	hasPre := false
	if c.prefix != nil {
		if memo.prefix != c.prefix || memo.prefIn != text {
			memo.prefCaps, memo.prefOK = c.prefix.find(text)
			memo.prefix, memo.prefIn = c.prefix, text
		}
		p, ok := memo.prefCaps, memo.prefOK
		if !ok {
			return "", false
		}
		pre, hasPre = p, true
		if content, ok := p.get("content"); ok && content != "" {
			text = content
		}
	}
	for i, ig := range c.ignore {
		if ig.matches(text) {
			return fmt.Sprintf("ignore[%d] matches the line", i), false
		}
	}
	m, ok := c.re.find(text)
	if !ok {
		return "", false
	}
	get := func(name string) (string, bool) {
		if v, ok := m.get(name); ok {
			return v, true
		}
		if hasPre {
			return pre.get(name)
		}
		return "", false
	}
	var a netip.Addr
	var name string
	if src, ok := get("source"); ok {
		if a, ok = sourceAddr(src); !ok {
			return fmt.Sprintf("source %q is not an IP address: make the capture match only the address", clip(src)), false
		}
	} else if n, ok := get("source_name"); ok && n != "" {
		if addr, ok := sourceAddr(n); ok {
			a = addr
		} else {
			name = n
		}
	} else {
		return "the expression matched but no source capture took part", false
	}
	var t time.Time
	tm, hasTm := m.get("time")
	switch {
	case c.date != nil:
		t = dated
	case hasTm && c.TimeLayout != "":
		t = c.parseLayout(tm, ctx)
	case hasTm:
		t, _, _ = logline.Time(tm, ctx)
	case c.tm >= 0:
	case c.TimeLayout != "":
		// No capture: the layout applies to the start of the line. Its
		// length varies with the date ("Jan 2" vs "Jan 12"), so try the
		// reference length and a few either side.
		for _, d := range [...]int{0, -1, 1, -2, 2, 3, -3} {
			if n := c.layoutLen + d; n > 0 && n <= len(line) {
				if t = c.parseLayout(line[:n], ctx); !t.IsZero() {
					break
				}
			}
		}
	default:
		if tt, _, ok := logline.Time(line, ctx); ok {
			t = tt
		} else if h, ok := logline.Parse(line, ctx); ok {
			t = h.Time
		}
	}
	ev.Time = t
	if a.IsValid() {
		ev.Source = a.Unmap()
	}
	ev.SourceName = name
	ev.Service = c.service
	ev.Kind = c.kind
	if nf, _ := get("nofail"); nf != "" {
		ev.Kind = phalanx.KindInfo
	}
	ev.User = m.getNonEmpty("user")
	if ev.User == "" && hasPre {
		ev.User = pre.getNonEmpty("user")
	}
	return "", true
}

// sourceAddr parses a source capture: an address, "[addr]", or, because
// applications log the peer as Go's RemoteAddr does, "addr:port" and
// "[addr]:port"; a character class like [0-9a-f.:]+ may also have taken
// the colon that follows.
func sourceAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(s, ":")
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// parseLayout parses s with the rule's layout; the zero Time if it does
// not fit. A layout without a year takes the context's.
func (c *compiled) parseLayout(s string, ctx *logline.Context) time.Time {
	t, err := time.ParseInLocation(c.TimeLayout, s, loc(ctx))
	if err != nil {
		return time.Time{}
	}
	if t.Year() == 0 {
		t = t.AddDate(year(ctx), 0, 0)
	}
	return t
}

func loc(c *logline.Context) *time.Location {
	if c == nil || c.Loc == nil {
		return time.Local
	}
	return c.Loc
}

func year(c *logline.Context) int {
	switch {
	case c != nil && c.Year != 0:
		return c.Year
	case c != nil && c.Now != nil:
		return c.Now().Year()
	}
	return time.Now().Year()
}

// clip shortens attacker-controlled text quoted in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
