package detect

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

var t0 = time.Date(2026, 2, 12, 14, 0, 0, 0, time.UTC)

// ev is a compact event for table tests: at is the offset from t0.
type ev struct {
	at     time.Duration
	src    string
	kind   phalanx.EventKind
	user   string
	method string
	path   string
	status int
	svc    phalanx.Service
}

func (x ev) event() phalanx.Event {
	svc := x.svc
	if svc == "" {
		svc = phalanx.ServiceSSHD
		if strings.HasPrefix(string(x.kind), "http_") {
			svc = phalanx.ServiceNginx
		}
		if strings.HasPrefix(string(x.kind), "mail_") {
			svc = phalanx.ServiceDovecot
		}
	}
	return phalanx.Event{
		Time: t0.Add(x.at), Source: netip.MustParseAddr(x.src), Service: svc, Kind: x.kind,
		User: x.user, Method: x.method, Path: x.path, Status: x.status,
	}
}

func replay(t testing.TB, e *Engine, evs []ev) []phalanx.Decision {
	t.Helper()
	var out []phalanx.Decision
	for i, x := range evs {
		e2 := x.event()
		out = e.Observe(&e2, fmt.Sprintf("line %d %s %s %s", i+1, x.src, x.kind, x.user), out)
	}
	return out
}

func mustEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func defaults(t testing.TB) *Engine {
	return mustEngine(t, Config{Clock: phalanx.SystemClock{}})
}

func sources(ds []phalanx.Decision) []string {
	var out []string
	for _, d := range ds {
		if s := d.ValueString(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func scenarioNames(ds []phalanx.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Scenario)
	}
	return out
}

// every returns n events of kind from src, step apart, starting at start.
func every(n int, start, step time.Duration, x ev) []ev {
	out := make([]ev, n)
	for i := range out {
		y := x
		y.at = start + time.Duration(i)*step
		if strings.Contains(y.user, "%d") {
			y.user = fmt.Sprintf(y.user, i)
		}
		if strings.Contains(y.path, "%d") {
			y.path = fmt.Sprintf(y.path, i)
		}
		out[i] = y
	}
	return out
}

func leakyScenario() Scenario {
	return Scenario{
		Name: "bf", Type: Leaky,
		Filter:   Filter{Services: []phalanx.Service{phalanx.ServiceSSHD}, Kinds: []phalanx.EventKind{phalanx.KindAuthFailed}},
		Capacity: 5, Leak: Duration(10 * time.Second), Blackhole: Duration(5 * time.Minute),
		Decision: DecisionSpec{Type: phalanx.Ban, Duration: Duration(4 * time.Hour)},
	}
}

func TestLeaky(t *testing.T) {
	fail := ev{src: "192.0.2.1", kind: phalanx.KindAuthFailed, user: "root", method: "password"}
	tests := []struct {
		name string
		evs  []ev
		want int // decisions
		last int // index of the event that fired first
	}{
		{"overflow on capacity+1", every(6, 0, time.Second, fail), 1, 5},
		{"capacity is not enough", every(5, 0, time.Second, fail), 0, 0},
		{"leaks at the leak rate", every(30, 0, 10*time.Second, fail), 0, 0},
		{"a leak slower than the events fills", every(12, 0, 5*time.Second, fail), 1, 9},
		{"blackhole swallows the rest of the attack", every(60, 0, time.Second, fail), 1, 5},
		{"after the blackhole it fires again", append(every(6, 0, time.Second, fail), every(6, 10*time.Minute, time.Second, fail)...), 2, 5},
		{"other kinds do not count", every(10, 0, time.Second, ev{src: "192.0.2.1", kind: phalanx.KindPreauthClose}), 0, 0},
		{"other services do not count", every(10, 0, time.Second, ev{src: "192.0.2.1", kind: phalanx.KindAuthFailed, svc: phalanx.ServiceDovecot}), 0, 0},
		{"sources are separate", append(every(3, 0, time.Second, fail), every(3, 0, time.Second, ev{src: "192.0.2.2", kind: phalanx.KindAuthFailed})...), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEngine(t, Config{Scenarios: []Scenario{leakyScenario()}})
			ds := replay(t, e, tt.evs)
			if len(ds) != tt.want {
				t.Fatalf("got %d decisions %v, want %d", len(ds), scenarioNames(ds), tt.want)
			}
			if tt.want == 0 {
				return
			}
			d := ds[0]
			if d.Events != 6 || d.Type != phalanx.Ban || d.Scenario != "bf" || d.Origin != phalanx.OriginLocal {
				t.Errorf("decision %+v", d)
			}
			if d.Value != netip.MustParsePrefix("192.0.2.1/32") {
				t.Errorf("value %v", d.Value)
			}
			if !d.FirstSeen.Equal(t0.Add(tt.evs[0].at)) || !d.LastSeen.Equal(t0.Add(tt.evs[tt.last].at)) {
				t.Errorf("first %v last %v", d.FirstSeen, d.LastSeen)
			}
			if len(d.Evidence) != evidencePerBucket || !strings.HasPrefix(d.Evidence[len(d.Evidence)-1], fmt.Sprintf("line %d ", tt.last+1)) {
				t.Errorf("evidence %q", d.Evidence)
			}
		})
	}
}

