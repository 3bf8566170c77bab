package sshd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

var testCtx = &logline.Context{Year: 2024, Loc: time.UTC}

// All addresses below are documentation ranges (RFC 5737, RFC 3849).
func TestParseKinds(t *testing.T) {
	const pre = "Mar  4 05:06:07 web1 sshd[4242]: "
	tests := []struct {
		mode         Mode
		line         string
		kind         phalanx.EventKind
		source, user string
		method       string
	}{
		{Normal, pre + "Failed password for root from 198.51.100.7 port 52000 ssh2", phalanx.KindAuthFailed, "198.51.100.7", "root", "password"},
		{Normal, pre + "Failed password for invalid user oracle from 2001:db8::5 port 52000 ssh2", phalanx.KindAuthFailed, "2001:db8::5", "oracle", "password"},
		{Normal, pre + "Failed keyboard-interactive/pam for invalid user bob from 198.51.100.8 port 1 ssh2", phalanx.KindAuthFailed, "198.51.100.8", "bob", "keyboard-interactive"},
		{Normal, pre + "Failed publickey for invalid user deploy from 198.51.100.9 port 2 ssh2: RSA SHA256:abc", phalanx.KindAuthFailed, "198.51.100.9", "deploy", "publickey"},
		{Normal, pre + "Failed publickey for alice from 198.51.100.10 port 3 ssh2: ED25519 SHA256:abc", phalanx.KindInfo, "198.51.100.10", "alice", "publickey"},
		{Normal, pre + "Failed none for invalid user x from 198.51.100.11 port 4 ssh2", phalanx.KindAuthFailed, "198.51.100.11", "x", ""},
		{Normal, pre + "error: PAM: Authentication failure for carol from 198.51.100.12", phalanx.KindAuthFailed, "198.51.100.12", "carol", ""},
		{Normal, pre + "error: PAM: authentication error for dave from 198.51.100.13 via 192.0.2.1", phalanx.KindAuthFailed, "198.51.100.13", "dave", ""},
		{Normal, pre + "error: PAM: User not known to the underlying authentication module for illegal user eve from 198.51.100.14", phalanx.KindInvalidUser, "198.51.100.14", "illegal user eve", ""},
		{Normal, pre + "Invalid user admin from 198.51.100.15 port 40000", phalanx.KindInvalidUser, "198.51.100.15", "admin", ""},
		{Normal, pre + "Invalid user  from 198.51.100.16 port 40000", phalanx.KindInvalidUser, "198.51.100.16", "", ""},
		{Normal, pre + "User root from 198.51.100.17 not allowed because not listed in AllowUsers", phalanx.KindUserNotAllowed, "198.51.100.17", "root", ""},
		{Normal, pre + "User mallory from 198.51.100.18 not allowed because listed in DenyUsers", phalanx.KindUserNotAllowed, "198.51.100.18", "mallory", ""},
		{Normal, pre + "User x from 198.51.100.19 not allowed because none of user's groups are listed in AllowGroups", phalanx.KindUserNotAllowed, "198.51.100.19", "x", ""},
		{Normal, pre + "ROOT LOGIN REFUSED FROM 198.51.100.20 port 1 [preauth]", phalanx.KindUserNotAllowed, "198.51.100.20", "root", ""},
		{Normal, pre + "refused connect from scanner.example (198.51.100.21)", phalanx.KindConnRefused, "198.51.100.21", "", ""},
		{Normal, pre + "error: maximum authentication attempts exceeded for invalid user sam from 198.51.100.22 port 5 ssh2 [preauth]", phalanx.KindMaxAuthTries, "198.51.100.22", "sam", ""},
		{Normal, pre + "Received disconnect from 198.51.100.23 port 6:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", phalanx.KindAuthFailed, "198.51.100.23", "", ""},
		{Normal, pre + "Accepted publickey for ops from 198.51.100.24 port 7 ssh2: ED25519 SHA256:x", phalanx.KindAuthSuccess, "198.51.100.24", "ops", "publickey"},
		{Normal, pre + "Accepted password for ops from ::ffff:198.51.100.25 port 7 ssh2", phalanx.KindAuthSuccess, "198.51.100.25", "ops", "password"},
		{Normal, pre + "Connection from 198.51.100.26 port 8 on 192.0.2.1 port 22", phalanx.KindInfo, "198.51.100.26", "", ""},
		{Normal, pre + "Connection closed by 198.51.100.27 port 9 [preauth]", phalanx.KindInfo, "198.51.100.27", "", ""},
		{DDoS, pre + "Connection closed by 198.51.100.27 port 9 [preauth]", phalanx.KindPreauthClose, "198.51.100.27", "", ""},
		{DDoS, pre + "Connection closed by 198.51.100.27 port 9", phalanx.KindInfo, "198.51.100.27", "", ""},
		{DDoS, pre + "Connection reset by authenticating user root 198.51.100.28 port 10 [preauth]", phalanx.KindPreauthClose, "198.51.100.28", "root", ""},
		{Extra, pre + "Connection reset by authenticating user root 198.51.100.28 port 10 [preauth]", phalanx.KindInfo, "198.51.100.28", "root", ""},
		{Extra, pre + "Disconnected from invalid user a b 198.51.100.29 port 11 [preauth]", phalanx.KindPreauthClose, "198.51.100.29", "a b", ""},
		{Normal, pre + "Disconnected from invalid user a 198.51.100.29 port 11 [preauth]", phalanx.KindInfo, "198.51.100.29", "a", ""},
		{Aggressive, pre + "Did not receive identification string from 198.51.100.30 port 12", phalanx.KindPreauthClose, "198.51.100.30", "", ""},
		{Normal, pre + "Did not receive identification string from 198.51.100.30 port 12", phalanx.KindInfo, "198.51.100.30", "", ""},
		{DDoS, pre + "banner exchange: Connection from 198.51.100.31 port 13: invalid format", phalanx.KindBannerError, "198.51.100.31", "", ""},
		{DDoS, pre + "Bad protocol version identification 'GET / HTTP/1.1' from 198.51.100.32 port 14", phalanx.KindKexFailure, "198.51.100.32", "", ""},
		{DDoS, pre + "fatal: Timeout before authentication for 198.51.100.33 port 15", phalanx.KindAuthTimeout, "198.51.100.33", "", ""},
		{DDoS, pre + "ssh_dispatch_run_fatal: Connection from 198.51.100.34 port 16: message authentication code incorrect [preauth]", phalanx.KindKexFailure, "198.51.100.34", "", ""},
		{Extra, pre + "Unable to negotiate with 198.51.100.35 port 17: no matching host key type found. Their offer: ssh-rsa [preauth]", phalanx.KindKexFailure, "198.51.100.35", "", ""},
		{Normal, pre + "Unable to negotiate with 198.51.100.35 port 17: no matching host key type found. Their offer: ssh-rsa [preauth]", phalanx.KindInfo, "198.51.100.35", "", ""},
		{Extra, pre + "error: Received disconnect from 198.51.100.36 port 18:14: No supported authentication methods available [preauth]", phalanx.KindAuthFailed, "198.51.100.36", "", ""},
		{Normal, pre + "Close session: user ansible from 198.51.100.37 port 19 id 0", phalanx.KindInfo, "198.51.100.37", "ansible", ""},
		{Normal, pre + "Disconnected from user ops 198.51.100.38 port 20", phalanx.KindInfo, "198.51.100.38", "ops", ""},
		{Normal, pre + "pam_unix(sshd:session): session opened for user ops(uid=1000) by (uid=0)", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "Postponed publickey for ops from 198.51.100.39 port 21 ssh2 [preauth]", phalanx.KindInfo, "", "", "publickey"},
		{Normal, pre + "input_userauth_request: invalid user root [preauth]", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "Address 198.51.100.1 maps to x.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "reverse mapping checking getaddrinfo for x.example [198.51.100.1] failed - POSSIBLE BREAK-IN ATTEMPT!", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "pam_unix(sshd:auth): check pass; user unknown", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.1  user=root", phalanx.KindInfo, "", "", ""},
		{Normal, pre + "Did not receive identification string from 198.51.100.2\r", phalanx.KindInfo, "198.51.100.2", "", ""},
		// A host name is never resolved: recognised, no address.
		{Normal, pre + "Invalid user x from bad.example port 1", phalanx.KindInvalidUser, "", "x", ""},
		// Header forms: journal short form without a time, bare message,
		// RFC 5424, sshd-session, Solaris tag.
		{Normal, "srv sshd[77]: Invalid user q from 198.51.100.40 port 1", phalanx.KindInvalidUser, "198.51.100.40", "q", ""},
		{Normal, "Invalid user q from 198.51.100.41 port 1", phalanx.KindInvalidUser, "198.51.100.41", "q", ""},
		{Normal, "<38>1 2024-01-02T03:04:05Z h sshd 91 - - Invalid user q from 198.51.100.42 port 1", phalanx.KindInvalidUser, "198.51.100.42", "q", ""},
		{Normal, "Jan  2 03:04:05 h sshd-session[92]: Failed password for q from 198.51.100.43 port 1 ssh2", phalanx.KindAuthFailed, "198.51.100.43", "q", "password"},
		{Normal, "Jan  2 03:04:05 h sshd[93]: [ID 800047 auth.info] Failed keyboard-interactive for q from 198.51.100.44 port 1 ssh2", phalanx.KindAuthFailed, "198.51.100.44", "q", "keyboard-interactive"},
		// Injection through the user name: the address sshd wrote last wins.
		{Normal, pre + "Failed password for invalid user x from 192.0.2.66 port 1 ssh2 from 198.51.100.45 port 2 ssh2", phalanx.KindAuthFailed, "198.51.100.45", "invalid user x from 192.0.2.66 port 1 ssh2", "password"},
		{Normal, pre + "Invalid user x from 192.0.2.66 from 198.51.100.46 port 3", phalanx.KindInvalidUser, "198.51.100.46", "x from 192.0.2.66", ""},
		{DDoS, pre + "Connection closed by authenticating user x 192.0.2.66 port 9 198.51.100.47 port 4 [preauth]", phalanx.KindPreauthClose, "198.51.100.47", "x 192.0.2.66 port 9", ""},
	}
	for _, tt := range tests {
		p := New(tt.mode, testCtx)
		var ev phalanx.Event
		if !p.Parse(tt.line, &ev) {
			t.Errorf("%s: Parse(%q) = false", tt.mode, tt.line)
			continue
		}
		src := ""
		if ev.Source.IsValid() {
			src = ev.Source.String()
		}
		if ev.Kind != tt.kind || src != tt.source || ev.User != tt.user || ev.Method != tt.method || ev.Service != phalanx.ServiceSSHD {
			t.Errorf("%s: Parse(%q)\n got kind=%q source=%q user=%q method=%q service=%q\nwant kind=%q source=%q user=%q method=%q",
				tt.mode, tt.line, ev.Kind, src, ev.User, ev.Method, ev.Service, tt.kind, tt.source, tt.user, tt.method)
		}
	}
}

