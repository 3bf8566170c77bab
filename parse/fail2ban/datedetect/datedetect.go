// Package datedetect finds and parses the timestamp in a log line the way
// fail2ban's DateDetector does: its default templates (ISO 8601, syslog,
// Apache, epoch, TAI64N, ...), a filter's own datepattern with its
// %-directives, {^LN-BEG} (anchored at the line's start), {DATE} (the
// default templates inside a filter's context) and {NONE}. fail2ban cuts
// the date out of the line before its regular expressions see it, so a
// filter translated from fail2ban needs the same cut to match.
//
// It is a separate package so that package rules can strip dates for
// rules imported from fail2ban without importing the importer.
package datedetect

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// defaultTemplates are fail2ban's DEFAULT_TEMPLATES (datedetector.py),
// in order.
var defaultTemplates = []string{
	`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
	`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
	`%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S`,
	`%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
	`%m/%d/%ExY:%H:%M:%S`,
	`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
	`EPOCH`,
	`{^LN-BEG}%H:%M:%S`,
	`^<%m/%d/%Exy@%H:%M:%S>`,
	`%Exy%Exm%Exd  ?%H:%M:%S`,
	`%b %d, %ExY %I:%M:%S %p`,
	`^%b-%d-%Exy %k:%M:%S`,
	`%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?`,
	`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`TAI64N`,
}

// timeRE is fail2ban's strptime directive table (strptime.py over
// Python's C-locale TimeRE), without %ExY, which depends on the year.
var timeRE = map[string]string{
	"%":   "%",
	"A":   `(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)`,
	"B":   `(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)`,
	"ExH": `(?P<H>[0-1]\d|2[0-3])`,
	"ExM": `(?P<M>[0-5]\d)`,
	"ExS": `(?P<S>[0-5]\d|6[0-1])`,
	"ExZ": `(?P<Z>[A-Z](?:[A-Z]{2,4})?)`,
	"Exd": `(?P<d>[1-2]\d|0[1-9]|3[0-1])`,
	"Exk": ` ?(?P<H>[0-1]?\d|2[0-3])`,
	"Exl": ` ?(?P<I>1[0-2]|\d)`,
	"Exm": `(?P<m>0[1-9]|1[0-2])`,
	"Exy": `(?P<y>\d{2})`,
	"Exz": `(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)`,
	"G":   `(?P<G>\d\d\d\d)`,
	"H":   `(?P<H>[0-1]?\d|2[0-3])`,
	"I":   `(?P<I>1[0-2]|0[1-9]|[1-9])`,
	"M":   `(?P<M>[0-5]?\d)`,
	"S":   `(?P<S>[0-5]?\d|6[0-1])`,
	"U":   `(?P<U>5[0-3]|[0-4]\d|\d)`,
	"V":   `(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)`,
	"W":   `(?P<W>5[0-3]|[0-4]\d|\d)`,
	"X":   `(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)`,
	"Y":   `(?P<Y>\d{4})`,
	"Z":   `(?P<Z>Z|[A-Z]{3,5})`,
	"a":   `(?P<a>mon|tue|wed|thu|fri|sat|sun)`,
	"b":   `(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`,
	"c":   `(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)`,
	"d":   `(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])`,
	"f":   `(?P<f>[0-9]{1,6})`,
	"j":   `(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])`,
	"k":   ` ?(?P<H>[0-2]?\d)`,
	"l":   ` ?(?P<I>1?\d)`,
	"m":   `(?P<m>0?[1-9]|1[0-2])`,
	"p":   `(?P<p>am|pm)`,
	"u":   `(?P<u>[1-7])`,
	"w":   `(?P<w>[0-6])`,
	"x":   `(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)`,
	"y":   `(?P<y>\d\d)`,
	"z":   `(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)`,
}

var directive = regexp.MustCompile(`%(%|ExZ|Exz|Exd|Exm|ExH|Exk|Exl|ExM|ExS|ExY|Exy|[dfHIGjmMSUwuVyYzAaBbpZ%WcxXkl])`)

// exYear is %ExY: the centuries from 2000 to three years from now, as
// fail2ban builds it (a four-digit number in a log is a year only if it is
// plausibly one).
func exYear(now time.Time) string {
	cents := map[string]bool{}
	for y := 2000; y <= now.Year()+1; y += 3 {
		cents[strconv.Itoa(y)[:3]] = true
	}
	cents[strconv.Itoa(now.Year() - 1)[:3]] = true
	cents[strconv.Itoa(now.Year() + 3)[:3]] = true
	// All share "20" for this century and the next few; group the third digit.
	var third []byte
	prefix := ""
	same := true
	for c := range cents {
		if prefix == "" {
			prefix = c[:2]
		} else if c[:2] != prefix {
			same = false
		}
		third = append(third, c[2])
	}
	if !same {
		alts := make([]string, 0, len(cents))
		for c := range cents {
			alts = append(alts, c)
		}
		return `(?P<Y>(?:` + strings.Join(alts, "|") + `)\d)`
	}
	sortBytes(third)
	return `(?P<Y>` + prefix + "[" + string(third) + `]\d)`
}

func sortBytes(b []byte) {
	for i := 1; i < len(b); i++ {
		for j := i; j > 0 && b[j] < b[j-1]; j-- {
			b[j], b[j-1] = b[j-1], b[j]
		}
	}
}

type kind int

const (
	kindRegex kind = iota
	kindEpoch
	kindLineEpoch
	kindNone // {NONE}: no date at all
)

// template is one compiled date template.
type template struct {
	name      string
	kind      kind
	re        *regexp.Regexp
	lineBegin bool // anchored at the line start (fail2ban's LINE_BEGIN/LINE_END flags)
	wordBegin bool // needs (?=^|\b|\W) before it
	wordEnd   bool // needs (?=\b|\W|$) after it
	group     int  // the submatch that is the date text
	tai64n    bool
	names     []string
}

// Detector finds dates with a list of templates. It is immutable and safe
// for concurrent use; a Session adds fail2ban's memory of the template
// that matched last.
type Detector struct {
	templates []*template
	loc       *time.Location
	now       func() time.Time
}

// Options configures New.
type Options struct {
	// Location is the zone of times that do not carry one; default
	// time.Local, as fail2ban.
	Location *time.Location
	// Now is the clock for dates without a year or a day; default time.Now.
	Now func() time.Time
}

// Compiled templates are immutable, so detectors share them: a rules file
// imported from fail2ban has one rule per failregex, all with the same
// datepattern, and the default list alone is over thirty expressions.
var (
	cacheMu sync.Mutex
	cache   = map[string]cached{}
)

type cached struct {
	templates []*template
	errs      []error
}

// maxCached bounds the cache (datepatterns come from configuration, but a
// fuzzer or a long-running reload loop could supply any number).
const maxCached = 256

// New compiles a fail2ban datepattern (one template per line; "" means
// fail2ban's default templates). Templates that cannot be compiled are
// returned as errors and left out; the rest still work.
func New(datepattern string, o Options) (*Detector, []error) {
	d := &Detector{loc: o.Location, now: o.Now}
	if d.loc == nil {
		d.loc = time.Local
	}
	if d.now == nil {
		d.now = time.Now
	}
	var errs []error
	seen := map[string]bool{}
	add := func(t *template, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		if t == nil || seen[t.name] {
			return
		}
		seen[t.name] = true
		d.templates = append(d.templates, t)
	}
	// %ExY is a pattern of plausible years, not a timestamp: fail2ban
	// builds it from the real clock (its tests fix their clock in 2005 and
	// still read 2013's logs), and so does this.
	exY := exYear(time.Now())
	key := datepattern + "\x00" + exY
	cacheMu.Lock()
	ce, hit := cache[key]
	cacheMu.Unlock()
	if hit {
		d.templates = ce.templates
		return d, ce.errs
	}
	defer func() {
		cacheMu.Lock()
		if len(cache) < maxCached {
			cache[key] = cached{d.templates, errs}
		}
		cacheMu.Unlock()
	}()
	lines := strings.Split(datepattern, "\n")
	if strings.TrimSpace(datepattern) == "" {
		lines = []string{"{DEFAULT}"}
	}
	for _, p := range lines {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		key := p
		if !strings.Contains(p, "%") {
			key = strings.ToUpper(p)
		}
		switch {
		case key == "{DEFAULT}" || key == "{^LN-BEG}":
			onlyAnchored := key == "{^LN-BEG}"
			for _, t := range defaults(exY) {
				if onlyAnchored && !t.lineBegin {
					continue
				}
				add(t, nil)
			}
		case strings.Contains(key, "{DATE}"):
			for _, dt := range defaultTemplates {
				if dt == "EPOCH" || dt == "TAI64N" {
					// fail2ban substitutes these templates' names, not their
					// expressions, into {DATE}: they never match there.
					continue
				}
				inner := unbound(dt)
				add(compile(strings.ReplaceAll(p, "{DATE}", inner), exY, true, true))
			}
		case key == "{NONE}":
			add(&template{name: "{NONE}", kind: kindNone}, nil)
		default:
			add(compileNamed(p, key, exY))
		}
	}
	return d, errs
}

// defaults is fail2ban's default list: each template's {^LN-BEG} form
// first (weighted first by fail2ban), then the templates themselves.
func defaults(exY string) []*template {
	var anchored, plain []*template
	for _, dt := range defaultTemplates {
		t, err := compileNamed(dt, strings.ToUpper(dt), exY)
		if err != nil {
			panic(fmt.Sprintf("datedetect: default template %q: %v", dt, err)) // a bug in this table
		}
		if !t.lineBegin {
			var a *template
			switch t.kind {
			case kindEpoch:
				a, err = compileNamed("{^LN-BEG}EPOCH", "{^LN-BEG}EPOCH", exY)
			case kindRegex:
				pat := dt
				if t.tai64n {
					pat = "TAI64N"
					a, err = compileNamed("{^LN-BEG}TAI64N", "{^LN-BEG}TAI64N", exY)
				} else {
					a, err = compile("{^LN-BEG}"+pat, exY, true, true)
				}
			}
			if err != nil {
				panic(fmt.Sprintf("datedetect: default template %q: %v", dt, err))
			}
			if a != nil {
				anchored = append(anchored, a)
			}
		}
		plain = append(plain, t)
	}
	return append(anchored, plain...)
}

func compileNamed(p, key, exY string) (*template, error) {
	switch key {
	case "EPOCH":
		return &template{name: "Epoch", kind: kindEpoch, wordEnd: true}, nil
	case "{^LN-BEG}EPOCH", "^EPOCH":
		return &template{name: "{^LN-BEG}Epoch", kind: kindLineEpoch, lineBegin: true, wordEnd: true}, nil
	case "TAI64N":
		t, err := compile(`**@[0-9a-f]{24}`, exY, false, true)
		if t != nil {
			t.tai64n, t.name = true, "TAI64N"
		}
		return t, err
	case "{^LN-BEG}TAI64N", "^TAI64N":
		t, err := compile(`{^LN-BEG}@[0-9a-f]{24}`, exY, true, true)
		if t != nil {
			t.tai64n, t.name = true, "{^LN-BEG}TAI64N"
		}
		return t, err
	}
	if strings.Contains(key, "EPOCH") {
		return nil, fmt.Errorf("datepattern %q: epoch inside a pattern is not supported: use EPOCH or {^LN-BEG}EPOCH alone", p)
	}
	return compile(p, exY, true, true)
}

var (
	reUnbNoBounds  = regexp.MustCompile(`^\{UNB\}`)
	reLineBoundBeg = regexp.MustCompile(`^\{\^LN-BEG\}`)
	reSAncBound    = regexp.MustCompile(`^\((?:\?:)?\^\|\\b\|\\W\)`)
	reEAncBound    = regexp.MustCompile(`\(\?=\\b\|\\W\|\$\)$`)
	reNoWordBeg    = regexp.MustCompile(`^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)`)
	reNoWordEnd    = regexp.MustCompile(`(?:\$\)?|\\b|\\s|\*\*\)*)$`)
	reLineBeg      = regexp.MustCompile(`^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^[^|])`)
	reLineEnd      = regexp.MustCompile(`(?:\$\)?)$`)
	reAlpha        = regexp.MustCompile(`%[aAbBpc]`)
	reGlobalFlags  = regexp.MustCompile(`^\(\?[a-z]+\)`)
)

// unbound strips a template's boundaries for use inside {DATE}.
func unbound(p string) string {
	p = reUnbNoBounds.ReplaceAllString(p, "")
	p = reLineBoundBeg.ReplaceAllString(p, "")
	p = reSAncBound.ReplaceAllString(p, "")
	return reEAncBound.ReplaceAllString(p, "")
}

// compile turns a fail2ban date pattern into a template, as
// DatePatternRegex.setRegex and DateTemplate.setRegex do.
func compile(pattern, exY string, wordBegin, wordEnd bool) (*template, error) {
	orig := pattern
	lineStart := false
	if reUnbNoBounds.MatchString(pattern) {
		pattern = reUnbNoBounds.ReplaceAllString(pattern, "")
		wordBegin, wordEnd = false, false
	}
	if wordBegin && reLineBoundBeg.MatchString(pattern) {
		pattern = reLineBoundBeg.ReplaceAllString(pattern, "")
		lineStart = true
	}
	// fail2ban %-formats the whole pattern: a "%" that starts no directive
	// is an error there ("unescaped percent char").
	covered := 0
	for _, loc := range directive.FindAllStringIndex(pattern, -1) {
		if strings.Contains(pattern[covered:loc[0]], "%") {
			return nil, fmt.Errorf("datepattern %q: %% that starts no directive: write %%%% for a literal %%", orig)
		}
		covered = loc[1]
	}
	if strings.Contains(pattern[covered:], "%") {
		return nil, fmt.Errorf("datepattern %q: %% that starts no directive: write %%%% for a literal %%", orig)
	}
	var bad error
	rx := directive.ReplaceAllStringFunc(pattern, func(m string) string {
		k := m[1:]
		if k == "ExY" {
			return exY
		}
		if v, ok := timeRE[k]; ok {
			return v
		}
		bad = fmt.Errorf("datepattern %q: unknown directive %s", orig, m)
		return m
	})
	if bad != nil {
		return nil, bad
	}
	ci := reAlpha.MatchString(pattern)
	rx = strings.TrimSpace(rx)
	if gf := reGlobalFlags.FindString(rx); gf != "" {
		if strings.Contains(gf, "i") {
			ci = true
		}
		rx = rx[len(gf):]
	}
	boundBegin := wordBegin && !reNoWordBeg.MatchString(rx)
	boundEnd := wordEnd && !reNoWordEnd.MatchString(rx)
	if !hasPlainGroup(rx) {
		// fail2ban wraps the whole pattern (after ^ and before $) in a group.
		pre, body, post := "", rx, ""
		if strings.HasPrefix(body, "^") {
			pre, body = "^", body[1:]
		}
		if strings.HasSuffix(body, "$") && !strings.HasSuffix(body, `\$`) {
			body, post = body[:len(body)-1], "$"
		}
		rx = pre + "(" + body + ")" + post
	}
	t := &template{name: orig, kind: kindRegex, group: 1}
	if boundBegin {
		if lineStart {
			rx = `^(?:\W{0,2})?` + rx
			t.lineBegin = true
			if !strings.HasPrefix(t.name, "{^LN-BEG}") {
				t.name = "{^LN-BEG}" + t.name
			}
		} else {
			t.wordBegin = true
		}
	}
	t.wordEnd = boundEnd
	if !t.lineBegin && reLineBeg.MatchString(rx) {
		t.lineBegin = true
	}
	if reLineEnd.MatchString(rx) && !strings.HasSuffix(rx, `\$`) {
		t.lineBegin = true // LINE_END: also tried alone, like an anchored one
	}
	rx = strings.ReplaceAll(rx, "**", "")
	goRx, err := pythonToGo(rx)
	if err != nil {
		return nil, fmt.Errorf("datepattern %q: %w", orig, err)
	}
	if ci {
		goRx = "(?i)" + goRx
	}
	re, err := regexp.Compile(goRx)
	if err != nil {
		return nil, fmt.Errorf("datepattern %q: %v", orig, err)
	}
	t.re = re
	t.names = re.SubexpNames()
	return t, nil
}

// hasPlainGroup reports whether rx has a capturing group without a name
// (fail2ban's RE_GROUPED).
func hasPlainGroup(rx string) bool {
	for i := 0; i < len(rx); i++ {
		switch rx[i] {
		case '\\':
			i++
		case '(':
			if i+1 >= len(rx) || rx[i+1] != '?' {
				return true
			}
		}
	}
	return false
}

// pythonToGo converts the little Python syntax date templates use:
// named-group backreferences to a set of separators are expanded into an
// alternation, and (?P=...) left anywhere else is an error.
func pythonToGo(rx string) (string, error) {
	for strings.Contains(rx, "(?P=") {
		out, ok := expandSepBackref(rx)
		if !ok {
			return "", fmt.Errorf("backreference in %q cannot be expanded for RE2", rx)
		}
		rx = out
	}
	if strings.Contains(rx, "(?<") || strings.Contains(rx, "(?=") || strings.Contains(rx, "(?!") || strings.Contains(rx, "(?(") {
		return "", fmt.Errorf("lookaround or conditional in %q: RE2 has none", rx)
	}
	return rx, nil
}

var sepGroup = regexp.MustCompile(`\(\?P<(\w+)>\[([^\]\\]+)\]\)`)

// expandSepBackref rewrites X(?P<s>[ab])Y(?P=s)Z as
// X(?:(?P<s>a)Ya|(?P<s>b)Yb)Z, which matches exactly the same.
func expandSepBackref(rx string) (string, bool) {
	m := sepGroup.FindStringSubmatchIndex(rx)
	if m == nil {
		return "", false
	}
	name := rx[m[2]:m[3]]
	chars := rx[m[4]:m[5]]
	ref := "(?P=" + name + ")"
	at := strings.Index(rx[m[1]:], ref)
	if at < 0 {
		return "", false
	}
	at += m[1]
	mid := rx[m[1]:at]
	if topAlternation(mid) || depth(mid) != 0 {
		return "", false
	}
	var b strings.Builder
	b.WriteString(rx[:m[0]])
	b.WriteString("(?:")
	for i, c := range chars {
		if i > 0 {
			b.WriteByte('|')
		}
		q := regexp.QuoteMeta(string(c))
		b.WriteString("(?P<" + name + ">" + q + ")" + mid + q)
	}
	b.WriteString(")")
	b.WriteString(rx[at+len(ref):])
	return b.String(), true
}

// topAlternation reports a "|" outside every group of s.
func topAlternation(s string) bool {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			d++
		case ')':
			d--
		case '|':
			if d == 0 {
				return true
			}
		}
	}
	return false
}

func depth(s string) int {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			d++
		case ')':
			d--
		}
	}
	return d
}

// Match is a date found in a line.
type Match struct {
	Start, End int       // the date text, cut out of the line by fail2ban
	Time       time.Time // zero when the text does not make a valid date
	Template   string
	found      bool
}

// Found reports whether a date was found (possibly empty, for templates
// such as {NONE} or an optional group).
func (m Match) Found() bool { return m.found }

// Cut returns the line without the date text, as fail2ban's filters see it.
func (m Match) Cut(line string) string {
	if !m.found || m.Start >= m.End {
		return line
	}
	return line[:m.Start] + line[m.End:]
}

// Find looks for a date as a fresh fail2ban DateDetector does: the first
// template that matches at the line's start (or is anchored), otherwise
// the match nearest the start.
func (d *Detector) Find(line string) Match {
	var s Session
	s.d = d
	s.last = -1
	return s.Find(line)
}

// Session is a Detector with fail2ban's memory of the last template that
// matched: lines of one log usually share a format, and the template that
// matched the previous line is preferred. Not safe for concurrent use.
type Session struct {
	d       *Detector
	last    int
	lastPos int
}

// Session returns a new stateful finder.
func (d *Detector) Session() *Session { return &Session{d: d, last: -1, lastPos: 1} }

// Find finds the date in line.
func (s *Session) Find(line string) Match {
	d := s.d
	if len(d.templates) == 0 {
		return Match{}
	}
	lastPos := s.lastPos
	if s.last < 0 {
		lastPos = 1
	}
	type cand struct {
		i          int
		start, end int
		groups     []int
	}
	best := cand{i: -1, start: 1 << 30}
	skip := -1
	if s.last >= 0 && s.last < len(d.templates) {
		t := d.templates[s.last]
		if g := t.match(line); g != nil {
			if t.lineBegin || len(d.templates) == 1 || g[0] == lastPos {
				return s.accept(s.last, line, g)
			}
			best = cand{s.last, g[0], g[1], g}
		}
		skip = s.last
	}
	for i, t := range d.templates {
		if i == skip {
			continue
		}
		g := t.match(line)
		if g == nil {
			continue
		}
		if i+1 >= len(d.templates) || t.lineBegin {
			return s.accept(i, line, g)
		}
		if g[0] > lastPos {
			if g[0] < best.start {
				best = cand{i, g[0], g[1], g}
			}
			continue
		}
		return s.accept(i, line, g)
	}
	if best.i >= 0 {
		return s.accept(best.i, line, best.groups)
	}
	return Match{}
}

func (s *Session) accept(i int, line string, g []int) Match {
	t := s.d.templates[i]
	s.last = i
	s.lastPos = g[0]
	m := Match{Template: t.name, found: true}
	gi := t.group
	if t.kind == kindEpoch || t.kind == kindLineEpoch {
		gi = 1
	}
	if t.kind == kindNone {
		return m
	}
	if 2*gi+1 < len(g) && g[2*gi] >= 0 {
		m.Start, m.End = g[2*gi], g[2*gi+1]
	} else {
		m.Start, m.End = g[0], g[0]
	}
	if m.Start < m.End {
		m.Time = s.d.parse(t, line, g)
	}
	return m
}

// match returns the submatch indexes of t in line, nil if none.
func (t *template) match(line string) []int {
	switch t.kind {
	case kindNone:
		return []int{0, 0}
	case kindEpoch:
		return matchEpoch(line, false)
	case kindLineEpoch:
		return matchEpoch(line, true)
	}
	if t.lineBegin || !t.wordBegin {
		g := t.re.FindStringSubmatchIndex(line)
		if g == nil || (t.wordEnd && !wordEndAt(line, g[1])) {
			return nil
		}
		return g
	}
	for pos, n := 0, 0; pos <= len(line) && n < 64; n++ {
		g := t.re.FindStringSubmatchIndex(line[pos:])
		if g == nil {
			return nil
		}
		for k := range g {
			if g[k] >= 0 {
				g[k] += pos
			}
		}
		if wordBeginAt(line, g[0]) && (!t.wordEnd || wordEndAt(line, g[1])) {
			return g
		}
		_, size := utf8.DecodeRuneInString(line[g[0]:])
		if size == 0 {
			size = 1
		}
		pos = g[0] + size
	}
	return nil
}

var epochNum = regexp.MustCompile(`^\d{10,11}\b(?:\.\d{3,6})?`)

// matchEpoch is fail2ban's DateEpoch: seconds since 1970 at the line's
// start (after at most two non-word characters for the anchored form),
// just inside a leading "[", or in an audit record's "audit(" — written
// out because its lookbehinds are not RE2. fail2ban's conditionals that
// look for the closing "]" or ":n)" never constrain the match (an empty
// alternative or backtracking always satisfies them), so none are checked.
func matchEpoch(line string, lineBegin bool) []int {
	try := func(at int) []int {
		m := epochNum.FindStringIndex(line[at:])
		if m == nil {
			return nil
		}
		end := at + m[1]
		if !wordEndAt(line, end) {
			return nil
		}
		return []int{at, end, at, end}
	}
	if lineBegin {
		for skip := 0; skip <= 2 && skip <= len(line); skip++ {
			if skip > 0 {
				r, _ := utf8.DecodeRuneInString(line[skip-1:])
				if isWord(r) {
					break
				}
			}
			if g := try(skip); g != nil {
				return g
			}
		}
		return nil
	}
	if g := try(0); g != nil {
		return g
	}
	if strings.HasPrefix(line, "[") {
		if g := try(1); g != nil {
			return g
		}
	}
	for off := 0; off < len(line); {
		i := strings.Index(line[off:], "audit(")
		if i < 0 {
			break
		}
		i += off
		if i == 0 || !isWordByteAt(line, i-1) {
			if g := try(i + len("audit(")); g != nil {
				return g
			}
		}
		off = i + 1
	}
	return nil
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func isWordByteAt(s string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:i+1])
	return isWord(r)
}

// wordBeginAt is (?=^|\b|\W) at i.
func wordBeginAt(s string, i int) bool {
	if i == 0 {
		return true
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	if i >= len(s) {
		return isWord(prev) // \b at the end after a word character
	}
	next, _ := utf8.DecodeRuneInString(s[i:])
	return !isWord(next) || !isWord(prev)
}

// wordEndAt is (?=\b|\W|$) at i.
func wordEndAt(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	next, _ := utf8.DecodeRuneInString(s[i:])
	if !isWord(next) {
		return true
	}
	if i == 0 {
		return true // \b before a word character at the start
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isWord(prev)
}

var monthAbbr = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

// parse is fail2ban's reGroupDictStrptime over the template's groups.
func (d *Detector) parse(t *template, line string, g []int) time.Time {
	if t.kind == kindEpoch || t.kind == kindLineEpoch {
		v, err := strconv.ParseFloat(line[g[2]:g[3]], 64)
		if err != nil {
			return time.Time{}
		}
		sec := int64(v)
		return time.Unix(sec, int64((v-float64(sec))*1e9)).In(d.loc)
	}
	if t.tai64n {
		txt := line[g[2]:g[3]]
		if len(txt) < 17 {
			return time.Time{}
		}
		sec, err := strconv.ParseInt(txt[2:17], 16, 64)
		if err != nil {
			return time.Time{}
		}
		return time.Unix(sec, 0).In(d.loc)
	}
	get := func(name string) (string, bool) {
		for i, n := range t.names {
			if n == name && g[2*i] >= 0 {
				return line[g[2*i]:g[2*i+1]], true
			}
		}
		return "", false
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }
	now := d.now().In(d.loc)
	year, month, day := 0, time.Month(0), 0
	hour, minute, sec, nsec := 0, 0, 0, 0
	assumeYear := false
	if v, ok := get("Y"); ok {
		year = atoi(v)
	} else if v, ok := get("y"); ok {
		year = atoi(v)
		if year <= 2000 {
			year += 2000
		}
	} else {
		year = now.Year()
		assumeYear = true
	}
	if v, ok := get("m"); ok {
		month = time.Month(atoi(v))
	} else if v, ok := get("b"); ok {
		month = monthAbbr[strings.ToLower(v)]
	} else if v, ok := get("B"); ok {
		month = monthAbbr[strings.ToLower(v)[:3]]
	}
	if v, ok := get("d"); ok {
		day = atoi(v)
	}
	if v, ok := get("H"); ok {
		hour = atoi(v)
	} else if v, ok := get("I"); ok {
		hour = atoi(v)
		p, _ := get("p")
		switch strings.ToLower(p) {
		case "", "am":
			if hour == 12 {
				hour = 0
			}
		case "pm":
			if hour != 12 {
				hour += 12
			}
		}
	}
	if v, ok := get("M"); ok {
		minute = atoi(v)
	}
	if v, ok := get("S"); ok {
		sec = atoi(v)
	}
	if v, ok := get("f"); ok {
		v += strings.Repeat("0", 9-len(v))
		nsec = atoi(v)
	}
	if v, ok := get("j"); ok && (month == 0 || day == 0) {
		jd := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, atoi(v)-1)
		month, day = jd.Month(), jd.Day()
	}
	assumeToday := false
	if month == 0 && day == 0 {
		month, day = now.Month(), now.Day()
		assumeToday = true
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 61 {
		return time.Time{}
	}
	loc := d.loc
	for _, z := range []string{"z", "Z"} {
		if v, ok := get(z); ok {
			if off, ok := zoneOffset(v); ok {
				loc = time.FixedZone(v, off)
			}
			break
		}
	}
	if sec > 59 {
		sec = 59 // a leap second: Python's datetime refuses 60 and 61 as well
	}
	tm := time.Date(year, month, day, hour, minute, sec, nsec, loc)
	if tm.Day() != day {
		return time.Time{} // Feb 30: Python's datetime refuses it
	}
	if assumeToday && tm.After(now) {
		tm = tm.AddDate(0, 0, -1)
	}
	if assumeYear && tm.After(now.Add(24*time.Hour)) {
		tm = time.Date(year-1, month, day, hour, minute, sec, nsec, loc)
	}
	return tm
}

// zoneOffset reads what fail2ban's zone2offset does: an abbreviation from
// its table, optionally followed by an offset ([+-]hh, [+-]hhmm,
// [+-]hh:mm), or an offset alone.
func zoneOffset(z string) (int, bool) {
	i := strings.IndexAny(z, "+-")
	abbr, o := z, ""
	if i >= 0 {
		abbr, o = z[:i], z[i:]
	}
	base, ok := 0, true
	if abbr != "" {
		base, ok = zoneOffsets[abbr]
		if !ok {
			return 0, false
		}
	}
	if o == "" {
		return base, true
	}
	sign := 1
	if o[0] == '-' {
		sign = -1
	}
	digits := strings.ReplaceAll(o[1:], ":", "")
	if len(digits) != 2 && len(digits) != 4 {
		return 0, false
	}
	h, err := strconv.Atoi(digits[:2])
	if err != nil {
		return 0, false
	}
	m := 0
	if len(digits) == 4 {
		if m, err = strconv.Atoi(digits[2:]); err != nil {
			return 0, false
		}
	}
	return base + sign*(h*3600+m*60), true
}

// zoneAbbrs is fail2ban's TZ_STR: zone abbreviations as fixed offsets in
// hours (no daylight-saving switch, as in fail2ban).
const zoneAbbrs = `-12 Y
-11 X NUT SST
-10 W CKT HAST HST TAHT TKT
-9 V AKST GAMT GIT HADT HNY
-8 U AKDT CIST HAY HNP PST PT
-7 T HAP HNR MST PDT
-6 S CST EAST GALT HAR HNC MDT
-5 R CDT COT EASST ECT EST ET HAC HNE PET
-4 Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT
-3 P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT
-2 O BRST FNT PMDT UYST WGST
-1 N AZOT CVT EGT
0 Z EGST GMT UTC WET WT
1 A CET DFT WAT WEDT WEST
2 B CAT CEDT CEST EET SAST WAST
3 C EAT EEDT EEST IDT MSK
4 D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT
5 E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT
6 F ALMT BIOT BTT IOT KGT NOVT OMST YEKST
7 G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB
8 H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST
9 I AWDT IRKST JST KST PWT TLT WDT WIT YAKT
10 K AEST ChST PGT VLAT YAKST YAPT
11 L AEDT LHDT MAGT NCT PONT SBT VLAST VUT
12 M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT
13 FJST NZDT
11.5 NFT
10.5 ACDT LHST
9.5 ACST
6.5 CCT MMT
5.75 NPT
5.5 SLT
4.5 AFT IRDT
3.5 IRST
-2.5 HAT NDT
-3.5 HNT NST NT
-4.5 HLV VET
-9.5 MART MIT`

// zoneOffsets maps each abbreviation to its offset in seconds.
var zoneOffsets = func() map[string]int {
	m := map[string]int{}
	for _, l := range strings.Split(zoneAbbrs, "\n") {
		f := strings.Fields(l)
		h, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			panic("datedetect: zone table: " + l)
		}
		for _, z := range f[1:] {
			m[z] = int(h * 3600)
		}
	}
	return m
}()

// WithOptions returns a copy of d that reads zone-less dates in o.Location
// and completes dates without a year or day from o.Now (nil fields keep
// d's).
func (d *Detector) WithOptions(o Options) *Detector {
	c := *d
	if o.Location != nil {
		c.loc = o.Location
	}
	if o.Now != nil {
		c.now = o.Now
	}
	return &c
}

// Templates lists the templates' names, in the order they are tried.
func (d *Detector) Templates() []string {
	out := make([]string, len(d.templates))
	for i, t := range d.templates {
		out[i] = t.name
	}
	return out
}
