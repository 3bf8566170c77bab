package fail2ban

import (
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// connFilter tracks connections as sshd's filter does: a failure line
// names no address, the connection's earlier lines do, and an accepted
// login cancels it. The expectations are what fail2ban 1.0.2 itself finds
// for the same filter and lines.
const connFilter = `[Definition]
prefregex = ^<F-MLFID>\s*\S+ app\[\d+\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$
failregex = ^auth failure for <F-USER>\S+</F-USER>$
            ^<F-NOFAIL>connect</F-NOFAIL> from <HOST>$
            ^<F-MLFFORGET><F-MLFGAINED>accepted</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>$
            ^<F-NOFAIL><F-MLFFORGET>closed</F-MLFFORGET></F-NOFAIL> by <HOST>$
            ^bad token from <HOST>$
ignoreregex = ^bad token from 192\.0\.2\.99$
`

func TestMatcherConnections(t *testing.T) {
	f, err := LoadFilterBytes([]byte(connFilter), "app", nil, LoadOptions{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	m := f.NewMatcher()
	steps := []struct {
		line string
		want string // the failure's address, "" for none
	}{
		// connection 1: its address, then a failure that names none: the
		// failure is the connection's address
		{"2024-03-01 10:00:00 h app[1]: connect from 192.0.2.1", ""},
		{"2024-03-01 10:00:01 h app[1]: auth failure for bob", "192.0.2.1"},
		{"2024-03-01 10:00:02 h app[1]: closed by 192.0.2.1", ""},
		// a failure on a connection not seen before: pending, no address
		{"2024-03-01 10:00:02 h app[9]: auth failure for dave", ""},
		// connection 2: a login that works: nothing
		{"2024-03-01 10:00:03 h app[2]: connect from 192.0.2.2", ""},
		{"2024-03-01 10:00:04 h app[2]: accepted for carol from 192.0.2.2", ""},
		{"2024-03-01 10:00:05 h app[2]: closed by 192.0.2.2", ""},
		// no connection tracking; the ignoreregex
		{"2024-03-01 10:00:06 h app[3]: bad token from 192.0.2.3", "192.0.2.3"},
		{"2024-03-01 10:00:07 h app[3]: bad token from 192.0.2.99", ""},
		// another program: the prefregex does not match
		{"2024-03-01 10:00:08 h other[3]: bad token from 192.0.2.4", ""},
	}
	for _, s := range steps {
		got := ""
		for _, r := range m.Line(s.line) {
			if !r.NoFail && !r.Pending {
				a, ok := r.Addr()
				if !ok {
					t.Errorf("%q: failure without an address: %+v", s.line, r)
				}
				got = a.String()
				var ev phalanx.Event
				r.Event("app", &ev)
				if ev.Source != a || ev.Service != "app" || ev.Kind != phalanx.KindRuleMatch || ev.Time.IsZero() {
					t.Errorf("%q: event %+v", s.line, ev)
				}
				break
			}
		}
		if got != s.want {
			t.Errorf("%q: failure from %q, want %q", s.line, got, s.want)
		}
	}
}

// maxlines: a failure spread over two lines is found; the buffer is bounded.
func TestMatcherMultiLine(t *testing.T) {
	f, err := LoadFilterBytes([]byte(`[Definition]
failregex = ^\s*login failed\n\s*client <HOST>$
maxlines = 2
`), "ml", nil, LoadOptions{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	m := f.NewMatcher()
	found := ""
	for _, l := range []string{"2024-03-01 10:00:00 noise", "2024-03-01 10:00:01 login failed", "2024-03-01 10:00:01 client 192.0.2.5"} {
		for _, r := range m.Line(l) {
			found = r.ID
		}
	}
	if found != "192.0.2.5" {
		t.Errorf("multi-line failure: %q", found)
	}
	for i := 0; i < 10; i++ {
		m.Line("2024-03-01 10:00:02 noise")
	}
	if len(m.buf) > 2 {
		t.Errorf("buffer holds %d lines, maxlines 2", len(m.buf))
	}
}
