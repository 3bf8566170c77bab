package httpguard

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	g     *Guard
	set   *decisions.Set
	clock *clock
}

// newFixture makes a guard over a real decision set; loopback is trusted
// so that tests can play any client through X-Forwarded-For.
func newFixture(t testing.TB, trustLoopback bool) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	set := decisions.New(c)
	cfg := Config{Secret: []byte("test secret"), Difficulty: 10, Clock: c}
	if trustLoopback {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	return &fixture{g: New(set, cfg, nil), set: set, clock: c}
}

func (f *fixture) decide(t testing.TB, value string, typ phalanx.DecisionType) {
	t.Helper()
	p, err := phalanx.ParsePrefixOrAddr(value)
	if err != nil {
		t.Fatal(err)
	}
	if !f.set.Add(phalanx.Decision{Value: p, Type: typ, Duration: 24 * time.Hour, LastSeen: f.clock.Now(), Scenario: "test", Origin: phalanx.OriginManual}) {
		t.Fatalf("decision %s %s not added", value, typ)
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type req struct {
	method, path, xff, cookie string
	form                      url.Values
	header                    map[string]string
}

func do(t testing.TB, base string, r req) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.xff != "" {
		hr.Header.Set("X-Forwarded-For", r.xff)
	}
	if r.cookie != "" {
		hr.Header.Set("Cookie", r.cookie)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestMiddlewareRemedies(t *testing.T) {
	f := newFixture(t, true)
	f.decide(t, "192.0.2.1", phalanx.Ban)
	f.decide(t, "192.0.2.2", phalanx.Throttle)
	f.decide(t, "192.0.2.3", phalanx.Captcha)
	f.decide(t, "198.51.100.0/24", phalanx.Ban)
	srv := httptest.NewServer(f.g.Middleware(okHandler))
	defer srv.Close()

	for _, tc := range []struct {
		client string
		code   int
		body   string
	}{
		{"203.0.113.7", 200, "ok"},
		{"192.0.2.1", 403, "blocked"},
		{"198.51.100.77", 403, "blocked"},
		{"192.0.2.3", 403, "Checking your browser"},
		{"192.0.2.2", 200, "ok"}, // within the throttle allowance
	} {
		resp, body := do(t, srv.URL, req{path: "/page", xff: tc.client})
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: got %d %q, want %d containing %q", tc.client, resp.StatusCode, body, tc.code, tc.body)
		}
	}
	st := f.g.Stats()
	if st.Banned != 2 || st.Challenged != 1 || st.Allowed != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestThrottle(t *testing.T) {
	f := newFixture(t, true)
	f.decide(t, "192.0.2.2", phalanx.Throttle)
	srv := httptest.NewServer(f.g.Middleware(okHandler))
	defer srv.Close()

	// The allowance was partly spent in no other test: a full burst passes.
	for i := range ThrottleBurst {
		if resp, _ := do(t, srv.URL, req{xff: "192.0.2.2"}); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d, want 200", i, resp.StatusCode)
		}
	}
	resp, _ := do(t, srv.URL, req{xff: "192.0.2.2"})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after the burst: %d, want 429", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After %q, want 6 (60 s / %d)", got, ThrottleBurst)
	}
	// Another address is not affected by this one's bucket.
	if resp, _ := do(t, srv.URL, req{xff: "192.0.2.9"}); resp.StatusCode != 200 {
		t.Errorf("unrelated address: %d", resp.StatusCode)
	}
	f.clock.Advance(6 * time.Second)
	if resp, _ := do(t, srv.URL, req{xff: "192.0.2.2"}); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d, want 200", resp.StatusCode)
	}
	if resp, _ := do(t, srv.URL, req{xff: "192.0.2.2"}); resp.StatusCode != 429 {
		t.Errorf("one token refilled, two spent: %d, want 429", resp.StatusCode)
	}
}

func TestThrottleStateBounded(t *testing.T) {
	f := newFixture(t, false)
	f.g.buckets = newBucketLRU(4)
	f.decide(t, "2001:db8::/32", phalanx.Throttle)
	for i := range 100 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		if v, _ := f.g.check(httptest.NewRequest("GET", "/", nil), a); v != allow {
			t.Fatalf("first request of %s: %v", a, v)
		}
	}
	if n := f.g.buckets.len(); n != 4 {
		t.Errorf("%d buckets held, want the bound 4", n)
	}
}

var tokenRE = regexp.MustCompile(`name="c" value="([^"]+)"`)

// solve does the browser's work.
func solve(t testing.TB, token string, difficulty int) string {
	t.Helper()
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		if leadingZeros(sha256.Sum256([]byte(token+":"+s))) >= difficulty {
			return s
		}
	}
}

