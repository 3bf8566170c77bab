package fail2ban

import (
	"net/netip"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/fail2ban/datedetect"
)

// Failure is what a filter found in a line: fail2ban's failure tuple.
type Failure struct {
	Regex int       // index of the failregex that matched
	ID    string    // fail2ban's failure id: <F-ID> if the regex has one, else the host
	Host  string    // the host as written: an address (ip4/ip6) or a name (dns); "" if none
	User  string    // <F-USER> (or <F-ALT_USER>)
	Time  time.Time // the line's date; zero when it has none
	// NoFail marks a match that is not a failure (<F-NOFAIL>), or a
	// multi-line failure still waiting for its host (Pending).
	NoFail  bool
	Pending bool
	Groups  map[string]string // every named group that took part
}

// Addr returns the failure's address: the host when it is one, else the
// id when that is one.
func (f *Failure) Addr() (netip.Addr, bool) {
	for _, s := range [...]string{f.Host, f.ID} {
		if a, ok := parseAddr(s); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Event fills ev from the failure: Source when the host is an address,
// SourceName when it is a name (never resolved), the user, the time, the
// filter's name as the service; rule_match, or info for a NoFail match.
func (f *Failure) Event(filter string, ev *phalanx.Event) {
	ev.Reset()
	ev.Time = f.Time
	ev.Service = phalanx.Service(filter)
	ev.User = f.User
	ev.Kind = phalanx.KindRuleMatch
	if f.NoFail || f.Pending {
		ev.Kind = phalanx.KindInfo
	}
	if a, ok := f.Addr(); ok {
		ev.Source = a
	} else if f.Host != "" {
		ev.SourceName = f.Host
	} else {
		ev.SourceName = f.ID
	}
}

// tupleLine is fail2ban's (before the date, the date, after the date).
type tupleLine [3]string

func (t tupleLine) text() string { return t[0] + t[2] }

func joinBuf(lines []tupleLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text())
		b.WriteByte('\n')
	}
	return b.String()
}

// Matcher runs a filter over the lines of one log, in order, with the
// state fail2ban keeps between lines: the date template that matched last,
// the multi-line buffer (maxlines), the last date for lines without one,
// and the multi-line failure cache (<F-MLFID>, bounded). Not safe for
// concurrent use; use one Matcher per log.
type Matcher struct {
	f        *Filter
	dates    *datedetect.Session
	buf      []tupleLine
	lastDate time.Time
	lastText string
	mlfid    *mlfidCache
	// CheckAll makes every failregex be tried on a line, as fail2ban's
	// test suite and fail2ban-regex do; by default the first that matches
	// wins, as in a running fail2ban.
	CheckAll bool
}

// NewMatcher returns a Matcher for f.
func (f *Filter) NewMatcher() *Matcher {
	return &Matcher{f: f, dates: f.dates.Session(), mlfid: newMLFIDCache(mlfidCacheSize)}
}

// Line runs the filter over one line and returns what it found (nil for
// no match): failures, and with CheckAll also NoFail and Pending matches.
func (m *Matcher) Line(line string) []Failure {
	var tl tupleLine
	var date time.Time
	dm := m.dates.Find(line)
	if dm.Found() {
		tl = tupleLine{line[:dm.Start], line[dm.Start:dm.End], line[dm.End:]}
		if dm.Start < dm.End {
			date = dm.Time
			if !date.IsZero() {
				m.lastText, m.lastDate = tl[1], date
			}
		} else if !m.lastDate.IsZero() {
			tl = tupleLine{"", m.lastText, line}
			date = m.lastDate
		}
	} else {
		tl = tupleLine{"", "", line}
	}
	if date.IsZero() && !m.lastDate.IsZero() {
		tl = tupleLine{"", m.lastText, line}
		date = m.lastDate
	}
	return m.find(tl, date)
}

// LineAt is Line for a record whose time the source already knows
// (journald): no date is looked for, the whole line is the message.
func (m *Matcher) LineAt(line string, at time.Time) []Failure {
	m.lastText, m.lastDate = "", at
	return m.find(tupleLine{"", "", line}, at)
}