// TestHugeLines: a megabyte of repeated " from " in the places a user name
// goes must neither panic nor take quadratic time.
func TestHugeLines(t *testing.T) {
	p := New(Aggressive, testCtx)
	big := strings.Repeat(" from 192.0.2.1 port 1 ssh2", 40000)
	for _, line := range []string{
		"h sshd[1]: Failed password for invalid user x" + big + " from 198.51.100.1 port 2 ssh2",
		"h sshd[1]: Invalid user x" + big + " from 198.51.100.1 port 2",
		"h sshd[1]: Connection closed by authenticating user x" + big + " 198.51.100.1 port 2 [preauth]",
	} {
		var ev phalanx.Event
		if !p.Parse(line, &ev) || !ev.Hostile() || ev.Source.String() != "198.51.100.1" {
			t.Errorf("huge line: hostile=%v source %v", ev.Hostile(), ev.Source)
		}
	}
	var ev phalanx.Event
	p.Parse("h sshd[1]: Failed password for x"+big+": from", &ev) // must not panic
}

func TestParseTime(t *testing.T) {
	p := New(Normal, testCtx)
	var ev phalanx.Event
	if !p.Parse("Mar  4 05:06:07 web1 sshd[1]: Invalid user a from 198.51.100.1", &ev) {
		t.Fatal("not recognised")
	}
	if want := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("time = %v, want %v", ev.Time, want)
	}
}

