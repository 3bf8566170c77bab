// Package rules turns a YAML file of operator-written rules into a parser
// for logs phalanx has no built-in parser for: each rule is an RE2 regexp
// with named captures for the attacker's address, the user and the time,
// guarded by literal substrings that must all appear in a line before the
// regexp runs, so that the many lines a rule is not about cost a few
// substring searches each.
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
	// (?P<user>...) and (?P<time>...) captures.
	Regex string `yaml:"regex"`
	// TimeLayout is the Go layout of the time capture; without it the
	// forms logline recognises are tried.
	TimeLayout string `yaml:"time_layout,omitempty"`

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
	re            *regexp.Regexp
	src, user, tm int // submatch indexes; -1 when absent
	kind          phalanx.EventKind
	service       phalanx.Service
	layoutLen     int // length of the reference time formatted with TimeLayout
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
	return s, nil
}

type problem struct{ field, msg string }

var kindSyntax = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

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
	if r.Regex == "" {
		add("regex", "no regex: add `regex:` with an RE2 pattern that has a (?P<source>...) capture")
		return c, ps
	}
	re, err := regexp.Compile(r.Regex)
	if err != nil {
		add("regex", "regex does not compile (%v): fix it; RE2 has no lookaround or backreferences", err)
		return c, ps
	}
	c.re = re
	for i, n := range re.SubexpNames() {
		switch n {
		case "":
		case "source":
			c.src = i
		case "user":
			c.user = i
		case "time":
			c.tm = i
		default:
			add("regex", "regex has a capture named %q: name captures source, user or time, and make other groups unnamed", n)
		}
	}
	if c.src < 0 {
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

func lineError(base, msg string, err error) error {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: base, Line: n, Msg: m[2] + ": fix the YAML (a rule takes the keys name, service, kind, benign, contains, regex and time_layout)", Err: err}
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
func (s *Set) SetContext(c *logline.Context) { s.ctx = c }

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
	for i := range s.rules {
		if _, ok := s.rules[i].match(line, s.ctx, ev); ok {
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
		for j := range s.rules {
			var ev phalanx.Event
			why, ok := s.rules[j].match(line, s.ctx, &ev)
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
func (c *compiled) match(line string, ctx *logline.Context, ev *phalanx.Event) (why string, ok bool) {
	for _, lit := range c.Contains {
		if !strings.Contains(line, lit) {
			return "", false
		}
	}
	m := c.re.FindStringSubmatchIndex(line)
	if m == nil {
		return "", false
	}
	group := func(i int) string {
		if i < 0 || m[2*i] < 0 {
			return ""
		}
		return line[m[2*i]:m[2*i+1]]
	}
	src := group(c.src)
	a, ok := sourceAddr(src)
	if !ok {
		return fmt.Sprintf("source %q is not an IP address: make the capture match only the address", clip(src)), false
	}
	var t time.Time
	switch {
	case c.tm >= 0 && c.TimeLayout != "":
		t = c.parseLayout(group(c.tm), ctx)
	case c.tm >= 0:
		t, _, _ = logline.Time(group(c.tm), ctx)
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
	ev.Source = a.Unmap()
	ev.Service = c.service
	ev.Kind = c.kind
	ev.User = group(c.user)
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