// Reset forgets the state kept between lines.
func (m *Matcher) Reset() {
	*m = Matcher{f: m.f, dates: m.f.dates.Session(), mlfid: newMLFIDCache(mlfidCacheSize), CheckAll: m.CheckAll}
}

// match is one expression's match over a buffer.
type exprMatch struct {
	groups     map[string]string
	present    map[string]bool // names of all groups the expression has
	start, end int             // byte offsets of the whole match
}

// search runs e over buf (which ends with "\n").
func (e *Expr) search(buf string) (exprMatch, bool) {
	switch e.Engine {
	case EngineRE2:
		idx := e.re.FindStringSubmatchIndex(buf)
		if idx == nil {
			return exprMatch{}, false
		}
		m := exprMatch{groups: map[string]string{}, present: map[string]bool{}, start: idx[0], end: idx[1]}
		for i, n := range e.names {
			if n == "" {
				continue
			}
			m.present[n] = true
			if idx[2*i] < 0 {
				continue
			}
			if _, dup := m.groups[n]; !dup {
				m.groups[n] = buf[idx[2*i]:idx[2*i+1]]
			}
		}
		return m, true
	case EngineBacktracking:
		r, err := e.bt.FindStringMatch(buf)
		if err != nil || r == nil {
			// A timeout counts as no match: the line is given up on.
			return exprMatch{}, false
		}
		s, l := r.ByteRange()
		m := exprMatch{groups: map[string]string{}, present: map[string]bool{}, start: s, end: s + l}
		for _, g := range r.Groups() {
			if g.Name == "" || g.Name[0] >= '0' && g.Name[0] <= '9' {
				continue
			}
			m.present[g.Name] = true
			if len(g.Captures) == 0 {
				continue
			}
			m.groups[g.Name] = g.String()
		}
		return m, true
	}
	return exprMatch{}, false
}

