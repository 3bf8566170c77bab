package web

import (
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
)

// fuzzSeeds are synthetic lines covering every form Parse knows.
var fuzzSeeds = []string{
	access("192.0.2.1", "GET /index.html HTTP/1.1", 200, chrome),
	access("2001:db8::1", "GET /a%252e%252e/%2e%2e/etc/passwd?x=1+union+select HTTP/1.1", 404, "sqlmap/1.0"),
	access("192.0.2.1", `\x16\x03\x01\x00\xA5`, 400, "-"),
	`vhost.example:443 192.0.2.1 - bob [10/Mar/2024:13:55:36 +0100] "GET /\" HTTP/1.1" 200 1 "-" "a \"b\""`,
	`192.0.2.1 - [10/Mar/2024:13:55:36 +0100] "GET / HTTP/1.1" 200 1`,
	`2024/03/10 13:55:36 [error] 1#1: *2 user "u": password mismatch, client: 192.0.2.1, server: s, request: "GET / HTTP/1.1", host: "h"`,
	`2024/03/10 13:55:36 [crit] 1#1: *2 SSL_do_handshake() failed (SSL: error:x:y too long) while SSL handshaking, client: 192.0.2.1, server: 0.0.0.0:443`,
	`[Sun Mar 10 13:55:36.1 2024] [auth_digest:error] [pid 1:tid 2] [client [2001:db8::1]:5] AH01790: user ` + "`u' in realm `r'" + ` not found: /x`,
	`[Sun Mar 10 13:55:36 2024] [error] [client 192.0.2.1] Invalid URI in request GET /cgi-bin/.%2e/%2e%2e/bin/sh HTTP/1.1`,
	`[Sun Mar 10 13:55:36 2024] [ssl:info] [pid 1] (70014)End of file found: [client 192.0.2.1:1] AH02006: x`,
	"<13>1 2024-03-10T13:55:36Z web nginx 1 - - " + access("192.0.2.1", "GET / HTTP/1.1", 200, "x"),
	"web nginx[1]: web nginx: 2024/03/10 13:55:36 [notice] 1#1: *1 limiting requests, excess: 1 by zone \"z\", client: 192.0.2.1, server: s",
}

// FuzzParse checks that no line panics Parse and that the strings it
// returns point into the line.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Add(access("192.0.2.1", "GET /"+strings.Repeat("%25", 1<<18)+" HTTP/1.1", 404, strings.Repeat("x", 1<<19)))
	f.Add("192.0.2.1 - - [" + strings.Repeat("[", 1<<20))
	f.Add("\x00\xff\xfe" + fuzzSeeds[0])
	p := New(phalanx.ServiceHTTP, testCtx)
	f.Fuzz(func(t *testing.T, line string) {
		var ev phalanx.Event
		if !p.Parse(line, &ev) {
			return
		}
		if ev.Kind == "" {
			t.Fatalf("recognised with no kind: %q", line)
		}
		for _, s := range []string{ev.Method, ev.Path, ev.UserAgent, ev.User} {
			if !strings.Contains(line, s) {
				t.Fatalf("field %q is not from the line %q", s, line)
			}
		}
		if ev.Kind.Hostile() && ev.Kind != phalanx.KindInfo && ev.Service == "" {
			t.Fatalf("no service: %q", line)
		}
	})
}

// FuzzClassify checks Classify and the target normaliser on arbitrary
// fields.
func FuzzClassify(f *testing.F) {
	f.Add("GET", "/a/b?c=d", 200, chrome)
	f.Add("POST", "/%%32%65%%32%65/%252e%252e/x?a=%3Cscript%3E+union+select+sleep(1)", 404, "${jndi:x}")
	f.Add("", `\x16\x03\x01`, 400, "")
	f.Add("GET", strings.Repeat("/..", 1<<18), 404, strings.Repeat("nikto ", 1<<16))
	f.Fuzz(func(t *testing.T, method, path string, status int, ua string) {
		ev := phalanx.Event{Method: method, Path: path, Status: status, UserAgent: ua}
		Classify(&ev)
		if ev.Kind == "" {
			t.Fatal("no kind")
		}
		if ev.Method != method || ev.Path != path || ev.UserAgent != ua {
			t.Fatal("Classify changed the event's fields")
		}
		var buf [normBuf]byte
		b := buf[:0]
		if len(path) > normBuf {
			b = make([]byte, 0, len(path))
		}
		s, q := normalize(b, path)
		if q < 0 || q > len(s) || len(s) > len(path) {
			t.Fatalf("normalize(%q) = %q, %d", path, s, q)
		}
	})
}