func TestTrigger(t *testing.T) {
	sc := Scenario{Name: "exploit", Type: Trigger, Filter: Filter{Kinds: []phalanx.EventKind{phalanx.KindHTTPExploit}},
		Blackhole: Duration(time.Minute), Decision: DecisionSpec{Type: phalanx.Ban, Duration: Duration(time.Hour)}}
	e := mustEngine(t, Config{Scenarios: []Scenario{sc}, Escalation: Escalation{Off: true}})
	x := ev{src: "198.51.100.7", kind: phalanx.KindHTTPExploit, path: "/../../etc/passwd"}
	// Three in the blackhole, then one after it.
	ds := replay(t, e, append(every(3, 0, time.Second, x), every(1, 2*time.Minute, 0, x)...))
	if len(ds) != 2 || ds[0].Events != 1 || ds[1].Duration != time.Hour || len(ds[0].Evidence) != 1 {
		t.Fatalf("decisions %+v", ds)
	}
	if got := e.Stats().Decisions["exploit"]; got != 2 {
		t.Errorf("stats %d", got)
	}
}

func TestDistinct(t *testing.T) {
	probe := Scenario{Name: "probe", Type: Distinct, Distinct: DistinctPath,
		Filter:   Filter{Kinds: []phalanx.EventKind{phalanx.KindHTTPNotFound}, ExcludePathSuffixes: []string{".png"}},
		Capacity: 10, Leak: Duration(10 * time.Second),
		Decision: DecisionSpec{Type: phalanx.Ban, Duration: Duration(time.Hour)}}
	x := ev{src: "203.0.113.9", kind: phalanx.KindHTTPNotFound, status: 404}
	tests := []struct {
		name string
		evs  []ev
		want int
	}{
		{"11 distinct paths", every(11, 0, 100*time.Millisecond, ev{src: x.src, kind: x.kind, path: "/p%d"}), 1},
		{"10 distinct paths", every(10, 0, 100*time.Millisecond, ev{src: x.src, kind: x.kind, path: "/p%d"}), 0},
		{"one path many times", every(100, 0, 100*time.Millisecond, ev{src: x.src, kind: x.kind, path: "/same"}), 0},
		{"query strings are the same path", every(100, 0, 100*time.Millisecond, ev{src: x.src, kind: x.kind, path: "/search?q=%d"}), 0},
		{"excluded suffixes", every(50, 0, 100*time.Millisecond, ev{src: x.src, kind: x.kind, path: "/img/%d.PNG"}), 0},
		{"distinct paths at crawler pace", every(200, 0, 15*time.Second, ev{src: x.src, kind: x.kind, path: "/old/%d"}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEngine(t, Config{Scenarios: []Scenario{probe}})
			ds := replay(t, e, tt.evs)
			if len(ds) != tt.want {
				t.Fatalf("got %d decisions, want %d", len(ds), tt.want)
			}
			if tt.want > 0 && ds[0].Events != 11 {
				t.Errorf("events %d", ds[0].Events)
			}
		})
	}
}

