package bouncerapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	clock *testClock
	ds    *decisions.Set
	srv   *Server
	h     http.Handler
	key   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := &testClock{t: t0}
	ds := decisions.New(clock)
	keys, err := OpenKeys(filepath.Join(t.TempDir(), "bouncers.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Add("fw")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ds, keys, nil)
	srv.now = clock.Now
	return &fixture{clock: clock, ds: ds, srv: srv, h: srv.Handler(), key: key}
}

func (f *fixture) ban(value, scenario string, origin phalanx.Origin, d time.Duration) {
	p, err := phalanx.ParsePrefixOrAddr(value)
	if err != nil {
		panic(err)
	}
	f.ds.Add(phalanx.Decision{Value: p, Type: phalanx.Ban, Scenario: scenario, Origin: origin,
		Duration: d, LastSeen: f.clock.Now(), FirstSeen: f.clock.Now(), Events: 1})
}

func (f *fixture) do(t *testing.T, method, target, key, remote string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("X-Api-Key", key)
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

type apiDecision struct {
	ID       int64   `json:"id"`
	Origin   *string `json:"origin"`
	Type     *string `json:"type"`
	Scope    *string `json:"scope"`
	Value    *string `json:"value"`
	Duration *string `json:"duration"`
	Scenario *string `json:"scenario"`
	Until    string  `json:"until"`
}

type streamResp struct {
	New     []apiDecision `json:"new"`
	Deleted []apiDecision `json:"deleted"`
}

func (f *fixture) pull(t *testing.T, query string) (streamResp, string) {
	t.Helper()
	w := f.do(t, "GET", "/v1/decisions/stream?"+query, f.key, "")
	if w.Code != 200 {
		t.Fatalf("stream %s: %d %s", query, w.Code, w.Body)
	}
	var s streamResp
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("stream %s: %v: %s", query, err, w.Body)
	}
	return s, w.Body.String()
}

func values(ds []apiDecision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, *d.Value)
	}
	slices.Sort(out)
	return out
}

func TestStreamStartupAndIncremental(t *testing.T) {
	f := newFixture(t)
	f.ban("192.0.2.1", "ssh-bf", phalanx.OriginLocal, time.Hour)
	f.ban("2001:db8::/64", "http-probing", phalanx.OriginAlliance, 4*time.Hour)

	s, raw := f.pull(t, "startup=true")
	if got := values(s.New); !slices.Equal(got, []string{"192.0.2.1", "2001:db8::/64"}) {
		t.Fatalf("startup new = %v", got)
	}
	if !strings.Contains(raw, `"deleted":null`) {
		t.Errorf("startup deleted not null: %s", raw)
	}
	for _, d := range s.New {
		// The swagger's required fields are all present.
		if d.Origin == nil || d.Type == nil || d.Scope == nil || d.Value == nil || d.Duration == nil || d.Scenario == nil || d.ID == 0 {
			t.Fatalf("missing required field: %+v", d)
		}
		if _, err := time.ParseDuration(*d.Duration); err != nil {
			t.Errorf("duration %q: %v", *d.Duration, err)
		}
		switch *d.Value {
		case "192.0.2.1":
			if *d.Scope != "Ip" || *d.Origin != "crowdsec" || *d.Duration != "1h0m0s" || d.Until != "2025-03-01T13:00:00Z" {
				t.Errorf("ip decision = %+v", d)
			}
		case "2001:db8::/64":
			if *d.Scope != "Range" || *d.Origin != "CAPI" || *d.Scenario != "http-probing" {
				t.Errorf("range decision = %+v", d)
			}
		}
	}
	ids := map[string]int64{}
	for _, d := range s.New {
		ids[*d.Value] = d.ID
	}

	// Nothing changed: both lists null.
	if _, raw := f.pull(t, "startup=false"); !strings.Contains(raw, `{"new":null,"deleted":null}`) {
		t.Errorf("idle pull = %s", raw)
	}

	// An add, a lift, an expiry.
	f.ban("198.51.100.7", "ssh-bf", phalanx.OriginManual, 10*time.Minute)
	f.ds.Delete(netip.MustParsePrefix("2001:db8::/64"))
	s, _ = f.pull(t, "startup=false")
	if got := values(s.New); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Errorf("new after add = %v", got)
	}
	if got := values(s.Deleted); !slices.Equal(got, []string{"2001:db8::/64"}) {
		t.Errorf("deleted after lift = %v", got)
	}
	if d := s.Deleted[0]; d.ID != ids["2001:db8::/64"] || d.Until != "2025-03-01T12:00:00Z" {
		t.Errorf("lifted decision = %+v, want its id %d and until now", d, ids["2001:db8::/64"])
	}
	if *s.New[0].Origin != "cscli" {
		t.Errorf("manual origin = %s", *s.New[0].Origin)
	}

	f.clock.Advance(11 * time.Minute) // 198.51.100.7 expires, unseen by Expire
	s, _ = f.pull(t, "")
	if got := values(s.Deleted); !slices.Equal(got, []string{"198.51.100.7"}) || s.New != nil {
		t.Errorf("after expiry = %+v", s)
	}

	// Extending a decision re-sends it with the same id.
	f.ban("192.0.2.1", "ssh-bf", phalanx.OriginLocal, 2*time.Hour)
	s, _ = f.pull(t, "")
	if len(s.New) != 1 || s.New[0].ID != ids["192.0.2.1"] || s.Deleted != nil {
		t.Errorf("after extension = %+v", s)
	}

	// startup=true again: everything in force, cursor reset.
	s, _ = f.pull(t, "startup=true")
	if got := values(s.New); !slices.Equal(got, []string{"192.0.2.1"}) || s.Deleted != nil {
		t.Errorf("second startup = %+v", s)
	}
}

