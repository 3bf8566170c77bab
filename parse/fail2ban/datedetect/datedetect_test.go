package datedetect

import (
	"testing"
	"time"
)

// testNow is fail2ban's TEST_NOW; the expectations below are what
// fail2ban 1.0.2's DateDetector (default templates, TZ=UTC) finds.
var testNow = time.Unix(1124013600, 0)

func TestDefaultTemplates(t *testing.T) {
	d, errs := New("", Options{Location: time.UTC, Now: func() time.Time { return testNow }})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		line       string
		start, end int
		unix       float64 // 0: no date
	}{
		{"Jun 21 16:47:48 host sshd[1]: Failed password", 0, 15, 1119372468},
		{"2024-03-01T10:11:12.123+01:00 host app: x", 0, 29, 1709284272.123},
		{"[Sun Aug 14 12:00:00 2005] [error] x", 1, 25, 1124020800},
		{`192.0.2.1 - - [14/Aug/2005:11:12:13 +0200] "GET / HTTP/1.1" 200`, 15, 41, 1124010733},
		{"@4000000054b2c9e70e2a6e14 x", 0, 25, 1421003239},
		{"1419001234.123 x", 0, 14, 1419001234.123},
		{"[1419001234] x", 1, 11, 1419001234},
		{"type=AVC msg=audit(1419001234.111:22): x", 19, 33, 1419001234.111},
		{"no date here 12:00", -1, -1, 0},
		{"2005/08/14 10:00:00 y", 0, 19, 1124013600},
		{"14-08-2005 10:00:01 z", 0, 19, 1124013601},
		{"Aug 14, 2005 1:02:03 PM x", 0, 23, 1124024523},
		{"050814 10:00:02 mysqld", 0, 15, 1124013602},
		{"20050814T100003Z x", 0, 16, 1124013603},
		{"CEST Aug 14 10:00:04 x", 0, 20, 1124006404},
	}
	for _, tt := range tests {
		m := d.Find(tt.line)
		if tt.start < 0 {
			if m.Found() {
				t.Errorf("%q: found %q", tt.line, tt.line[m.Start:m.End])
			}
			continue
		}
		if !m.Found() || m.Start != tt.start || m.End != tt.end {
			t.Errorf("%q: found=%v [%d,%d), want [%d,%d)", tt.line, m.Found(), m.Start, m.End, tt.start, tt.end)
			continue
		}
		got := float64(m.Time.UnixNano()) / 1e9
		if d := got - tt.unix; d > 0.001 || d < -0.001 {
			t.Errorf("%q: time %v (%.3f), want %.3f (template %s)", tt.line, m.Time, got, tt.unix, m.Template)
		}
		if cut := m.Cut(tt.line); len(cut) != len(tt.line)-(tt.end-tt.start) {
			t.Errorf("%q: cut %q", tt.line, cut)
		}
	}
}

func TestPatterns(t *testing.T) {
	opts := Options{Location: time.UTC, Now: func() time.Time { return testNow }}
	tests := []struct {
		pattern, line, date string // date "" : none found
	}{
		{"^%Y-%m-%d %H:%M:%S", "2005-08-14 10:00:00 x", "2005-08-14 10:00:00"},
		{"^%Y-%m-%d %H:%M:%S", "x 2005-08-14 10:00:00", ""},
		{"{^LN-BEG}", "x 2005-08-14 10:00:00", ""},
		{"{^LN-BEG}", "[2005-08-14 10:00:00] x", "2005-08-14 10:00:00"},
		{`^[^\[]*\[({DATE})`, "host - [14/Aug/2005:11:12:13 +0200] x", "14/Aug/2005:11:12:13 +0200"},
		{"^L %d/%m/%Y - %H:%M:%S", "L 14/08/2005 - 10:00:00: x", "L 14/08/2005 - 10:00:00"},
		{"{^LN-BEG}EPOCH", "1124013600 x", "1124013600"},
		{"%%%Y", "%2005 x", "%2005"},
	}
	for _, tt := range tests {
		d, errs := New(tt.pattern, opts)
		if len(errs) > 0 {
			t.Errorf("%q: %v", tt.pattern, errs)
			continue
		}
		m := d.Find(tt.line)
		got := ""
		if m.Found() {
			got = tt.line[m.Start:m.End]
		}
		if got != tt.date {
			t.Errorf("%q on %q: %q, want %q", tt.pattern, tt.line, got, tt.date)
		}
	}
	for _, bad := range []string{"%Q", "100%", "({DATE}", "x{EPOCH}"} {
		if _, errs := New(bad, opts); len(errs) == 0 {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzFind(f *testing.F) {
	d, _ := New("", Options{Location: time.UTC, Now: func() time.Time { return testNow }})
	for _, s := range []string{"Jun 21 16:47:48 x", "[1419001234] x", "audit(1.2:3)", "@4000000054b2c9e70e2a6e14", "\xff 2005-08-14 10:00:00", "Feb 30 10:00:00"} {
		f.Add(s)
	}
	s := d.Session()
	f.Fuzz(func(t *testing.T, line string) {
		for _, m := range []Match{d.Find(line), s.Find(line)} {
			if !m.Found() {
				continue
			}
			if m.Start < 0 || m.End > len(line) || m.Start > m.End {
				t.Fatalf("%q: bad span [%d,%d)", line, m.Start, m.End)
			}
			_ = m.Cut(line)
		}
	})
}