// TestWindow is CrowdSec's ssh-time-based-bf hub test: four distinct
// invalid users within an hour, and nothing for the near misses.
func TestWindow(t *testing.T) {
	iv := func(at time.Duration, src, user string) ev {
		return ev{at: at, src: src, kind: phalanx.KindInvalidUser, user: user}
	}
	h := time.Hour
	evs := []ev{
		iv(0, "10.0.0.100", "admin"), iv(6*time.Minute, "10.0.0.100", "test"), iv(12*time.Minute, "10.0.0.100", "guest"),
		iv(h, "10.0.0.101", "root"), iv(h+20*time.Minute, "10.0.0.101", "mysql"), iv(h+40*time.Minute, "10.0.0.101", "oracle"), iv(2*h, "10.0.0.101", "postgres"),
		iv(2*h+30*time.Minute, "10.0.0.102", "admin"), iv(2*h+40*time.Minute, "10.0.0.102", "test"),
		{at: 2*h + 45*time.Minute, src: "10.0.0.102", kind: phalanx.KindAuthSuccess, user: "test", method: "password"},
		iv(2*h+50*time.Minute, "10.0.0.102", "guest"),
		iv(3*h, "10.0.0.103", "root"), iv(3*h+2*time.Second, "10.0.0.103", "admin"), iv(3*h+4*time.Second, "10.0.0.103", "test"), iv(4*h+4*time.Second, "10.0.0.103", "guest"),
	}
	ds := replay(t, defaults(t), evs)
	if got := sources(ds); !slices.Equal(got, []string{"10.0.0.101"}) {
		t.Fatalf("decided %v (%v), want only 10.0.0.101", got, scenarioNames(ds))
	}
	if ds[0].Scenario != "ssh-user-enum" || ds[0].Events != 4 {
		t.Errorf("decision %+v", ds[0])
	}
}

func TestEscalation(t *testing.T) {
	fail := ev{src: "192.0.2.1", kind: phalanx.KindAuthFailed}
	var evs []ev
	// Each attack comes back after the previous ban ended; the last one
	// after the memory has passed starts over.
	for _, h := range []time.Duration{0, 5, 14, 31, 56, 130} {
		evs = append(evs, every(6, h*time.Hour, time.Second, fail)...)
	}
	// Attacks while a ban is in force are the same offence.
	evs = append(evs, every(6, 131*time.Hour, time.Second, fail)...)
	sc := leakyScenario()
	e := mustEngine(t, Config{Scenarios: []Scenario{sc}, Escalation: Escalation{Factor: 2, Memory: 48 * time.Hour, Max: 24 * time.Hour}})
	ds := replay(t, e, evs)
	var got []time.Duration
	for _, d := range ds {
		got = append(got, d.Duration)
	}
	want := []time.Duration{4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 24 * time.Hour, 4 * time.Hour, 4 * time.Hour}
	if !slices.Equal(got, want) {
		t.Fatalf("durations %v, want %v", got, want)
	}

	// Two scenarios firing on one line are one offence.
	e = defaults(t)
	ds = replay(t, e, every(6, 0, 500*time.Millisecond, ev{src: "35.188.49.176", kind: phalanx.KindInvalidUser, user: "pascal%d"}))
	if len(ds) != 2 || ds[0].Duration != 4*time.Hour || ds[1].Duration != 4*time.Hour {
		t.Fatalf("decisions %v", ds)
	}
}