func TestStreamTypeChange(t *testing.T) {
	f := newFixture(t)
	p := netip.MustParsePrefix("192.0.2.9/32")
	f.ds.Add(phalanx.Decision{Value: p, Type: phalanx.Captcha, Scenario: "http", Origin: phalanx.OriginLocal, Duration: time.Hour, LastSeen: t0})
	s, _ := f.pull(t, "startup=true")
	first := s.New[0].ID
	f.ds.Add(phalanx.Decision{Value: p, Type: phalanx.Ban, Scenario: "http", Origin: phalanx.OriginLocal, Duration: time.Hour, LastSeen: t0})
	s, _ = f.pull(t, "")
	if len(s.Deleted) != 1 || *s.Deleted[0].Type != "captcha" || s.Deleted[0].ID != first ||
		len(s.New) != 1 || *s.New[0].Type != "ban" || s.New[0].ID == first {
		t.Errorf("type change = %+v", s)
	}
}

func TestStreamCursorPerClient(t *testing.T) {
	f := newFixture(t)
	f.ban("192.0.2.1", "ssh", phalanx.OriginLocal, time.Hour)
	get := func(remote, q string) streamResp {
		w := f.do(t, "GET", "/v1/decisions/stream?"+q, f.key, remote)
		var s streamResp
		if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	get("10.0.0.1:1000", "startup=true")
	// Another host with the same key has its own cursor: its first
	// incremental pull is a full dump.
	if s := get("10.0.0.2:1000", ""); len(s.New) != 1 {
		t.Errorf("other client's first pull = %+v", s)
	}
	if s := get("10.0.0.1:2000", ""); s.New != nil {
		t.Errorf("same client, new port = %+v", s)
	}
}

func TestStreamFilters(t *testing.T) {
	f := newFixture(t)
	f.ban("192.0.2.1", "crowdsecurity/ssh-bf", phalanx.OriginLocal, time.Hour)
	f.ban("192.0.2.2", "http-probing", phalanx.OriginAlliance, time.Hour)
	f.ban("10.0.0.0/8", "manual", phalanx.OriginManual, time.Hour)
	tests := []struct {
		query string
		want  []string
	}{
		{"scopes=ip", []string{"192.0.2.1", "192.0.2.2"}},
		{"scopes=Range", []string{"10.0.0.0/8"}},
		{"scopes=IP,range", []string{"10.0.0.0/8", "192.0.2.1", "192.0.2.2"}},
		{"scopes=country", nil},
		{"origins=crowdsec,cscli", []string{"10.0.0.0/8", "192.0.2.1"}},
		{"origins=alliance", []string{"192.0.2.2"}},
		{"origins=CAPI", []string{"192.0.2.2"}},
		{"scenarios_containing=SSH,probing", []string{"192.0.2.1", "192.0.2.2"}},
		{"scenarios_not_containing=ssh", []string{"10.0.0.0/8", "192.0.2.2"}},
		{"scenarios_containing=ssh&scenarios_not_containing=bf", nil},
	}
	for _, tt := range tests {
		s, _ := f.pull(t, "startup=true&"+tt.query)
		if got := values(s.New); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, got, tt.want)
		}
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	f.ban("192.0.2.1", "ssh", phalanx.OriginLocal, time.Hour)
	f.ban("192.0.2.0/24", "ssh", phalanx.OriginAlliance, time.Hour)
	f.ds.Add(phalanx.Decision{Value: netip.MustParsePrefix("198.51.100.1/32"), Type: phalanx.Captcha, Scenario: "http", Origin: phalanx.OriginLocal, Duration: time.Hour, LastSeen: t0})
	tests := []struct {
		query string
		want  []string
	}{
		{"ip=192.0.2.1", []string{"192.0.2.0/24", "192.0.2.1"}},
		{"ip=192.0.2.5", []string{"192.0.2.0/24"}},
		{"ip=::ffff:192.0.2.5", []string{"192.0.2.0/24"}},
		{"ip=203.0.113.1", nil},
		{"range=192.0.2.0/25", []string{"192.0.2.0/24"}},
		{"range=192.0.0.0/16&contains=false", []string{"192.0.2.0/24", "192.0.2.1"}},
		{"scope=ip&value=192.0.2.1", []string{"192.0.2.1"}},
		{"scope=range", []string{"192.0.2.0/24"}},
		{"value=germany", nil},
		{"type=captcha", []string{"198.51.100.1"}},
		{"origins=crowdsec", []string{"192.0.2.1", "198.51.100.1"}},
		{"", []string{"192.0.2.0/24", "192.0.2.1", "198.51.100.1"}},
	}
	for _, tt := range tests {
		w := f.do(t, "GET", "/v1/decisions?"+tt.query, f.key, "")
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", tt.query, w.Code, w.Body)
		}
		var ds []apiDecision
		if err := json.Unmarshal(w.Body.Bytes(), &ds); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got := values(ds); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, got, tt.want)
		}
		if tt.want == nil && strings.TrimSpace(w.Body.String()) != "null" {
			t.Errorf("%s: empty answer %q, want null", tt.query, w.Body)
		}
	}
}

