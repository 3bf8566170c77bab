package web

import (
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
)

// TestHugeLines feeds 1 MB lines built from repeated payload fragments to
// every parser path. Each family of checks must stay linear: a quadratic
// one (as "union/*" repeated once was) makes this test take minutes.
func TestHugeLines(t *testing.T) {
	pats := []string{"union/*", "union/*a", "'", "(", "a=", "<a", "%25", ";", `"`, `\"`, "${",
		", client: 192.0.2.1", "user ", "`", "/.", "%%32%65", "aaaa(", "on=", "../", `\x41`, "[client "}
	p := New(phalanx.ServiceHTTP, testCtx)
	for _, pat := range pats {
		body := strings.Repeat(pat, (1<<20)/len(pat))
		for _, line := range []string{
			access("192.0.2.1", "GET /?"+body+" HTTP/1.1", 404, body),
			`2024/03/10 13:55:36 [error] 1#1: *2 user "` + body + `": password mismatch, client: 192.0.2.1, server: s, request: "GET /` + body + ` HTTP/1.1"`,
			`[Sun Mar 10 13:55:36 2024] [error] [client 192.0.2.1] user ` + body + ` not found`,
			`[Sun Mar 10 13:55:36 2024] [error] ` + body,
			`192.0.2.1 - - [10/Mar/2024:13:55:36 +0000] "` + body,
			body,
		} {
			var ev phalanx.Event
			p.Parse(line, &ev)
		}
	}
}