func TestAllowlist(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		src     string
		decided bool
	}{
		{"not allowlisted", Config{}, "192.0.2.1", true},
		{"configured prefix", Config{Allowlist: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "192.0.2.1", false},
		{"mapped prefix matches IPv4", Config{Allowlist: []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.0/120")}}, "192.0.2.1", false},
		{"IPv4-mapped source", Config{Allowlist: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "::ffff:192.0.2.1", false},
		{"loopback without builtin", Config{}, "127.0.0.1", true},
		{"loopback", Config{BuiltinAllowlist: true}, "127.0.0.1", false},
		{"IPv6 loopback", Config{BuiltinAllowlist: true}, "::1", false},
		{"link-local", Config{BuiltinAllowlist: true}, "fe80::1", false},
		{"IPv4 link-local", Config{BuiltinAllowlist: true}, "169.254.1.1", false},
		{"unspecified", Config{BuiltinAllowlist: true}, "0.0.0.0", false},
		{"builtin does not cover private ranges", Config{BuiltinAllowlist: true}, "10.1.2.3", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Scenarios = []Scenario{leakyScenario()}
			e := mustEngine(t, tt.cfg)
			ds := replay(t, e, every(6, 0, time.Second, ev{src: tt.src, kind: phalanx.KindAuthFailed}))
			if (len(ds) > 0) != tt.decided {
				t.Fatalf("decisions %v, want decided=%v", ds, tt.decided)
			}
			if !tt.decided && e.Stats().Allowlisted != 6 {
				t.Errorf("allowlisted %d", e.Stats().Allowlisted)
			}
		})
	}
}

func TestRange(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: []Scenario{leakyScenario()}, Escalation: Escalation{Off: true}})
	var evs []ev
	for i, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::1", "2001:db8:1:3::9", "2001:db8:1:2:ffff::3"} {
		evs = append(evs, every(6, time.Duration(i)*10*time.Minute, time.Second, ev{src: a, kind: phalanx.KindAuthFailed})...)
	}
	ds := replay(t, e, evs)
	var ranges []phalanx.Decision
	for _, d := range ds {
		if d.Scope() == phalanx.ScopeRange {
			ranges = append(ranges, d)
		}
	}
	if len(ds) != 6 || len(ranges) != 1 {
		t.Fatalf("decisions %v", ds)
	}
	r := ranges[0]
	if r.Value != netip.MustParsePrefix("2001:db8:1:2::/64") || r.Events != 3 || len(r.Evidence) != 3 || r.Type != phalanx.Ban {
		t.Errorf("range %+v", r)
	}
	if e.Stats().RangeDecisions != 1 {
		t.Errorf("stats %+v", e.Stats())
	}

	// Out of the window, the addresses do not add up.
	e = mustEngine(t, Config{Scenarios: []Scenario{leakyScenario()}, RangeWindow: 30 * time.Minute})
	evs = nil
	for i := range 3 {
		evs = append(evs, every(6, time.Duration(i)*20*time.Minute, time.Second, ev{src: fmt.Sprintf("2001:db8::%d", i+1), kind: phalanx.KindAuthFailed})...)
	}
	if ds := replay(t, e, evs); len(ds) != 3 {
		t.Fatalf("decisions %v", ds)
	}
}

func TestGroupPrefix64(t *testing.T) {
	sc := leakyScenario()
	sc.Group = GroupPrefix64
	e := mustEngine(t, Config{Scenarios: []Scenario{sc}})
	var evs []ev
	for i := range 6 {
		evs = append(evs, ev{at: time.Duration(i) * time.Second, src: fmt.Sprintf("2001:db8:5:6::%x", i+1), kind: phalanx.KindAuthFailed})
	}
	ds := replay(t, e, evs)
	if len(ds) != 1 || ds[0].Value != netip.MustParsePrefix("2001:db8:5:6::/64") {
		t.Fatalf("decisions %v", ds)
	}
}

