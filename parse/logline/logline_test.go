package logline

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c := &Context{Year: 2024, Loc: time.UTC}
	tests := []struct {
		line                string
		time                string
		host, prog, message string
		pid                 int
	}{
		{"Jan  2 15:04:05 web1 sshd[123]: Failed password for root", "2024-01-02T15:04:05Z", "web1", "sshd", "Failed password for root", 123},
		{"Sep 29 17:15:02 spaceman sshd[12946]: Invalid user x from 1.2.3.4", "2024-09-29T17:15:02Z", "spaceman", "sshd", "Invalid user x from 1.2.3.4", 12946},
		{"2015-04-16T18:02:50.321974+00:00 host sshd[2716]: msg here", "2015-04-16T18:02:50.321974Z", "host", "sshd", "msg here", 2716},
		{"<38>1 2003-10-11T22:14:15.003Z mymachine sshd 42 - - hello", "2003-10-11T22:14:15.003Z", "mymachine", "sshd", "hello", 42},
		{`<165>1 2003-10-11T22:14:15.003+02:00 host app - ID47 [exampleSDID@32473 iut="3" eventSource="App]"] msg`, "2003-10-11T20:14:15.003Z", "host", "app", "msg", 0},
		{"<13>Feb  5 17:32:18 10.0.0.99 postfix/smtpd[7]: text", "2024-02-05T17:32:18Z", "10.0.0.99", "postfix/smtpd", "text", 7},
		{"Jan 12 07:05:01 [daemon.info] host dovecot: auth: x", "2024-01-12T07:05:01Z", "host", "dovecot", "auth: x", 0},
		{"Mar 15 09:20:57 sshd[28261]: Connection closed", "2024-03-15T09:20:57Z", "", "sshd", "Connection closed", 28261},
		{"Mar  3 00:17:22 [sshd]: User root from 192.0.2.1", "2024-03-03T00:17:22Z", "", "sshd", "User root from 192.0.2.1", 0},
		{"Jun 25 23:53:34 [sshd] User root from 192.0.2.1", "2024-06-25T23:53:34Z", "", "sshd", "User root from 192.0.2.1", 0},
		{"Jan 12 07:05:01 [auth] host dovecot: auth: x", "2024-01-12T07:05:01Z", "host", "dovecot", "auth: x", 0},
		{"Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed", "2024-03-29T05:59:23Z", "dusky", "sshd", "[ID 800047 auth.info] Failed", 20878},
	}
	for _, tt := range tests {
		h, ok := Parse(tt.line, c)
		if !ok {
			t.Errorf("Parse(%q) failed", tt.line)
			continue
		}
		if got := h.Time.UTC().Format(time.RFC3339Nano); got != tt.time {
			t.Errorf("Parse(%q) time = %s, want %s", tt.line, got, tt.time)
		}
		if h.Host != tt.host || h.Program != tt.prog || h.Message != tt.message || h.PID != tt.pid {
			t.Errorf("Parse(%q) = %+v", tt.line, h)
		}
	}
	for _, bad := range []string{"", "hello world", "Jan 99 10:00:00 x y: z", "<999999>1 x"} {
		if _, ok := Parse(bad, c); ok {
			t.Errorf("Parse(%q) ok, want failure", bad)
		}
	}
}

func TestParseUntimed(t *testing.T) {
	tests := []struct {
		line, host, prog, msg string
		pid                   int
		ok                    bool
	}{
		{"srv sshd[123]: Failed password", "srv", "sshd", "Failed password", 123, true},
		{"sshd[7]: Connection closed", "", "sshd", "Connection closed", 7, true},
		{"srv sshd-session[9]: x", "srv", "sshd-session", "x", 9, true},
		{"Failed password for root from 192.0.2.1", "", "", "", 0, false},
		{"error: kex_exchange_identification: x", "", "", "", 0, false},
		{"srv sshd: no pid", "", "", "", 0, false},
		{"srv sshd[x1]: bad pid", "", "", "", 0, false},
		{"", "", "", "", 0, false},
		{"[]: x", "", "", "", 0, false},
	}
	for _, tt := range tests {
		h, ok := ParseUntimed(tt.line)
		if ok != tt.ok || (ok && (h.Host != tt.host || h.Program != tt.prog || h.Message != tt.msg || h.PID != tt.pid)) {
			t.Errorf("ParseUntimed(%q) = %+v, %v", tt.line, h, ok)
		}
	}
}

func TestTime(t *testing.T) {
	c := &Context{Year: 2024, Loc: time.UTC}
	tests := []struct {
		in, want string
		n        int
	}{
		{"10/Oct/2000:13:55:36 -0700] x", "2000-10-10T20:55:36Z", 26},
		{"Wed Oct 11 14:32:52.123 2000] x", "2000-10-11T14:32:52.123Z", 28},
		{"2019/01/02 03:04:05 [error]", "2019-01-02T03:04:05Z", 19},
		{"2019-01-02 03:04:05,123 x", "2019-01-02T03:04:05.123Z", 23},
	}
	for _, tt := range tests {
		got, n, ok := Time(tt.in, c)
		if !ok || got.UTC().Format(time.RFC3339Nano) != tt.want || n != tt.n {
			t.Errorf("Time(%q) = %v, %d, %v; want %s, %d", tt.in, got, n, ok, tt.want, tt.n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"Jan  2 15:04:05 web1 sshd[123]: x", "<38>1 2003-10-11T22:14:15.003Z m s 4 - [a b=\"]\"] hi", "02/Jan/2006:15:04:05 +0100", "Mon Jan  2 15:04:05 2006"} {
		f.Add(s)
	}
	c := &Context{Year: 2024, Loc: time.UTC}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := Parse(s, c)
		if ok && len(h.Message) > len(s) {
			t.Fatalf("message longer than line")
		}
		Time(s, c)
		if h, ok := ParseUntimed(s); ok && len(h.Message) > len(s) {
			t.Fatalf("untimed message longer than line")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	c := &Context{Year: 2024, Loc: time.UTC}
	line := "Jan  2 15:04:05 web1 sshd[12345]: Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2"
	for b.Loop() {
		Parse(line, c)
	}
}
