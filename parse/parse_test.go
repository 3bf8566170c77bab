package parse

import (
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

// Auto mode recognises each format in one mixed stream, as a syslog
// server's combined log or `cat *.log | phalanx parse -` gives it.
func TestAutoMixed(t *testing.T) {
	p := New(Options{SSHDMode: sshd.Aggressive, Context: &logline.Context{Year: 2025}})
	tests := []struct {
		line    string
		service phalanx.Service
		kind    phalanx.EventKind
		source  string
	}{
		{"Jun  2 10:00:00 web1 sshd[100]: Failed password for root from 198.51.100.7 port 4000 ssh2", phalanx.ServiceSSHD, phalanx.KindAuthFailed, "198.51.100.7"},
		{"2025-06-02T10:00:00.123456+00:00 web1 sshd-session[9]: Invalid user bob from 2001:db8::7 port 22", phalanx.ServiceSSHD, phalanx.KindInvalidUser, "2001:db8::7"},
		{"<38>1 2025-06-02T10:00:00Z web1 sshd 77 - - Failed password for invalid user x from 198.51.100.8 port 1 ssh2", phalanx.ServiceSSHD, phalanx.KindAuthFailed, "198.51.100.8"},
		{`203.0.113.9 - - [02/Jun/2025:10:00:00 +0000] "GET /.env HTTP/1.1" 404 153 "-" "curl/8.0"`, phalanx.ServiceHTTP, phalanx.KindHTTPSensitive, "203.0.113.9"},
		{`203.0.113.10 - - [02/Jun/2025:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 153 "-" "Mozilla/5.0"`, phalanx.ServiceHTTP, phalanx.KindHTTPRequest, "203.0.113.10"},
		{`2025/06/02 10:00:00 [error] 12#12: *3 user "admin" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.11, server: x, request: "GET / HTTP/1.1", host: "x"`, phalanx.ServiceNginx, phalanx.KindHTTPAuthFailed, "203.0.113.11"},
		{"Jun  2 10:00:00 mx postfix/smtpd[5]: warning: unknown[203.0.113.12]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", phalanx.ServicePostfix, phalanx.KindMailAuthFailed, "203.0.113.12"},
		{"Jun  2 10:00:00 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.13, lip=10.0.0.1, TLS", phalanx.ServiceDovecot, phalanx.KindMailAuthFailed, "203.0.113.13"},
		{"Jun  2 10:00:00 web1 CRON[1]: (root) CMD (true)", "", "", ""},
		{"", "", "", ""},
	}
	var ev phalanx.Event
	for _, tt := range tests {
		ok := p.Parse(tt.line, &ev)
		if ok != (tt.service != "") || ev.Service != tt.service || ev.Kind != tt.kind {
			t.Errorf("Parse(%.60q) = %v %s/%s, want %s/%s", tt.line, ok, ev.Service, ev.Kind, tt.service, tt.kind)
			continue
		}
		if tt.source != "" && ev.Source.String() != tt.source {
			t.Errorf("Parse(%.60q) source %s, want %s", tt.line, ev.Source, tt.source)
		}
	}
}

// Custom rules apply to lines no built-in parser counts.
func TestRulesAfterBuiltins(t *testing.T) {
	set, err := rules.Parse([]byte(`rules:
  - name: app
    kind: auth_failed
    contains: ["login failed"]
    regex: 'login failed for (?P<user>\S+) from (?P<source>\S+)'
`), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Rules: set})
	var ev phalanx.Event
	if !p.Parse("2025-06-02 10:00:00 app: login failed for bob from 192.0.2.44", &ev) || ev.Service != "app" || ev.User != "bob" || ev.Source.String() != "192.0.2.44" {
		t.Errorf("rule not applied: %+v", ev)
	}
}

func TestParseType(t *testing.T) {
	for _, s := range []string{"", "auto", "SSHD", "nginx", "apache", "postfix", "dovecot", "syslog"} {
		if _, err := ParseType(s); err != nil {
			t.Errorf("ParseType(%q): %v", s, err)
		}
	}
	if _, err := ParseType("iis"); err == nil || !strings.Contains(err.Error(), "sshd") {
		t.Errorf("ParseType(iis) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Jun  2 10:00:00 web1 sshd[100]: Failed password for root from 198.51.100.7 port 4000 ssh2",
		`203.0.113.9 - - [02/Jun/2025:10:00:00 +0000] "GET /.env HTTP/1.1" 404 153 "-" "curl/8.0"`,
		"<38>1 - - - - - -",
		"Jun  2 10:00:00 mx postfix/smtpd[5]: warning: unknown[203.0.113.12]: SASL LOGIN authentication failed",
	} {
		f.Add(s)
	}
	p := New(Options{SSHDMode: sshd.Aggressive, Context: &logline.Context{Year: 2025}})
	f.Fuzz(func(t *testing.T, line string) {
		var ev phalanx.Event
		ok := p.Parse(line, &ev)
		if !ok && ev.Kind != "" {
			t.Fatalf("unrecognised line left kind %q", ev.Kind)
		}
		if ok && (ev.Service == "" || ev.Kind == "") {
			t.Fatalf("recognised line without service or kind: %+v", ev)
		}
	})
}
