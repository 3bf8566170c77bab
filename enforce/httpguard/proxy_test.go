package httpguard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

// echo answers with the forwarding headers the application sees.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "xff=%s real=%s path=%s", strings.Join(r.Header.Values("X-Forwarded-For"), "|"), r.Header.Get("X-Real-IP"), r.URL.RequestURI())
})

func TestProxy(t *testing.T) {
	app := httptest.NewServer(echo)
	defer app.Close()
	u, _ := url.Parse(app.URL)

	t.Run("untrusted client", func(t *testing.T) {
		f := newFixture(t, false)
		srv := httptest.NewServer(NewProxy(u, f.g))
		defer srv.Close()
		// The client claims another address: the application must not see it.
		resp, body := do(t, srv.URL, req{path: "/a?b=1", xff: "192.0.2.99"})
		if want := "xff=127.0.0.1 real=127.0.0.1 path=/a?b=1"; resp.StatusCode != 200 || body != want {
			t.Errorf("got %d %q, want %q", resp.StatusCode, body, want)
		}
		f.decide(t, "127.0.0.1", phalanx.Ban)
		if resp, body := do(t, srv.URL, req{path: "/"}); resp.StatusCode != 403 || strings.Contains(body, "xff=") {
			t.Errorf("banned: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		f := newFixture(t, true)
		f.decide(t, "192.0.2.1", phalanx.Ban)
		f.decide(t, "192.0.2.2", phalanx.Throttle)
		f.decide(t, "192.0.2.3", phalanx.Captcha)
		srv := httptest.NewServer(NewProxy(u, f.g))
		defer srv.Close()
		resp, body := do(t, srv.URL, req{xff: "192.0.2.99, 203.0.113.5"})
		if want := "xff=192.0.2.99, 203.0.113.5, 127.0.0.1 real=203.0.113.5 path=/"; resp.StatusCode != 200 || body != want {
			t.Errorf("got %d %q, want %q", resp.StatusCode, body, want)
		}
		if resp, _ := do(t, srv.URL, req{xff: "192.0.2.1"}); resp.StatusCode != 403 {
			t.Errorf("ban: %d", resp.StatusCode)
		}
		for range ThrottleBurst {
			do(t, srv.URL, req{xff: "192.0.2.2"})
		}
		if resp, _ := do(t, srv.URL, req{xff: "192.0.2.2"}); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("throttle: %d %v", resp.StatusCode, resp.Header)
		}
		tok := challengeToken(t, srv.URL, "192.0.2.3")
		resp, _ = do(t, srv.URL, req{method: "POST", path: challengePath, xff: "192.0.2.3",
			form: url.Values{"c": {tok}, "n": {solve(t, tok, 10)}, "r": {"/after"}}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("answer through the proxy: %d", resp.StatusCode)
		}
		if resp, body := do(t, srv.URL, req{path: "/after", xff: "192.0.2.3", cookie: passCookie(t, resp)}); resp.StatusCode != 200 || !strings.Contains(body, "path=/after") {
			t.Errorf("after solving: %d %q", resp.StatusCode, body)
		}
	})
}

func TestForwardAuth(t *testing.T) {
	f := newFixture(t, true)
	f.decide(t, "192.0.2.1", phalanx.Ban)
	f.decide(t, "192.0.2.2", phalanx.Throttle)
	f.decide(t, "192.0.2.3", phalanx.Captcha)
	srv := httptest.NewServer(f.g.ForwardAuth())
	defer srv.Close()

	traefik := func(client string) req { // what Traefik and Caddy send
		return req{path: "/", xff: client, header: map[string]string{
			"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/shop?item=1", "X-Forwarded-Host": "example.org"}}
	}
	nginx := func(client string) req {
		return req{path: "/.phalanx/auth", xff: client, header: map[string]string{"X-Original-URI": "/shop?item=1"}}
	}
	for _, tc := range []struct {
		name string
		r    req
		code int
	}{
		{"allow", traefik("203.0.113.1"), 200},
		{"ban", traefik("192.0.2.1"), 403},
		{"ban, nginx", nginx("192.0.2.1"), 403},
		{"captcha", traefik("192.0.2.3"), 401},
		{"captcha, nginx", nginx("192.0.2.3"), 401},
		{"spoofed XFF is still believed from the trusted proxy only", traefik("203.0.113.1, 192.0.2.1"), 403},
	} {
		resp, body := do(t, srv.URL, tc.r)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if tc.code == 401 && !strings.Contains(body, `name="r" value="/shop?item=1"`) {
			t.Errorf("%s: challenge page does not return to the original URI: %s", tc.name, body)
		}
	}

	for range ThrottleBurst {
		do(t, srv.URL, traefik("192.0.2.2"))
	}
	if resp, _ := do(t, srv.URL, traefik("192.0.2.2")); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "6" {
		t.Errorf("throttle: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// nginx's auth_request turns anything but 2xx, 401 and 403 into a 500.
	if resp, _ := do(t, srv.URL, nginx("192.0.2.2")); resp.StatusCode != 403 {
		t.Errorf("throttle, nginx: %d, want 403", resp.StatusCode)
	}

	// nginx's error_page 401 = /.phalanx/challenge: the page, returning to
	// the original URI, which nginx passes in X-Original-URI.
	resp, body := do(t, srv.URL, req{path: challengePath, xff: "192.0.2.3", header: map[string]string{"X-Original-URI": "/shop?item=1"}})
	m := tokenRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(body, `name="r" value="/shop?item=1"`) {
		t.Fatalf("challenge page: %d %s", resp.StatusCode, body)
	}
	// The proxy routes the answer to the guard; the pass cookie then
	// satisfies the auth check, which sees the browser's Cookie header.
	resp, _ = do(t, srv.URL, req{method: "POST", path: challengePath, xff: "192.0.2.3",
		form: url.Values{"c": {m[1]}, "n": {solve(t, m[1], 10)}, "r": {"/shop?item=1"}}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/shop?item=1" {
		t.Fatalf("answer: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	r := traefik("192.0.2.3")
	r.cookie = passCookie(t, resp)
	if resp, _ := do(t, srv.URL, r); resp.StatusCode != 200 {
		t.Errorf("with the pass cookie: %d", resp.StatusCode)
	}
}

func FuzzChallengeBody(f *testing.F) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := New(decisions.New(c), Config{Secret: []byte("k"), Difficulty: 4, Clock: c}, nil)
	a := netip.MustParseAddr("192.0.2.3")
	tok := g.newChallenge(a)
	f.Add("c=" + url.QueryEscape(tok) + "&n=" + solve(f, tok, 4) + "&r=%2F")
	f.Add("c=" + url.QueryEscape(tok) + "&n=1&r=//evil")
	f.Add("c=1.AAAA&n=99999999999999999999999&r=")
	f.Add("%zz")
	f.Add(strings.Repeat("a", 5000))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", challengePath, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.3:1234"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		g.serveChallenge(w, r, a)
		switch w.Code {
		case http.StatusSeeOther:
			// Only a real solution earns a cookie, and the redirect stays on the site.
			if !g.solved(r.PostForm.Get("c"), r.PostForm.Get("n"), a) {
				t.Fatalf("cookie for an unsolved answer: %q", body)
			}
			if loc := w.Header().Get("Location"); safeReturn(loc) != loc || loc[0] != '/' {
				t.Fatalf("redirect off the site: %q", loc)
			}
		case http.StatusForbidden, http.StatusBadRequest:
			if w.Header().Get("Set-Cookie") != "" {
				t.Fatalf("cookie with a refusal: %q", body)
			}
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
