package mail

import (
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

var testCtx = &logline.Context{Year: 2024, Loc: time.UTC}

type want struct {
	ok      bool
	service phalanx.Service
	kind    phalanx.EventKind
	src     string
	user    string
}

const (
	pf = phalanx.ServicePostfix
	dc = phalanx.ServiceDovecot
)

var (
	authFailed = phalanx.KindMailAuthFailed
	rejected   = phalanx.KindMailRejected
	protocol   = phalanx.KindMailProtocol
	info       = phalanx.KindInfo
	success    = phalanx.KindAuthSuccess
)

// Synthetic lines written for these tests (documentation addresses).
var normalCases = []struct {
	line string
	want want
}{
	// postfix SASL.
	{"Mar  3 10:00:00 mx postfix/smtpd[100]: warning: unknown[198.51.100.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", want{true, pf, authFailed, "198.51.100.7", ""}},
	{"Mar  3 10:00:00 mx postfix/submission/smtpd[100]: warning: host.example[2001:db8::5]:587: SASL plain authentication failed: bad", want{true, pf, authFailed, "2001:db8::5", ""}},
	{"Mar  3 10:00:00 mx postfix/smtpd[100]: warning: unknown[198.51.100.8]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=bob", want{true, pf, authFailed, "198.51.100.8", "bob"}},
	{"Mar  3 10:00:00 mx postfix/smtpd[100]: warning: unknown[198.51.100.9]: SASL LOGIN authentication failed: Connection lost to authentication server", want{true, pf, info, "198.51.100.9", ""}},
	{"Mar  3 10:00:00 mx postfix/smtpd[100]: warning: unknown[198.51.100.9]: SASL XOAUTH2 authentication failed: Invalid authentication mechanism", want{true, pf, info, "198.51.100.9", ""}},
	// postfix rejections.
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from spam.example[203.0.113.4]: 554 5.7.1 <a@b.example>: Relay access denied; from=<x@y.example> to=<a@b.example> proto=ESMTP helo=<spam>", want{true, pf, rejected, "203.0.113.4", ""}},
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from unknown[203.0.113.5]: 550 5.1.1 <nobody@ours.example>: Recipient address rejected: User unknown in virtual mailbox table; from=<> to=<nobody@ours.example>", want{true, pf, rejected, "203.0.113.5", ""}},
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: EHLO from unknown[203.0.113.6]: 504 5.5.2 <pc>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<pc>", want{true, pf, rejected, "203.0.113.6", ""}},
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: CONNECT from unknown[203.0.113.7]: 450 4.7.25 Client host rejected: cannot find your hostname, [203.0.113.7]; proto=SMTP", want{true, pf, rejected, "203.0.113.7", ""}},
	{"Mar  3 10:00:01 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from [203.0.113.8]:4455: 550 5.7.1 Service unavailable; client [203.0.113.8] blocked using zen.example; from=<a@b>, to=<c@d>, proto=ESMTP, helo=<x>", want{true, pf, rejected, "203.0.113.8", ""}},
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: A1B2C3D4E5: milter-reject: END-OF-MESSAGE from good.example[203.0.113.9]: 5.7.1 Spam message rejected; from=<a@b>", want{true, pf, info, "203.0.113.9", ""}},
	// Greylisting happens to legitimate senders.
	{"Mar  3 10:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from mail.example[192.0.2.10]: 450 4.2.0 <u@ours.example>: Recipient address rejected: Greylisted, see http://postgrey.example; from=<a@b> to=<u@ours.example>", want{true, pf, info, "192.0.2.10", ""}},
	// postfix protocol violations.
	{"Mar  3 10:00:02 mx postfix/smtpd[102]: improper command pipelining after EHLO from unknown[203.0.113.10]: QUIT", want{true, pf, protocol, "203.0.113.10", ""}},
	{"Mar  3 10:00:02 mx postfix/smtpd[102]: too many errors after AUTH from unknown[203.0.113.11]", want{true, pf, protocol, "203.0.113.11", ""}},
	// Counted only in aggressive mode.
	{"Mar  3 10:00:02 mx postfix/smtpd[102]: lost connection after EHLO from unknown[203.0.113.12]", want{true, pf, info, "203.0.113.12", ""}},
	{"Mar  3 10:00:02 mx postfix/smtpd[102]: disconnect from unknown[203.0.113.13] ehlo=1 auth=0/2 quit=1 commands=2/4", want{true, pf, info, "203.0.113.13", ""}},
	{"Mar  3 10:00:02 mx postfix/postscreen[9]: PREGREET 11 after 0.1 from [203.0.113.14]:5555: HELO x\\r\\n", want{true, pf, info, "203.0.113.14", ""}},
	{"Mar  3 10:00:02 mx postfix/smtpd[102]: warning: Connection rate limit exceeded: 40 from x.example[203.0.113.15] for service smtp", want{true, pf, info, "203.0.113.15", ""}},
	// Benign postfix.
	{"Mar  3 10:00:03 mx postfix/smtpd[103]: connect from mail.example[192.0.2.20]", want{true, pf, info, "192.0.2.20", ""}},
	{"Mar  3 10:00:03 mx postfix/smtpd[103]: disconnect from mail.example[192.0.2.20] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6", want{true, pf, info, "192.0.2.20", ""}},
	{"Mar  3 10:00:03 mx postfix/smtpd[103]: 4AB12C: client=mail.example[192.0.2.21], sasl_method=PLAIN, sasl_username=alice", want{true, pf, success, "192.0.2.21", "alice"}},
	{"Mar  3 10:00:03 mx postfix/qmgr[50]: 4AB12C: from=<a@b.example>, size=123, nrcpt=1 (queue active)", want{true, pf, info, "", ""}},
	{"Mar  3 10:00:03 mx postfix/smtpd[103]: lost connection after DATA from mail.example[192.0.2.22]", want{true, pf, info, "192.0.2.22", ""}},
	// dovecot login processes.
	{"Mar  3 11:00:00 mx dovecot: imap-login: Disconnected (auth failed, 3 attempts in 12 secs): user=<carol>, method=PLAIN, rip=198.51.100.30, lip=192.0.2.1, TLS, session=<abc>", want{true, dc, authFailed, "198.51.100.30", "carol"}},
	{"Mar  3 11:00:00 mx dovecot[7]: pop3-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<d>, method=PLAIN, rip=2001:db8::31, lip=2001:db8::1, session=<x>", want{true, dc, authFailed, "2001:db8::31", "d"}},
	{"Mar  3 11:00:00 mx dovecot: imap-login: Aborted login (tried to use disallowed plaintext auth): rip=198.51.100.32, lip=192.0.2.1", want{true, dc, authFailed, "198.51.100.32", ""}},
	{"Mar  3 11:00:00 mx dovecot: imap-login: Disconnected (no auth attempts in 3 secs): user=<>, rip=198.51.100.33, lip=192.0.2.1, TLS handshaking", want{true, dc, info, "198.51.100.33", ""}},
	{"Mar  3 11:00:00 mx dovecot: imap-login: Login: user=<erin>, method=PLAIN, rip=192.0.2.40, lip=192.0.2.1, mpid=123, TLS, session=<q>", want{true, dc, success, "192.0.2.40", "erin"}},
	{"Mar  3 11:00:00 mx dovecot: imap(erin)<123><q>: Logged out in=10 out=20", want{true, dc, info, "", ""}},
	// dovecot passdbs.
	{"Mar  3 11:00:01 mx dovecot: auth-worker(55): pam(frank,198.51.100.34,<s1>): pam_authenticate() failed: Authentication failure (Password mismatch?)", want{true, dc, authFailed, "198.51.100.34", "frank"}},
	{"Mar  3 11:00:01 mx dovecot: auth: sql(g@ours.example,198.51.100.35,<s2>): unknown user", want{true, dc, authFailed, "198.51.100.35", "g@ours.example"}},
	{"Mar  3 11:00:01 mx auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=h rhost=198.51.100.36", want{true, dc, authFailed, "198.51.100.36", "h"}},
	{"Mar  3 11:00:01 auth(i@ours.example,198.51.100.37,sasl:plain)<s3>: Info: ldap: Password mismatch", want{true, dc, authFailed, "198.51.100.37", "i@ours.example"}},
	{"2024-03-03 11:00:02 auth-worker(default): Info: passwd-file(j,198.51.100.38): unknown user", want{true, dc, authFailed, "198.51.100.38", "j"}},
	{"@4000000065e45a1c00000000 imap-login: Info: Aborted login (auth failed, 1 attempts): user=<k>, method=PLAIN, rip=198.51.100.39, lip=192.0.2.1", want{true, dc, authFailed, "198.51.100.39", "k"}},
	// Injection: the client picks the user name and pam's ruser.
	{"Mar  3 11:00:03 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts): user=<x>, rip=192.0.2.99, lip=>, method=PLAIN, rip=198.51.100.40, lip=192.0.2.1", want{true, dc, info, "", ""}},
	{"Mar  3 11:00:03 mx auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=rhost=192.0.2.99 rhost=198.51.100.41", want{true, dc, authFailed, "198.51.100.41", "rhost=192.0.2.99"}},
	{"Mar  3 11:00:03 mx dovecot: auth: pam(a,192.0.2.99,198.51.100.42): unknown user", want{true, dc, authFailed, "198.51.100.42", "a,192.0.2.99"}},
	{"Mar  3 11:00:03 mx dovecot: imap-login: Disconnected: a: b: c: nothing here", want{true, dc, info, "", ""}},
	// Not mail.
	{"Mar  3 12:00:00 host sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2", want{}},
	{"Mar  3 12:00:00 host auth: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.2", want{}},
	{"", want{}},
	{"random words", want{}},
	// Bare messages, as a dispatcher without the header would pass them.
	{"NOQUEUE: reject: RCPT from x[203.0.113.50]: 554 5.7.1 <a@b>: Relay access denied; from=<a> to=<b>", want{true, pf, rejected, "203.0.113.50", ""}},
	{"imap-login: Disconnected (auth failed, 1 attempts): user=<z>, rip=198.51.100.51", want{true, dc, authFailed, "198.51.100.51", "z"}},
}

func check(t *testing.T, line string, ok bool, ev *phalanx.Event, w want) {
	t.Helper()
	src := ""
	if ev.Source.IsValid() {
		src = ev.Source.String()
	}
	if ok != w.ok {
		t.Errorf("Parse(%q) = %v, want %v (ev %+v)", line, ok, w.ok, ev)
		return
	}
	if !ok {
		return
	}
	if ev.Service != w.service || ev.Kind != w.kind || src != w.src || ev.User != w.user {
		t.Errorf("Parse(%q)\n got service=%q kind=%q src=%q user=%q\nwant service=%q kind=%q src=%q user=%q",
			line, ev.Service, ev.Kind, src, ev.User, w.service, w.kind, w.src, w.user)
	}
}

func TestParseNormal(t *testing.T) {
	p := New(testCtx)
	for _, tt := range normalCases {
		var ev phalanx.Event
		ok := p.Parse(tt.line, &ev)
		check(t, tt.line, ok, &ev, tt.want)
	}
}

func TestParseAggressive(t *testing.T) {
	p := New(testCtx)
	p.SetMode(Aggressive)
	upgraded := map[string]phalanx.EventKind{
		"Invalid authentication mechanism": authFailed,
		"lost connection after EHLO":       protocol,
		"auth=0/2":                         protocol,
		"PREGREET":                         protocol,
		"rate limit exceeded":              protocol,
		"no auth attempts":                 protocol,
	}
	n := 0
	for _, tt := range normalCases {
		w := tt.want
		for sub, k := range upgraded {
			if strings.Contains(tt.line, sub) {
				w.kind = k
				n++
			}
		}
		var ev phalanx.Event
		ok := p.Parse(tt.line, &ev)
		check(t, tt.line, ok, &ev, w)
	}
	if n != len(upgraded) {
		t.Fatalf("%d aggressive-only lines in the table, want %d", n, len(upgraded))
	}
}

func TestTime(t *testing.T) {
	p := New(testCtx)
	for _, tt := range []struct{ line, want string }{
		{"Mar  3 10:00:00 mx postfix/smtpd[1]: connect from x[192.0.2.1]", "2024-03-03T10:00:00Z"},
		{"2024-03-03 11:00:02 imap-login: Info: Login: user=<a>, rip=192.0.2.1", "2024-03-03T11:00:02Z"},
		{"@4000000065e45a1c0000000a imap-login: Info: Login: user=<a>, rip=192.0.2.1", "2024-03-03T11:08:12.00000001Z"},
	} {
		var ev phalanx.Event
		if !p.Parse(tt.line, &ev) {
			t.Errorf("Parse(%q) = false", tt.line)
			continue
		}
		if got := ev.Time.UTC().Format(time.RFC3339Nano); got != tt.want {
			t.Errorf("Parse(%q) time %s, want %s", tt.line, got, tt.want)
		}
	}
}

// TestParseMessage covers pre-split entries, as journald delivers them.
func TestParseMessage(t *testing.T) {
	p := New(testCtx)
	when := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		prog, msg string
		want      want
	}{
		{"postfix/smtpd", "warning: unknown[203.0.113.60]: SASL LOGIN authentication failed: x", want{true, pf, authFailed, "203.0.113.60", ""}},
		{"dovecot", "auth(m,203.0.113.61,sasl:login)<s>: Info: sql: Password mismatch", want{true, dc, authFailed, "203.0.113.61", "m"}},
		{"dovecot", "imap-login: Disconnected (proxy dest auth failed): user=<n>, method=PLAIN, rip=203.0.113.62, lip=192.0.2.1", want{true, dc, authFailed, "203.0.113.62", "n"}},
		{"auth", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser= rhost=203.0.113.63 user=o", want{true, dc, authFailed, "203.0.113.63", "o"}},
		{"sshd", "Failed password for root from 203.0.113.64 port 22 ssh2", want{}},
	} {
		var ev phalanx.Event
		h := logline.Header{Time: when, Program: tt.prog, Message: tt.msg}
		ok := p.ParseMessage(&h, &ev)
		check(t, tt.prog+": "+tt.msg, ok, &ev, tt.want)
		if ok && !ev.Time.Equal(when) {
			t.Errorf("ParseMessage time %v, want %v", ev.Time, when)
		}
	}
}

func TestAllocs(t *testing.T) {
	p := New(testCtx)
	for _, tt := range normalCases {
		var ev phalanx.Event
		if n := testing.AllocsPerRun(20, func() { ev.Reset(); p.Parse(tt.line, &ev) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", tt.line, n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	p := New(testCtx)
	lines := make([]string, len(normalCases))
	for i, tt := range normalCases {
		lines[i] = tt.line
	}
	var ev phalanx.Event
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.Reset()
		p.Parse(lines[i%len(lines)], &ev)
		i++
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range normalCases {
		f.Add(tt.line)
	}
	f.Add("@4000000065e45a1c00000000")
	f.Add("@400000006zzzzzzz00000000 x: y")
	f.Add("Mar  3 11:00:01 auth(a,b:c")
	f.Add("Mar  3 11:00:01 x dovecot: imap-login: Disconnected (x) (y): rip=")
	f.Add("Mar  3 11:00:01 x postfix/smtpd[1]: NOQUEUE: reject: RCPT from [")
	f.Add("\x00\xff" + strings.Repeat("a(", 1000) + "): ")
	p := New(testCtx)
	pa := New(testCtx)
	pa.SetMode(Aggressive)
	f.Fuzz(func(t *testing.T, line string) {
		var ev phalanx.Event
		ok := p.Parse(line, &ev)
		if !ok && ev.Kind != "" {
			t.Fatalf("Parse(%q) = false with kind %q", line, ev.Kind)
		}
		if ok && ev.Hostile() && !ev.Source.IsValid() {
			t.Fatalf("Parse(%q) hostile without a source", line)
		}
		if ev.Source.Is4In6() {
			t.Fatalf("Parse(%q) left a mapped address %v", line, ev.Source)
		}
		var ea phalanx.Event
		okA := pa.Parse(line, &ea)
		// Aggressive only ever adds hostility.
		if okA != ok || (ev.Kind.Hostile() && !ea.Kind.Hostile()) {
			t.Fatalf("Parse(%q): normal %v %q, aggressive %v %q", line, ok, ev.Kind, okA, ea.Kind)
		}
	})
}

func TestHugeLine(t *testing.T) {
	p := New(testCtx)
	line := "Mar  3 11:00:00 mx dovecot: imap-login: Disconnected" + strings.Repeat(": a (", 1<<18) + "auth failed, 1 attempts): rip=192.0.2.1"
	var ev phalanx.Event
	p.Parse(line, &ev)
	line = "Mar  3 11:00:00 mx postfix/smtpd[1]: warning: " + strings.Repeat("[", 1<<20)
	p.Parse(line, &ev)
}