func TestParseRejects(t *testing.T) {
	p := New(Aggressive, testCtx)
	for _, line := range []string{
		"",
		"Mar  4 05:06:07 web1 postfix/smtpd[1]: Invalid user a from 198.51.100.1", // another program
		"Mar  4 05:06:07 web1 sshd[1]: Server listening on 0.0.0.0 port 22.",
		"Mar  4 05:06:07 web1 sshd[1]: Disconnected from totobad user ftp 198.51.100.1 port 2 [preauth]",
		"hello world",
	} {
		ev := phalanx.Event{Kind: "sentinel"}
		if p.Parse(line, &ev) {
			t.Errorf("Parse(%q) = true, kind %q", line, ev.Kind)
		} else if ev.Kind != "sentinel" {
			t.Errorf("Parse(%q) touched the event", line)
		}
	}
}

// TestMultiLine covers fail2ban's per-process rules with synthetic lines.
func TestMultiLine(t *testing.T) {
	type step struct {
		line    string
		hostile bool
		source  string
	}
	tests := []struct {
		name  string
		mode  Mode
		steps []step
	}{
		{"address from an earlier line", Normal, []step{
			{"h sshd[10]: Connection from 198.51.100.1 port 5 on 192.0.2.1 port 22", false, "198.51.100.1"},
			{"h sshd[10]: Disconnecting: Too many authentication failures [preauth]", true, "198.51.100.1"},
		}},
		{"failure waits for an address", Normal, []step{
			{"h sshd[11]: Disconnecting: Too many authentication failures for root [preauth]", false, ""},
			{"h sshd[11]: Connection closed by 198.51.100.2 port 6 [preauth]", true, "198.51.100.2"},
			{"h sshd[11]: Connection closed by 198.51.100.2 port 6 [preauth]", false, "198.51.100.2"},
		}},
		{"another process does not get it", Normal, []step{
			{"h sshd[12]: Disconnecting: Too many authentication failures for root [preauth]", false, ""},
			{"h sshd[13]: Connection closed by 198.51.100.3 port 6 [preauth]", false, "198.51.100.3"},
		}},
		{"another host does not get it", Normal, []step{
			{"h1 sshd[14]: Disconnecting: Too many authentication failures for root [preauth]", false, ""},
			{"h2 sshd[14]: Connection closed by 198.51.100.3 port 6 [preauth]", false, "198.51.100.3"},
		}},
		{"accepted forgets", Normal, []step{
			{"h sshd[15]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.4 user=ops", false, "198.51.100.4"},
			{"h sshd[15]: Accepted password for ops from 198.51.100.4 port 1 ssh2", false, "198.51.100.4"},
			{"h sshd[15]: Disconnecting: Too many authentication failures [preauth]", false, ""},
		}},
		{"several users in one process count", Normal, []step{
			{"h sshd[16]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=root rhost=198.51.100.5", false, "198.51.100.5"},
			{"h sshd[16]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=admin rhost=198.51.100.5", true, "198.51.100.5"},
		}},
		{"key spraying: publickey then too many", Normal, []step{
			{"h sshd[17]: Failed publickey for git from 198.51.100.6 port 1 ssh2: RSA SHA256:a", false, "198.51.100.6"},
			{"h sshd[17]: Failed publickey for git from 198.51.100.6 port 1 ssh2: RSA SHA256:b", false, "198.51.100.6"},
			{"h sshd[17]: Disconnecting: Too many authentication failures for git [preauth]", true, "198.51.100.6"},
		}},
		{"kex failure without address in ddos", DDoS, []step{
			{"h sshd[18]: error: kex_exchange_identification: Connection closed by remote host", false, ""},
			{"h sshd[18]: Connection closed by 198.51.100.7 port 1", true, "198.51.100.7"},
		}},
		{"state expires by log time", Normal, []step{
			{"Mar  4 05:00:00 h sshd[19]: Connection from 198.51.100.8 port 5 on 192.0.2.1 port 22", false, "198.51.100.8"},
			{"Mar  4 06:00:00 h sshd[19]: Disconnecting: Too many authentication failures [preauth]", false, ""},
		}},
	}
	for _, tt := range tests {
		p := New(tt.mode, testCtx)
		for i, s := range tt.steps {
			var ev phalanx.Event
			if !p.Parse(s.line, &ev) {
				t.Errorf("%s step %d: not recognised: %s", tt.name, i, s.line)
				continue
			}
			src := ""
			if ev.Source.IsValid() {
				src = ev.Source.String()
			}
			if ev.Hostile() != s.hostile || src != s.source {
				t.Errorf("%s step %d: hostile=%v source=%q kind=%q, want hostile=%v source=%q\n\t%s",
					tt.name, i, ev.Hostile(), src, ev.Kind, s.hostile, s.source, s.line)
			}
		}
	}
}