func TestAuthHeadAndBadQueries(t *testing.T) {
	f := newFixture(t)
	f.ban("192.0.2.1", "ssh", phalanx.OriginLocal, time.Hour)
	for _, path := range []string{"/v1/decisions/stream", "/v1/decisions?ip=192.0.2.1"} {
		for _, key := range []string{"", "wrong", f.key + "x"} {
			w := f.do(t, "GET", path, key, "")
			if w.Code != 403 || strings.TrimSpace(w.Body.String()) != `{"message":"access forbidden"}` {
				t.Errorf("%s key %q: %d %s", path, key, w.Code, w.Body)
			}
		}
		w := f.do(t, "HEAD", path, f.key, "")
		if w.Code != 200 || w.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d %q", path, w.Code, w.Body)
		}
	}
	// HEAD moved no cursor: the first GET is still a full dump.
	if s, _ := f.pull(t, ""); len(s.New) != 1 {
		t.Errorf("GET after HEAD = %+v", s)
	}
	for _, target := range []string{
		"/v1/decisions/stream?startup=maybe",
		"/v1/decisions/stream?startup=true&startup=false",
		"/v1/decisions/stream?scopes=%zz",
		"/v1/decisions/stream?origins=" + strings.Repeat("a,", 40),
		"/v1/decisions/stream?x=" + strings.Repeat("a", maxQueryLen),
		"/v1/decisions?ip=300.1.1.1",
		"/v1/decisions?range=192.0.2.0/33",
		"/v1/decisions?ip=192.0.2.1&range=192.0.2.0/24",
		"/v1/decisions?contains=perhaps",
	} {
		if w := f.do(t, "GET", target, f.key, ""); w.Code != 400 || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
	if w := f.do(t, "POST", "/v1/decisions/stream", f.key, ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	// A deleted key stops working at once.
	if err := f.srv.keys.Delete("fw"); err != nil {
		t.Fatal(err)
	}
	if w := f.do(t, "GET", "/v1/decisions/stream", f.key, ""); w.Code != 403 {
		t.Errorf("deleted key: %d", w.Code)
	}
}

func TestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bouncers.json")
	k, err := OpenKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := k.Add("nginx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Add("nginx"); err == nil {
		t.Error("duplicate name accepted")
	}
	if _, err := k.Add("bad name"); err == nil {
		t.Error("bad name accepted")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), key) {
		t.Error("key stored in clear")
	}
	// Another process (the CLI) adds a key: this one sees it.
	k2, err := OpenKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	key2, err := k2.Add("fw")
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := k.check(key2); !ok || name != "fw" {
		t.Errorf("check(key2) = %q %v", name, ok)
	}
	if name, ok := k.check(key); !ok || name != "nginx" {
		t.Errorf("check(key) = %q %v", name, ok)
	}
	if err := k.pulled("fw", netip.MustParseAddr("192.0.2.3")); err != nil {
		t.Fatal(err)
	}
	bs := k2.List()
	if len(bs) != 2 || bs[0].Name != "fw" || bs[0].LastIP != netip.MustParseAddr("192.0.2.3") {
		t.Errorf("list = %+v", bs)
	}
	if err := k.Delete("nope"); err == nil {
		t.Error("deleted a missing bouncer")
	}
}