// TestDefaultsAttacks: attacks the default scenarios must catch.
func TestDefaultsAttacks(t *testing.T) {
	src := "203.0.113.50"
	tests := []struct {
		name string
		evs  []ev
		want string // a scenario that must fire
	}{
		{"fast password guessing", every(6, 0, time.Second, ev{src: src, kind: phalanx.KindAuthFailed, user: "root", method: "password"}), "ssh-bf"},
		{"hub ssh-slow-bf: same invalid user every 30s", every(22, 0, 30*time.Second, ev{src: src, kind: phalanx.KindInvalidUser, user: "hadoop"}), "ssh-slow-bf"},
		{"a guess every 5 minutes for hours", every(40, 0, 5*time.Minute, ev{src: src, kind: phalanx.KindAuthFailed, user: "root", method: "password"}), "ssh-slow-bf"},
		{"a guess every 8 minutes for a day", every(180, 0, 8*time.Minute, ev{src: src, kind: phalanx.KindAuthFailed, user: "admin", method: "keyboard-interactive"}), "ssh-slow-bf"},
		{"user enumeration", every(4, 0, 5*time.Minute, ev{src: src, kind: phalanx.KindInvalidUser, user: "u%d"}), "ssh-user-enum"},
		{"key spraying", every(5, 0, time.Minute, ev{src: src, kind: phalanx.KindAuthFailed, user: "u%d", method: "publickey"}), "ssh-key-spray"},
		{"preauth probing", every(6, 0, time.Second, ev{src: src, kind: phalanx.KindPreauthClose}), "ssh-probing"},
		{"banner exchange", every(6, 0, 0, ev{src: src, kind: phalanx.KindBannerError}), "ssh-probing"},
		{"kex failures", every(4, 0, 0, ev{src: src, kind: phalanx.KindKexFailure}), "ssh-kex-bf"},
		{"regreSSHion timeouts", every(4, 0, 30*time.Second, ev{src: src, kind: phalanx.KindAuthTimeout}), "ssh-timeout"},
		{"tcpwrappers refused", every(1, 0, 0, ev{src: src, kind: phalanx.KindConnRefused}), "ssh-refused-conn"},
		{"ssh test user", every(1, 0, 0, ev{src: src, kind: phalanx.KindInvalidUser, user: "crowdsec-test-NtktlJHV4TfBSK3wvlhiOBnl"}), "ssh-test"},
		{"http probing", every(11, 0, 0, ev{src: src, kind: phalanx.KindHTTPNotFound, path: "/x%d.php", status: 404}), "http-probing"},
		{"malformed", every(11, 0, 700*time.Millisecond, ev{src: src, kind: phalanx.KindHTTPMalformed, status: 400}), "http-malformed"},
		{"sensitive files", every(5, 0, 0, ev{src: src, kind: phalanx.KindHTTPSensitive, path: "/.f%d", status: 404}), "http-sensitive-files"},
		{"admin interfaces", []ev{
			{src: src, kind: phalanx.KindHTTPNotFound, path: "/phpmyadmin2017/index.php?lang=en", status: 404},
			{src: src, kind: phalanx.KindHTTPNotFound, path: "/administrator/db/index.php?lang=en", status: 404},
			{src: src, kind: phalanx.KindHTTPNotFound, path: "/+CSCOE+/", status: 404},
		}, "http-admin-probing"},
		{"exploit", every(1, 0, 0, ev{src: src, kind: phalanx.KindHTTPExploit, path: "/cgi-bin/.%2e/.%2e/bin/sh"}), "http-exploit"},
		{"bad agent", every(2, 0, 0, ev{src: src, kind: phalanx.KindHTTPBadAgent, path: "/"}), "http-bad-user-agent"},
		{"open proxy", every(1, 0, 0, ev{src: src, kind: phalanx.KindHTTPOpenProxy}), "http-open-proxy"},
		{"http auth", every(6, 0, 0, ev{src: src, kind: phalanx.KindHTTPAuthFailed, user: "foo"}), "http-auth-bf"},
		{"rate limited", every(6, 0, 0, ev{src: src, kind: phalanx.KindHTTPRateLimited}), "http-rate-limited"},
		{"http test path", every(1, 0, 0, ev{src: src, kind: phalanx.KindHTTPNotFound, path: "/crowdsec-test-NtktlJHV4TfBSK3wvlhiOBnl", status: 404}), "http-test"},
		{"mail auth", every(6, 0, 5*time.Second, ev{src: src, kind: phalanx.KindMailAuthFailed, user: "info"}), "mail-auth-bf"},
		{"mail spraying", every(5, 0, 5*time.Minute, ev{src: src, kind: phalanx.KindMailAuthFailed, user: "u%d"}), "mail-user-spray"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := replay(t, defaults(t), tt.evs)
			if !slices.Contains(scenarioNames(ds), tt.want) {
				t.Fatalf("decisions by %v, want %s", scenarioNames(ds), tt.want)
			}
		})
	}
}

