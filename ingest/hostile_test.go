package ingest_test

import (
	"testing"

	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

// TestInjectedAddresses: an attacker controls user names, paths and
// other fields that end up in log lines, and writes addresses into them to
// get someone else banned (the classic fail2ban injection). The source
// must always be the address the daemon itself wrote.
func TestInjectedAddresses(t *testing.T) {
	engine, err := detect.New(detect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := ingest.New(parse.New(parse.Options{SSHDMode: sshd.Aggressive, Context: &logline.Context{Year: 2025}}), engine, nil)
	for _, tt := range []struct{ line, want string }{
		{"Jun  2 10:00:00 web1 sshd[100]: Invalid user admin from 10.66.66.66 from 203.0.113.5 port 4000", "203.0.113.5"},
		{"Jun  2 10:00:00 web1 sshd[100]: Failed password for invalid user x from 10.66.66.66 port 1 ssh2 from 203.0.113.5 port 4000 ssh2", "203.0.113.5"},
		{"Jun  2 10:00:00 web1 sshd[101]: Failed password for root from 10.66.66.66 port 22 ssh2 from 203.0.113.6 port 4000 ssh2", "203.0.113.6"},
		{`203.0.113.7 - - [02/Jun/2025:10:00:00 +0000] "GET /x\" 200 1 \"-\" \"-\"\n10.66.66.66 - - HTTP/1.1" 404 1 "-" "-"`, "203.0.113.7"},
		{`2025/06/02 10:00:00 [error] 1#1: *1 user "a, client: 10.66.66.66, server: x" was not found in "/etc/htpasswd", client: 203.0.113.8, server: x, request: "GET / HTTP/1.1", host: "x"`, "203.0.113.8"},
		{"Jun  2 10:00:00 mx postfix/smtpd[5]: warning: unknown[203.0.113.12]: SASL LOGIN authentication failed: rip=10.66.66.66", "203.0.113.12"},
		{"Jun  2 10:00:00 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x rip=10.66.66.66>, method=PLAIN, rip=203.0.113.13, lip=10.0.0.1", "203.0.113.13"},
	} {
		ev, ok := p.Line(tt.line)
		if !ok || !ev.Hostile() || ev.Source.String() != tt.want {
			t.Errorf("%.70q: recognised %v, hostile %v, source %s; want %s", tt.line, ok, ev.Hostile(), ev.Source, tt.want)
		}
	}
}