func FuzzStreamQuery(f *testing.F) {
	for _, s := range []string{"startup=true", "startup=false&scopes=ip,range", "scopes=IP&origins=crowdsec,cscli",
		"scenarios_containing=ssh&scenarios_not_containing=http", "ip=192.0.2.1", "range=10.0.0.0/8&contains=false",
		"%", "a=b&a=c", "value=::ffff:1.2.3.4", "scope=range&type=ban"} {
		f.Add(s)
	}
	fx := newFixture(&testing.T{})
	fx.ban("192.0.2.1", "ssh", phalanx.OriginLocal, time.Hour)
	fx.ban("10.0.0.0/8", "http", phalanx.OriginAlliance, time.Hour)
	f.Fuzz(func(t *testing.T, q string) {
		sq, err1 := parseStreamQuery(q)
		lq, err2 := parseListQuery(q)
		d := phalanx.Decision{Value: netip.MustParsePrefix("192.0.2.1/32"), Type: phalanx.Ban, Origin: phalanx.OriginLocal}
		if err1 == nil {
			sq.match(&d)
		}
		if err2 == nil {
			lq.match(&d)
		}
		for _, path := range []string{"/v1/decisions/stream", "/v1/decisions"} {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.Path, r.URL.RawQuery = path, q
			r.Header.Set("X-Api-Key", fx.key)
			w := httptest.NewRecorder()
			fx.h.ServeHTTP(w, r)
			switch w.Code {
			case 200:
				var v any
				if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
					t.Fatalf("%s?%s: invalid JSON %v: %s", path, q, err, w.Body)
				}
			case 400:
			default:
				t.Fatalf("%s?%s: status %d", path, q, w.Code)
			}
		}
	})
}

func BenchmarkStreamStartup100k(b *testing.B) {
	f := newFixture(&testing.T{})
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.ds.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, Scenario: "crowdsecurity/ssh-bf",
			Origin: phalanx.OriginAlliance, Duration: time.Hour + time.Duration(i)*time.Millisecond, LastSeen: t0})
	}
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/decisions/stream?startup=true", nil)
		req.Header.Set("X-Api-Key", f.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		b.ReportMetric(float64(n), "bytes/op")
	}
}