// TestDefaultsLegit: legitimate traffic the default scenarios must leave
// alone.
func TestDefaultsLegit(t *testing.T) {
	const office = "198.51.100.20"
	tests := []struct {
		name string
		evs  []ev
	}{
		{"typos then login, every morning for a week", func() []ev {
			var out []ev
			for d := range 7 {
				day := time.Duration(d) * 24 * time.Hour
				out = append(out, every(3, day, 4*time.Second, ev{src: office, kind: phalanx.KindAuthFailed, user: "alice", method: "password"})...)
				out = append(out, ev{at: day + 15*time.Second, src: office, kind: phalanx.KindAuthSuccess, user: "alice", method: "password"})
			}
			return out
		}()},
		{"an office behind one NAT address", func() []ev {
			var out []ev
			// 40 users, 8 hours: each has 3 typos before logging in, at
			// some point, plus an occasional mistyped user name.
			for u := range 40 {
				at := time.Duration(u) * 12 * time.Minute
				user := fmt.Sprintf("user%d", u)
				for k := range 3 {
					out = append(out, ev{at: at + time.Duration(k)*5*time.Second, src: office, kind: phalanx.KindAuthFailed, user: user, method: "password"})
				}
				out = append(out, ev{at: at + 20*time.Second, src: office, kind: phalanx.KindAuthSuccess, user: user, method: "password"})
				// Every fourth user also gives up once: an unforgiven failure.
				if u%4 == 0 {
					out = append(out, ev{at: at + 6*time.Minute, src: office, kind: phalanx.KindAuthFailed, user: user, method: "password"})
				}
				if u%10 == 0 {
					out = append(out, ev{at: at + 7*time.Minute, src: office, kind: phalanx.KindInvalidUser, user: user + "x"})
				}
			}
			slices.SortStableFunc(out, func(a, b ev) int { return int(a.at - b.at) })
			return out
		}()},
		{"a deploy job logging in all day", every(2000, 0, 30*time.Second, ev{src: office, kind: phalanx.KindAuthSuccess, user: "deploy", method: "publickey"})},
		{"an uptime checker", func() []ev {
			var out []ev
			out = append(out, every(2880, 0, 30*time.Second, ev{src: "192.0.2.99", kind: phalanx.KindPreauthClose})...) // sshd: "Did not receive identification string"
			out = append(out, every(2880, time.Second, 30*time.Second, ev{src: "192.0.2.99", kind: phalanx.KindHTTPRequest, path: "/health", status: 200})...)
			slices.SortStableFunc(out, func(a, b ev) int { return int(a.at - b.at) })
			return out
		}()},
		{"ssh-keyscan from a deploy job", every(4, 0, 100*time.Millisecond, ev{src: office, kind: phalanx.KindPreauthClose})},
		{"a crawler: robots.txt, then distinct 404s at crawler pace", func() []ev {
			out := []ev{{src: "192.0.2.200", kind: phalanx.KindHTTPNotFound, path: "/robots.txt", status: 404}}
			for i := range 3000 {
				x := ev{at: time.Duration(i+1) * 2 * time.Second, src: "192.0.2.200", kind: phalanx.KindHTTPRequest, path: fmt.Sprintf("/page/%d", i), status: 200}
				if i%8 == 0 {
					x.kind, x.status, x.path = phalanx.KindHTTPNotFound, 404, fmt.Sprintf("/gone/%d", i)
				}
				out = append(out, x)
			}
			return out
		}()},
		{"a page with broken images", every(30, 0, 50*time.Millisecond, ev{src: office, kind: phalanx.KindHTTPNotFound, path: "/img/%d.jpg", status: 404})},
		{"a misconfigured job whose key is rejected every few minutes", every(500, 0, 3*time.Minute, ev{src: office, kind: phalanx.KindAuthFailed, user: "backup", method: "publickey"})},
		{"an agent offering six keys every few minutes", func() []ev {
			var out []ev
			for r := range 100 {
				out = append(out, every(6, time.Duration(r)*3*time.Minute, 50*time.Millisecond, ev{src: office, kind: phalanx.KindAuthFailed, user: "backup", method: "publickey"})...)
			}
			return out
		}()},
		{"a phone with a stale mail password", func() []ev {
			var out []ev
			for r := range 100 {
				out = append(out, every(2, time.Duration(r)*5*time.Minute, time.Second, ev{src: office, kind: phalanx.KindMailAuthFailed, user: "bob"})...)
			}
			return out
		}()},
		{"hub sshd-logs-fp: nothing hostile", nil},
		{"hub nginx_req_limit: 3 rate-limited requests", every(3, 0, 0, ev{src: "192.168.1.1", kind: phalanx.KindHTTPRateLimited})},
		{"a single bad agent request", every(1, 0, 0, ev{src: office, kind: phalanx.KindHTTPBadAgent})},
		{"admin of the site opening the admin page", every(50, 0, time.Second, ev{src: office, kind: phalanx.KindHTTPSensitive, path: "/wp-login.php", status: 200})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ds := replay(t, defaults(t), tt.evs); len(ds) > 0 {
				t.Fatalf("decided %v by %v", sources(ds), scenarioNames(ds))
			}
		})
	}
}

