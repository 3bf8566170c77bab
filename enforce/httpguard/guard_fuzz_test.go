package httpguard

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
)

// FuzzPassCookie: the pass cookie, the request's headers and its path are
// the visitor's to choose. A captcha'd address reaches the site only with
// the one pass cookie the guard minted for it (its expiry and MAC), and a
// banned address never does, whatever it sends.
func FuzzPassCookie(f *testing.F) {
	fx := newFixture(f, false)
	captchad, banned := "192.0.2.3", "192.0.2.66"
	fx.decide(f, captchad, phalanx.Captcha)
	fx.decide(f, banned, phalanx.Ban)
	addr := fx.g.ClientAddr(&http.Request{RemoteAddr: captchad + ":1"})
	exp := fx.clock.Now().Add(fx.g.cfg.CookieTTL).Unix()
	mac := fx.g.mac("pass", addr, exp)
	minted := strconv.FormatInt(exp, 10) + "." + mac
	h := fx.g.Middleware(okHandler)

	f.Add(cookieName+"="+minted, "/", "")
	f.Add(cookieName+"=0"+minted, "/shop", "203.0.113.1")
	f.Add(cookieName+"="+strconv.FormatInt(exp+1, 10)+"."+mac, "/", "")
	f.Add(cookieName+"="+strconv.FormatInt(exp, 10)+"."+strings.ToUpper(mac), "/", "")
	f.Add(cookieName+"=99999999999999999999."+mac, "/", "")
	f.Add(cookieName+"=-1.x; "+cookieName+"="+minted, challengePath, captchad)
	f.Add(cookieName+"=\""+minted+"\"", "/?r=//evil.example", "")
	f.Add("a=b; "+cookieName, "/%2e%2e/", "::1")
	f.Add(strings.Repeat(cookieName+"=1.1;", 200), "/", "")
	f.Fuzz(func(t *testing.T, cookie, path, xff string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Path == challengePath {
			t.Skip() // the challenge endpoint has FuzzChallengeBody
		}
		for _, client := range []string{captchad, banned} {
			r := requestFor(u)
			r.RemoteAddr = client + ":4000"
			r.Header.Set("Cookie", cookie)
			r.Header.Set("X-Forwarded-For", xff) // no trusted proxy: ignored
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			through := w.Code == http.StatusOK && w.Body.String() == "ok"
			if client == banned {
				if w.Code != http.StatusForbidden || through {
					t.Fatalf("banned client answered %d with cookie %q, XFF %q", w.Code, cookie, xff)
				}
				continue
			}
			if !through {
				if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "Checking your browser") {
					t.Fatalf("captcha'd client without a pass: %d %.80q", w.Code, w.Body)
				}
				continue
			}
			c, err := r.Cookie(cookieName)
			if err != nil {
				t.Fatalf("let through without a %s cookie: %q", cookieName, cookie)
			}
			ts, sum, _ := strings.Cut(c.Value, ".")
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || n != exp || sum != mac {
				t.Fatalf("let through with a cookie the guard never minted: %q (minted %q)", c.Value, minted)
			}
		}
	})
}

var returnField = regexp.MustCompile(`name="r" value="([^"]*)"`)

// FuzzChallengeReturn: the path a visitor is sent back to after solving
// the challenge comes from the request (its URI, ?r=, or a trusted
// proxy's X-Original-URI): it must stay on the site and stay inside its
// HTML attribute.
func FuzzChallengeReturn(f *testing.F) {
	fx := newFixture(f, true)
	fx.decide(f, "192.0.2.3", phalanx.Captcha)
	h := fx.g.Middleware(okHandler)
	f.Add("/", "", false)
	f.Add("/shop?item=1", "", false)
	f.Add(challengePath+"?r=//evil.example", "", false)
	f.Add(challengePath+"?r=/\\evil.example", "", false)
	f.Add(challengePath+"?r=%2F%09%2Fevil.example", "", false)
	f.Add(challengePath, "/\"><script>alert(1)</script>", true)
	f.Add(challengePath, "https://evil.example/", true)
	f.Add("/a\"b'<c>", "", false)
	f.Fuzz(func(t *testing.T, path, original string, viaProxy bool) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			t.Skip()
		}
		r := requestFor(u)
		r.RemoteAddr = "192.0.2.3:4000"
		if viaProxy {
			r.RemoteAddr = "127.0.0.1:4000"
			r.Header.Set("X-Forwarded-For", "192.0.2.3")
			r.Header.Set("X-Original-URI", original)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusForbidden {
			t.Fatalf("%q: status %d", path, w.Code)
		}
		m := returnField.FindAllStringSubmatch(w.Body.String(), -1)
		if len(m) != 1 {
			t.Fatalf("%q / %q: %d return fields in the page (an attribute broken out of?)", path, original, len(m))
		}
		back := html.UnescapeString(m[0][1])
		if back == "" || back[0] != '/' || strings.HasPrefix(back, "//") || strings.HasPrefix(back, "/\\") {
			t.Fatalf("%q / %q: return path %q leaves the site", path, original, back)
		}
		for _, c := range back {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("%q: control character in return path %q", path, back)
			}
		}
		// The page is served fresh every time: a cached page would hand a
		// stale token to the next visitor.
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("challenge page cacheable: %v", w.Header())
		}
	})
}

// requestFor is a GET of u as a server would hand it over. httptest's
// NewRequest panics on targets such as "*", which a server does pass on.
func requestFor(u *url.URL) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL, r.RequestURI = u, u.RequestURI()
	return r
}