// TestStateBounded fills the per-process table far beyond its size: it
// stays at stateEntries, and the newest processes are the ones remembered.
func TestStateBounded(t *testing.T) {
	p := New(Normal, testCtx)
	var ev phalanx.Event
	n := stateEntries * 4
	for pid := 1; pid <= n; pid++ {
		line := "h sshd[" + itoa(pid) + "]: Connection from 198.51.100.9 port 5 on 192.0.2.1 port 22"
		if !p.Parse(line, &ev) {
			t.Fatal("not recognised")
		}
	}
	used := 0
	for _, set := range p.state.sets {
		for _, e := range set {
			if e.key != 0 {
				used++
			}
		}
	}
	if used > stateEntries {
		t.Errorf("%d entries used, bound %d", used, stateEntries)
	}
	// The last process is remembered.
	if !p.Parse("h sshd["+itoa(n)+"]: Disconnecting: Too many authentication failures [preauth]", &ev) || !ev.Hostile() {
		t.Errorf("newest process forgotten: %+v", ev)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"": Normal, "normal": Normal, "ddos": DDoS, "extra": Extra, "aggressive": Aggressive} {
		if got, err := ParseMode(s); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, got, err)
		}
		if s != "" && want.String() != s {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	if _, err := ParseMode("paranoid"); err == nil || !strings.Contains(err.Error(), "aggressive") {
		t.Errorf("ParseMode(paranoid) error = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Mar  4 05:06:07 web1 sshd[4242]: Failed password for invalid user x from 198.51.100.1 port 1 ssh2",
		"srv sshd[1]: Connection closed by authenticating user a b 2001:db8::1 port 2 [preauth]",
		"sshd[2]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.2  user=x",
		"Received disconnect from ::1: 11: Bye",
		"Jun 25 23:53:34 [sshd] User root from 198.51.100.3 not allowed because not listed in AllowUsers",
		"h sshd[3]: kernel:[ 1.2]: Failed password for a from 198.51.100.4 port 1 ssh2",
		"h sshd[4]: SSH: Server;Ltype: Kex;Remote: 198.51.100.5-1780;Enc: x",
		"h sshd[5]: Unable to negotiate with 198.51.100.6 port 1: no matching cipher found.",
		"h sshd[6]: Failed password for a from fe80::1%eth0 port 1 ssh2",
		"Failed \x00 for \xff from \x00",
	} {
		f.Add(s)
	}
	p := New(Aggressive, testCtx)
	f.Fuzz(func(t *testing.T, line string) {
		var ev phalanx.Event
		if !p.Parse(line, &ev) {
			return
		}
		if ev.Source.IsValid() {
			if ev.Source.Is4In6() || ev.Source.Zone() != "" {
				t.Fatalf("source %v not unmapped / has a zone", ev.Source)
			}
			// The address comes from the line (or from an earlier line of
			// the same process, which the fuzzer also wrote).
			if _, err := netip.ParseAddr(ev.Source.String()); err != nil {
				t.Fatalf("garbage source %v", ev.Source)
			}
		}
		if ev.User != "" && !strings.Contains(line, ev.User) {
			t.Fatalf("user %q not in line", ev.User)
		}
		if ev.Method != "" && !strings.Contains(line, ev.Method) {
			t.Fatalf("method %q not in line", ev.Method)
		}
		if ev.Kind == "" || ev.Service != phalanx.ServiceSSHD {
			t.Fatalf("recognised without kind/service: %+v", ev)
		}
	})
}

// benchLines is a realistic mix of an internet-facing sshd log: mostly
// brute-force failures and preauth closes, a few logins and session lines.
var benchLines = []string{
	"Mar  4 05:06:07 web1 sshd[24001]: Invalid user admin from 203.0.113.50 port 51234",
	"Mar  4 05:06:07 web1 sshd[24001]: pam_unix(sshd:auth): check pass; user unknown",
	"Mar  4 05:06:07 web1 sshd[24001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50",
	"Mar  4 05:06:09 web1 sshd[24001]: Failed password for invalid user admin from 203.0.113.50 port 51234 ssh2",
	"Mar  4 05:06:10 web1 sshd[24001]: Connection closed by invalid user admin 203.0.113.50 port 51234 [preauth]",
	"Mar  4 05:06:11 web1 sshd[24002]: Failed password for root from 198.51.100.23 port 40022 ssh2",
	"Mar  4 05:06:12 web1 sshd[24002]: Received disconnect from 198.51.100.23 port 40022:11: Bye Bye [preauth]",
	"Mar  4 05:06:12 web1 sshd[24002]: Disconnected from authenticating user root 198.51.100.23 port 40022 [preauth]",
	"Mar  4 05:06:13 web1 sshd[24003]: Connection closed by 192.0.2.77 port 33322 [preauth]",
	"Mar  4 05:06:14 web1 sshd[24004]: Accepted publickey for deploy from 2001:db8::10 port 50000 ssh2: ED25519 SHA256:abcdefghijklmnop",
	"Mar  4 05:06:14 web1 sshd[24004]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
	"Mar  4 05:06:15 web1 sshd[24005]: Unable to negotiate with 203.0.113.99 port 41000: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
	"Mar  4 05:06:16 web1 sshd[24006]: Invalid user test from 203.0.113.51 port 51299",
	"Mar  4 05:06:17 web1 sshd[24006]: Failed password for invalid user test from 203.0.113.51 port 51299 ssh2",
	"Mar  4 05:06:18 web1 sshd[24007]: Timeout before authentication for 203.0.113.52 port 1111",
	"Mar  4 05:06:19 web1 sshd[24008]: Connection reset by 203.0.113.53 port 2222 [preauth]",
}

func BenchmarkParse(b *testing.B) {
	p := New(Aggressive, testCtx)
	var ev phalanx.Event
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Parse(benchLines[i%len(benchLines)], &ev)
		i++
	}
}

// TestZeroAllocs holds the hot path to no allocations on the common
// failure and success lines.
func TestZeroAllocs(t *testing.T) {
	p := New(Aggressive, testCtx)
	var ev phalanx.Event
	for _, l := range benchLines {
		p.Parse(l, &ev) // warm the state table
	}
	for _, l := range benchLines {
		if n := testing.AllocsPerRun(50, func() { p.Parse(l, &ev) }); n != 0 {
			t.Errorf("%v allocs/op: %s", n, l)
		}
	}
}