// TestSuccessDoesNotWhitewash: an attacker who owns one account and logs
// in with it between guesses on other accounts is still caught, by the
// fast bucket and by the slow one.
func TestSuccessDoesNotWhitewash(t *testing.T) {
	const src = "203.0.113.77"
	for _, step := range []time.Duration{2 * time.Second, 4 * time.Minute} {
		var evs []ev
		for i := range 200 {
			at := time.Duration(i) * step
			evs = append(evs, ev{at: at, src: src, kind: phalanx.KindAuthFailed, user: "root", method: "password"})
			if i%2 == 1 {
				evs = append(evs, ev{at: at + step/2, src: src, kind: phalanx.KindAuthSuccess, user: "bob", method: "password"})
			}
		}
		if ds := replay(t, defaults(t), evs); len(ds) == 0 {
			t.Errorf("step %v: not decided", step)
		}
	}
	// The same user's success forgives at most the last few failures:
	// guessing alice 20 times then succeeding is still decided on the way.
	evs := every(20, 0, time.Second, ev{src: src, kind: phalanx.KindAuthFailed, user: "alice", method: "password"})
	if ds := replay(t, defaults(t), evs); len(ds) == 0 {
		t.Error("fast guessing of one user not decided")
	}
}

// TestSuccessCalms: two failures, a success, then more typos later do not
// add up to the failures before the success.
func TestSuccessCalms(t *testing.T) {
	const src = "198.51.100.30"
	fail := ev{src: src, kind: phalanx.KindAuthFailed, user: "alice", method: "password"}
	ok := ev{src: src, kind: phalanx.KindAuthSuccess, user: "alice", method: "password"}
	var evs []ev
	// Within eight seconds: 3 failures, success, 3 failures, success: six
	// failures, which would fill ssh-bf without the successes.
	for r := range 2 {
		base := time.Duration(r) * 4 * time.Second
		evs = append(evs, every(3, base, time.Second, fail)...)
		ok.at = base + 3*time.Second
		evs = append(evs, ok)
	}
	if ds := replay(t, defaults(t), evs); len(ds) > 0 {
		t.Fatalf("decided by %v", scenarioNames(ds))
	}
	// Without the successes the same failures are decided.
	var fails []ev
	for _, x := range evs {
		if x.kind == phalanx.KindAuthFailed {
			fails = append(fails, x)
		}
	}
	if ds := replay(t, defaults(t), fails); len(ds) == 0 {
		t.Fatal("failures without successes not decided")
	}
}

func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("2M events")
	}
	const cap = 100_000
	e := mustEngine(t, Config{Scenarios: []Scenario{leakyScenario()}, MaxSources: cap})
	var x phalanx.Event
	x.Service, x.Kind, x.Method = phalanx.ServiceSSHD, phalanx.KindAuthFailed, "password"
	var ds []phalanx.Decision
	for i := range 2_000_000 {
		x.Time = t0.Add(time.Duration(i) * time.Microsecond)
		x.Source = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ds = e.Observe(&x, "", ds[:0])
		if len(ds) > 0 {
			t.Fatal("a single failure decided")
		}
	}
	s := e.Stats()
	if s.Buckets > cap || len(e.bk) > cap || len(e.idx) > cap || s.Evictions != 2_000_000-cap {
		t.Fatalf("stats %+v, slab %d", s, len(e.bk))
	}
	// The most recent sources are kept: five more failures from the last
	// one decide it.
	for range 5 {
		ds = e.Observe(&x, "", ds)
	}
	if len(ds) != 1 {
		t.Fatalf("last source lost: %v", ds)
	}
}

