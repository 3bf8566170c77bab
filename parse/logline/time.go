package logline

import (
	"time"
)

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// month parses a three-letter English month name, case-insensitively.
func month(s string) (time.Month, bool) {
	if len(s) < 3 {
		return 0, false
	}
	a, b, c := s[0]|0x20, s[1]|0x20, s[2]|0x20
	for i, m := range months {
		if a == m[0]|0x20 && b == m[1] && c == m[2] {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// num parses exactly len(s) digits.
func num(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, len(s) > 0
}

// clock parses "15:04:05" at the start of s.
func clock(s string) (h, m, sec int, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := num(s[0:2])
	m, ok2 := num(s[3:5])
	sec, ok3 := num(s[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, false
	}
	return h, m, sec, true
}

// fraction parses ".123456" or ",123" at the start of s into nanoseconds.
func fraction(s string) (ns int, n int) {
	if len(s) < 2 || (s[0] != '.' && s[0] != ',') || !isDigit(s[1]) {
		return 0, 0
	}
	i := 1
	scale := 100000000
	for i < len(s) && isDigit(s[i]) {
		if scale > 0 {
			ns += int(s[i]-'0') * scale
			scale /= 10
		}
		i++
	}
	return ns, i
}

// zone parses "Z", "+01:00", "+0100" or " +0100" at the start of s.
func zone(s string) (loc *time.Location, n int) {
	if len(s) == 0 {
		return nil, 0
	}
	if s[0] == 'Z' {
		return time.UTC, 1
	}
	if s[0] != '+' && s[0] != '-' {
		return nil, 0
	}
	var hh, mm int
	var ok1, ok2 bool
	switch {
	case len(s) >= 6 && s[3] == ':':
		hh, ok1 = num(s[1:3])
		mm, ok2 = num(s[4:6])
		n = 6
	case len(s) >= 5:
		hh, ok1 = num(s[1:3])
		mm, ok2 = num(s[3:5])
		n = 5
	default:
		return nil, 0
	}
	if !ok1 || !ok2 || hh > 14 || mm > 59 {
		return nil, 0
	}
	off := hh*3600 + mm*60
	if s[0] == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC, n
	}
	return fixedZone(off), n
}

// fixedZone caches zones by offset so that parsing allocates nothing after
// the first line with a given offset.
func fixedZone(off int) *time.Location {
	i := off/900 + 14*4
	if off%900 == 0 && i >= 0 && i < len(zoneCache) {
		if z := zoneCache[i]; z != nil {
			return z
		}
	}
	return time.FixedZone("", off)
}

var zoneCache = func() (c [14*4*2 + 1]*time.Location) {
	for i := range c {
		c[i] = time.FixedZone("", (i-14*4)*900)
	}
	return c
}()

// Time recognises a timestamp at the start of s and returns it with the
// number of bytes it took. Forms, all as they appear in real logs:
//
//	Jan  2 15:04:05[.000000]          BSD syslog, year from c
//	Jan  2 2006 15:04:05              BSD with a year
//	2006-01-02T15:04:05[.000][Z|±hh:mm] ISO 8601 / RFC 3339 (also with a space for T)
//	2006/01/02 15:04:05               nginx error log
//	02/Jan/2006:15:04:05 -0700        common log format, without brackets
//	Mon Jan  2 15:04:05[.000] 2006    Apache error log and ctime, without brackets
func Time(s string, c *Context) (t time.Time, n int, ok bool) {
	if len(s) < 14 {
		return time.Time{}, 0, false
	}
	switch {
	case isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) && (s[4] == '-' || s[4] == '/'):
		return isoTime(s, c)
	case isDigit(s[0]) && isDigit(s[1]) && s[2] == '/':
		return clfTime(s, c)
	case s[3] == ' ' && s[7] == ' ' && !isDigit(s[4]):
		// "Mon Jan  2 ..." — skip the day name.
		t, n, ok = bsdTime(s[4:], c, true)
		return t, n + 4, ok
	default:
		return bsdTime(s, c, false)
	}
}

func bsdTime(s string, c *Context, ctime bool) (time.Time, int, bool) {
	if len(s) < 15 || s[3] != ' ' {
		return time.Time{}, 0, false
	}
	mon, ok := month(s)
	if !ok {
		return time.Time{}, 0, false
	}
	var day int
	var i int
	switch {
	case s[4] == ' ' && isDigit(s[5]):
		day, i = int(s[5]-'0'), 6
	case isDigit(s[4]) && isDigit(s[5]):
		day, i = int(s[4]-'0')*10+int(s[5]-'0'), 6
	case isDigit(s[4]) && s[5] == ' ':
		day, i = int(s[4]-'0'), 5
	default:
		return time.Time{}, 0, false
	}
	if i >= len(s) || s[i] != ' ' || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	i++
	year := 0
	// "Jan  2 2006 15:04:05"
	if len(s) >= i+5 && s[i+4] == ' ' {
		if y, ok := num(s[i : i+4]); ok {
			year = y
			i += 5
		}
	}
	h, m, sec, ok := clock(s[i:])
	if !ok {
		return time.Time{}, 0, false
	}
	i += 8
	ns, fn := fraction(s[i:])
	i += fn
	if ctime && year == 0 && len(s) >= i+5 && s[i] == ' ' {
		if y, ok := num(s[i+1 : i+5]); ok {
			year = y
			i += 5
		}
	}
	key := bsdKey{year, int(mon), day, h, m, sec, ns}
	if c != nil && c.last.key == key && !c.last.t.IsZero() {
		return c.last.t, i, true
	}
	if year == 0 {
		year = c.year()
	}
	t := time.Date(year, mon, day, h, m, sec, ns, c.loc())
	// A yearless stamp more than a day ahead of now belongs to last year
	// (a December line read in January).
	if c != nil && c.Year == 0 {
		now := time.Now()
		if c.Now != nil {
			now = c.Now()
		}
		if t.After(now.Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
	}
	if c != nil {
		c.last.key, c.last.t = key, t
	}
	return t, i, true
}

func isoTime(s string, c *Context) (time.Time, int, bool) {
	// 2006-01-02T15:04:05 or 2006/01/02 15:04:05
	if len(s) < 19 || s[7] != s[4] || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, 0, false
	}
	y, ok1 := num(s[0:4])
	mo, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, 0, false
	}
	h, m, sec, ok := clock(s[11:])
	if !ok {
		return time.Time{}, 0, false
	}
	i := 19
	ns, fn := fraction(s[i:])
	i += fn
	loc, zn := zone(s[i:])
	i += zn
	if loc == nil {
		loc = c.loc()
	}
	return time.Date(y, time.Month(mo), d, h, m, sec, ns, loc), i, true
}

func clfTime(s string, c *Context) (time.Time, int, bool) {
	// 02/Jan/2006:15:04:05 -0700
	if len(s) < 20 || s[6] != '/' || s[11] != ':' {
		return time.Time{}, 0, false
	}
	d, ok1 := num(s[0:2])
	mon, ok2 := month(s[3:6])
	y, ok3 := num(s[7:11])
	if !ok1 || !ok2 || !ok3 || d < 1 || d > 31 {
		return time.Time{}, 0, false
	}
	h, m, sec, ok := clock(s[12:])
	if !ok {
		return time.Time{}, 0, false
	}
	i := 20
	ns, fn := fraction(s[i:])
	i += fn
	var loc *time.Location
	if len(s) > i+1 && s[i] == ' ' {
		if l, zn := zone(s[i+1:]); l != nil {
			loc, i = l, i+1+zn
		}
	}
	if loc == nil {
		loc = c.loc()
	}
	return time.Date(y, mon, d, h, m, sec, ns, loc), i, true
}