// challengeToken fetches the challenge page as client and returns its token.
func challengeToken(t testing.TB, base, client string) string {
	t.Helper()
	resp, body := do(t, base, req{path: "/wanted?q=1", xff: client})
	m := tokenRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusForbidden || m == nil {
		t.Fatalf("challenge page: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(body, `name="r" value="/wanted?q=1"`) {
		t.Errorf("page does not return to the asked URI: %s", body)
	}
	return m[1]
}

func passCookie(t testing.TB, resp *http.Response) string {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 3600 {
				t.Errorf("cookie attributes: %+v", c)
			}
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no %s cookie in %v", cookieName, resp.Header)
	return ""
}

func TestChallenge(t *testing.T) {
	f := newFixture(t, true)
	f.decide(t, "192.0.2.0/24", phalanx.Captcha)
	srv := httptest.NewServer(f.g.Middleware(okHandler))
	defer srv.Close()
	const me, other = "192.0.2.10", "192.0.2.11"

	tok := challengeToken(t, srv.URL, me)
	answer := func(client, token, nonce string) *http.Response {
		resp, _ := do(t, srv.URL, req{method: "POST", path: challengePath, xff: client,
			form: url.Values{"c": {token}, "n": {nonce}, "r": {"/wanted?q=1"}}})
		return resp
	}

	// Wrong answers are refused with a fresh page.
	bad := "0"
	for leadingZeros(sha256.Sum256([]byte(tok+":"+bad))) >= 10 {
		bad += "0"
	}
	if resp := answer(me, tok, bad); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Errorf("unsolved answer: %d %v", resp.StatusCode, resp.Cookies())
	}
	nonce := solve(t, tok, 10)
	// A token is bound to the address it was given to.
	if resp := answer(other, tok, nonce); resp.StatusCode != 403 {
		t.Errorf("token used by another address: %d", resp.StatusCode)
	}

	resp := answer(me, tok, nonce)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/wanted?q=1" {
		t.Fatalf("solved answer: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := passCookie(t, resp)

	if resp, body := do(t, srv.URL, req{xff: me, cookie: cookie}); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("with the pass cookie: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, srv.URL, req{xff: other, cookie: cookie}); resp.StatusCode != 403 {
		t.Errorf("cookie carried to another address: %d, want 403", resp.StatusCode)
	}
	forged := cookie[:len(cookie)-2] + "AA"
	if strings.HasSuffix(cookie, "AA") {
		forged = cookie[:len(cookie)-2] + "BB"
	}
	exp, _, _ := strings.Cut(strings.TrimPrefix(cookie, cookieName+"="), ".")
	later, _ := strconv.ParseInt(exp, 10, 64)
	for name, c := range map[string]string{
		"forged MAC":      forged,
		"later expiry":    cookieName + "=" + strconv.FormatInt(later+86400, 10) + strings.TrimPrefix(cookie, cookieName+"="+exp),
		"no MAC":          cookieName + "=" + exp,
		"other secret":    cookieName + "=" + exp + "." + New(f.set, Config{Secret: []byte("x"), Clock: f.clock}, nil).mac("pass", netip.MustParseAddr(me), later),
		"challenge token": cookieName + "=" + tok,
	} {
		if resp, _ := do(t, srv.URL, req{xff: me, cookie: c}); resp.StatusCode != 403 {
			t.Errorf("%s cookie %q: %d, want 403", name, c, resp.StatusCode)
		}
	}

	f.clock.Advance(time.Hour + time.Second)
	if resp, _ := do(t, srv.URL, req{xff: me, cookie: cookie}); resp.StatusCode != 403 {
		t.Errorf("expired cookie: %d, want 403", resp.StatusCode)
	}
	// A stale token is refused even when solved.
	tok = challengeToken(t, srv.URL, me)
	nonce = solve(t, tok, 10)
	f.clock.Advance(challengeTTL + time.Second)
	if resp := answer(me, tok, nonce); resp.StatusCode != 403 {
		t.Errorf("stale token: %d, want 403", resp.StatusCode)
	}
	if st := f.g.Stats(); st.Solved != 1 || st.Failed != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestChallengeReturnStaysOnSite(t *testing.T) {
	for in, want := range map[string]string{
		"/a?b=c": "/a?b=c", "": "/", "//evil.example/": "/", "https://evil.example/": "/",
		"/\\evil.example": "/", "/x\r\nSet-Cookie: a=b": "/", challengePath: "/", "relative": "/",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultDifficultySolves(t *testing.T) {
	if testing.Short() {
		t.Skip("proof of work at the default difficulty")
	}
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := New(decisions.New(c), Config{Clock: c}, nil)
	a := netip.MustParseAddr("192.0.2.1")
	tok := g.newChallenge(a)
	if !g.solved(tok, solve(t, tok, DefaultDifficulty), a) {
		t.Fatal("a solution at the default difficulty was refused")
	}
}