func TestNoTimeUsesClock(t *testing.T) {
	clk := fixedClock(t0)
	e := mustEngine(t, Config{Scenarios: []Scenario{leakyScenario()}, Clock: clk})
	x := phalanx.Event{Source: netip.MustParseAddr("192.0.2.1"), Service: phalanx.ServiceSSHD, Kind: phalanx.KindAuthFailed}
	var ds []phalanx.Decision
	for range 6 {
		ds = e.Observe(&x, "", ds)
	}
	if len(ds) != 1 || !ds[0].LastSeen.Equal(t0) {
		t.Fatalf("decisions %v", ds)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestNewErrors(t *testing.T) {
	bad := leakyScenario()
	bad.Capacity = 0
	for name, cfg := range map[string]Config{
		"invalid scenario": {Scenarios: []Scenario{bad}},
		"duplicate":        {Scenarios: []Scenario{leakyScenario(), leakyScenario()}},
		"factor below 1":   {Escalation: Escalation{Factor: 0.5}},
		"invalid prefix":   {Allowlist: []netip.Prefix{{}}},
	} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "detect: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// benchEvents is a non-firing mix: successes, ordinary requests, spaced
// failures and 404s from a few thousand sources.
func benchEvents() []phalanx.Event {
	var out []phalanx.Event
	for i := range 4096 {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		at := t0.Add(time.Duration(i) * time.Minute)
		var x phalanx.Event
		switch i % 4 {
		case 0:
			x = phalanx.Event{Service: phalanx.ServiceSSHD, Kind: phalanx.KindAuthFailed, User: "root", Method: "password"}
		case 1:
			x = phalanx.Event{Service: phalanx.ServiceSSHD, Kind: phalanx.KindAuthSuccess, User: "deploy", Method: "publickey"}
		case 2:
			x = phalanx.Event{Service: phalanx.ServiceNginx, Kind: phalanx.KindHTTPNotFound, Path: "/favicon.ico", Status: 404, Method: "GET"}
		case 3:
			x = phalanx.Event{Service: phalanx.ServiceNginx, Kind: phalanx.KindHTTPRequest, Path: "/", Status: 200, Method: "GET"}
		}
		x.Source, x.Time = src, at
		out = append(out, x)
	}
	return out
}

func BenchmarkObserve(b *testing.B) {
	e := mustEngine(b, Config{})
	evs := benchEvents()
	const line = "Feb 12 14:10:21 host sshd[16378]: Failed password for root from 198.51.0.1 port 53502 ssh2"
	var ds []phalanx.Decision
	for i := range evs { // warm up: buckets, evidence ring
		ds = e.Observe(&evs[i], line, ds[:0])
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		x := &evs[i%len(evs)]
		// Each round is an hour later, so the buckets leak between rounds.
		x.Time = x.Time.Add(time.Duration(len(evs)) * time.Minute)
		ds = e.Observe(x, line, ds[:0])
		if len(ds) > 0 {
			b.Fatalf("fired: %v", ds)
		}
		i++
	}
}

// BenchmarkFlood measures the memory per bucket at the cap: a flood of
// distinct sources against a 100k cap.
func BenchmarkFlood(b *testing.B) {
	const cap = 100_000
	var x phalanx.Event
	x.Service, x.Kind, x.Method = phalanx.ServiceSSHD, phalanx.KindInvalidUser, "password"
	x.User = "admin"
	const line = "Feb 12 14:10:21 host sshd[16378]: Invalid user admin from 10.1.2.3 port 53502"
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := mustEngine(b, Config{MaxSources: cap})
		var ds []phalanx.Decision
		for i := range 4 * cap {
			x.Time = t0.Add(time.Duration(i) * time.Millisecond)
			x.Source = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			ds = e.Observe(&x, line, ds[:0])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Stats().Buckets != cap {
			b.Fatalf("buckets %d", e.Stats().Buckets)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/cap, "B/bucket")
		runtime.KeepAlive(e)
	}
}