// withAlt applies fail2ban's alt_ groups: alt_user fills user when user
// is empty.
func withAlt(m exprMatch) map[string]string {
	for k, v := range m.groups {
		if len(k) > 4 && strings.HasPrefix(k, "alt_") && v != "" {
			n := strings.TrimPrefix(k, "alt_")
			if i := strings.LastIndexByte(n, '_'); i > 0 && allDigits(n[i+1:]) {
				n = n[:i]
			}
			n = groupName(n)
			if m.groups[n] == "" {
				m.groups[n] = v
			}
		}
	}
	return m.groups
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// failData is fail2ban's failure dict, kept across lines for <F-MLFID>.
type failData struct {
	g       map[string]string
	users   map[string]bool
	pending bool
}

// find is fail2ban's Filter.findFailure.
func (m *Matcher) find(tl tupleLine, date time.Time) []Failure {
	f := m.f
	var org []tupleLine
	if f.MaxLines > 1 {
		m.buf = append(m.buf, tl)
		if len(m.buf) > f.MaxLines {
			m.buf = append(m.buf[:0], m.buf[len(m.buf)-f.MaxLines:]...)
		}
		org = m.buf
	} else {
		org = []tupleLine{tl}
		m.buf = org
	}
	buf := joinBuf(org)
	if len(f.Ignoreregex) > 0 && len(f.Ignoreregex) < len(f.Failregex)-2 {
		if m.ignored(buf, org, nil) {
			return nil
		}
	}
	var pre map[string]string
	if f.Prefregex != nil {
		pm, ok := f.Prefregex.search(buf)
		if !ok {
			return nil
		}
		pre = withAlt(pm)
		content, had := pre["content"]
		delete(pre, "content")
		if had && content != "" {
			m.buf = []tupleLine{{"", "", content}}
			buf = ""
		}
	}
	var out []Failure
	for i, fr := range f.Failregex {
		if buf == "" {
			buf = joinBuf(m.buf)
		}
		cur := m.buf
		fm, ok := fr.search(buf)
		if !ok {
			continue
		}
		groups := withAlt(fm)
		if len(f.Ignoreregex) > 0 && m.ignored(buf, cur, &fm) {
			buf = ""
			if !m.CheckAll {
				break
			}
			continue
		}
		if !m.CheckAll || f.MaxLines > 1 {
			m.buf = unmatched(cur, buf, fm, groups)
			buf = ""
		}
		fail := &failData{g: map[string]string{}}
		for k, v := range pre {
			fail.g[k] = v
		}
		for n := range fm.present {
			if v, ok := groups[n]; ok {
				fail.g[n] = v
			} else {
				delete(fail.g, n)
			}
		}
		for k, v := range groups { // alt_ fills
			if _, ok := fail.g[k]; !ok {
				fail.g[k] = v
			}
		}
		mlfid, hasMLFID := fail.g["mlfid"]
		if hasMLFID {
			fail = m.mergeFailure(mlfid, fail)
			if fail.g["nofail"] != "" && !m.CheckAll {
				return out
			}
		}
		fid, hasFid := fail.g["fid"]
		var host string
		var hasHost bool
		for _, k := range [...]string{"ip4", "ip6", "dns"} {
			if v, ok := fail.g[k]; ok {
				host, hasHost = v, true
				break
			}
		}
		if !hasHost && !hasFid && !hasMLFID {
			// fail2ban raises "No group found" and skips the match.
			continue
		}
		res := Failure{Regex: i, Time: date, User: fail.g["user"], Host: host, NoFail: fail.g["nofail"] != ""}
		switch {
		case hasHost:
			res.ID = host
			if a, ok := parseAddr(host); ok && !strings.HasPrefix(host, "[") {
				res.ID = a.String() // fail2ban's IPAddr prints addresses canonically
			}
			if hasFid && fid != host {
				res.ID = fid
			}
		case hasFid:
			res.ID = fid
		default:
			fail.pending = true
			res.Pending = true
			if !m.CheckAll {
				return out
			}
		}
		if res.ID == "" && !res.Pending {
			// An id group that matched nothing (<F-ID></F-ID>): a failure
			// of nobody, which no decision could be about.
			continue
		}
		res.Groups = make(map[string]string, len(fail.g))
		for k, v := range fail.g {
			res.Groups[k] = v
		}
		out = append(out, res)
		if !m.CheckAll {
			break
		}
	}
	return out
}

// ignored reports whether an ignoreregex matches: the whole buffer, or in
// multi-line mode only the lines the failregex matched (fail2ban's
// _ignoreLine). A match also drops the failregex's lines from the buffer.
func (m *Matcher) ignored(buf string, org []tupleLine, fm *exprMatch) bool {
	if fm != nil && m.f.MaxLines > 1 {
		lo, hi := lineSpan(buf, fm.start, fm.end)
		if hi > len(org) {
			hi = len(org)
		}
		if lo > hi {
			lo = hi
		}
		buf = joinBuf(org[lo:hi])
	}
	hit := false
	for _, ir := range m.f.Ignoreregex {
		if _, ok := ir.search(buf); ok {
			hit = true
			if (!m.CheckAll || m.f.MaxLines > 1) && fm != nil {
				m.buf = unmatched(org, joinBuf(org), *fm, nil)
			}
			if !m.CheckAll {
				break
			}
		}
	}
	return hit
}

// lineSpan returns the indexes of the first line and one past the last
// line the byte range [start, end) touches in buf.
func lineSpan(buf string, start, end int) (int, int) {
	ls := strings.LastIndexByte(buf[:minInt(start+1, len(buf))], '\n')
	lineStart := 0
	if ls >= 0 && ls < start {
		lineStart = ls + 1
	} else if ls >= 0 {
		lineStart = strings.LastIndexByte(buf[:start], '\n') + 1
	}
	e := end - 1
	if e < 0 {
		e = 0
	}
	lineEnd := len(buf)
	if i := strings.IndexByte(buf[minInt(e, len(buf)):], '\n'); i >= 0 {
		lineEnd = minInt(e, len(buf)) + i + 1
	}
	return strings.Count(buf[:lineStart], "\n"), strings.Count(buf[:lineEnd], "\n")
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// unmatched is fail2ban's getUnmatchedTupleLines: the buffer without the
// lines the match covered, except those a <SKIPLINES> skipped.
func unmatched(org []tupleLine, buf string, fm exprMatch, groups map[string]string) []tupleLine {
	if len(org) <= 1 {
		return nil
	}
	lo, hi := lineSpan(buf, fm.start, fm.end)
	if hi > len(org) {
		hi = len(org)
	}
	if lo > hi {
		lo = hi
	}
	var skipped []string
	for k, v := range fm.groups {
		if strings.HasPrefix(k, "skiplines") {
			skipped = append(skipped, strings.Split(strings.TrimSuffix(v, "\n"), "\n")...)
		}
	}
	out := append([]tupleLine(nil), org[:lo]...)
	matched := append([]tupleLine(nil), org[lo:hi]...)
	for _, s := range skipped {
		for j, ml := range matched {
			if ml.text() == s {
				out = append(out, ml)
				matched = append(matched[:j], matched[j+1:]...)
				break
			}
		}
	}
	return append(out, org[hi:]...)
}

// mergeFailure is fail2ban's _mergeFailure: lines of one connection
// (same <F-MLFID>) are merged, so that a later line can supply the host
// of an earlier failure, or a later success (<F-NOFAIL>, <F-MLFGAINED>)
// can cancel it.
func (m *Matcher) mergeFailure(mlfid string, fail *failData) *failData {
	cached := m.mlfid.get(mlfid)
	var users map[string]bool
	flags := 0
	if fail.g["mlfgained"] != "" {
		flags |= 8 | 1
		if fail.g["nofail"] == "" {
			fail.g["nofail"] = fail.g["mlfgained"]
		}
	} else if fail.g["nofail"] != "" {
		flags |= 1
	}
	if v, ok := fail.g["mlfforget"]; ok {
		delete(fail.g, "mlfforget")
		if v != "" {
			flags |= 2
		}
	}
	if cached != nil {
		users = updateUsers(cached, fail.g["user"])
		if v, ok := cached.g["nofail"]; ok {
			delete(cached.g, "nofail")
			if v != "" {
				flags |= 4
			}
		}
		if v, ok := cached.g["mlfgained"]; ok {
			delete(cached.g, "mlfgained")
			if v != "" {
				flags |= 4
			}
		}
		if flags&8 != 0 {
			cached.pending = false
		}
		for k, v := range fail.g {
			cached.g[k] = v
		}
		fail = cached
		if flags&2 != 0 {
			m.mlfid.unset(mlfid)
		}
	} else if flags&2 == 0 {
		users = updateUsers(fail, fail.g["user"])
		m.mlfid.set(mlfid, fail)
	}
	if fail.pending || len(users) > 1 {
		fail.pending = false
		delete(fail.g, "nofail")
		delete(fail.g, "mlfgained")
	}
	return fail
}

func updateUsers(d *failData, user string) map[string]bool {
	if user != "" {
		if d.users == nil {
			d.users = map[string]bool{}
		}
		d.users[user] = true
	}
	return d.users
}

// mlfidCacheSize is fail2ban's: 100 connections at most.
const mlfidCacheSize = 100

// mlfidCache is a bounded map of connection id to failure, oldest first
// out (the key is attacker-controlled text).
type mlfidCache struct {
	max   int
	m     map[string]*failData
	order []string
}

func newMLFIDCache(max int) *mlfidCache {
	return &mlfidCache{max: max, m: map[string]*failData{}}
}

func (c *mlfidCache) get(k string) *failData { return c.m[k] }

func (c *mlfidCache) set(k string, v *failData) {
	if _, ok := c.m[k]; !ok {
		c.order = append(c.order, k)
	}
	c.m[k] = v
	for len(c.m) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		delete(c.m, old)
	}
	if len(c.order) > 4*c.max {
		// drop keys already unset
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

func (c *mlfidCache) unset(k string) { delete(c.m, k) }
