package member

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/source/file"
)

const deadline = 20 * time.Second

type running struct {
	m      *Member
	cancel context.CancelFunc
	done   chan error
}

// stop ends the member and returns what Run returned.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not end after its context was cancelled")
	}
	r.done = nil
}

func start(t *testing.T, dir string, setup ...func(*Member)) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(m)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		if r.done != nil {
			r.stop(t)
		}
	})
	select {
	case <-m.ready:
	case err := <-r.done:
		t.Fatalf("Run ended before it was ready: %v", err)
	case <-time.After(deadline):
		t.Fatal("member not ready")
	}
	return r
}

// waitFor waits for a change of op about value in a subscription.
func waitFor(t *testing.T, ch <-chan decisions.Change, op decisions.Op, value netip.Prefix) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case c := <-ch:
			if c.Op == op && c.Decision.Value == value {
				return
			}
		case <-timeout:
			t.Fatalf("no %s of %s within %v", op, value, deadline)
		}
	}
}

func values(ds []phalanx.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ValueString())
	}
	slices.Sort(out)
	return out
}

func TestAllianceOfTwo(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	d1 := filepath.Join(t.TempDir(), "founder")
	d2 := filepath.Join(t.TempDir(), "second")
	info1, err := Init(d1, "test alliance", "127.0.0.1:0", []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(d1, "again", "127.0.0.1:0", nil, now); err == nil {
		t.Fatal("Init over an existing member succeeded")
	}
	if fi, err := os.Stat(filepath.Join(d1, fileIdentity)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	m1 := start(t, d1)

	tok, err := Invite(d1, ledger.RoleMember, "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	info2, err := Join(tok, d2, "second", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if info2.Alliance != info1.Alliance || info2.Hub != info1.Hub || info2.ID == info1.ID {
		t.Fatalf("join: %+v, founder %+v", info2, info1)
	}
	m2 := start(t, d2)

	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	value := netip.MustParsePrefix("192.0.2.7/32")
	changes, unsub := m2.m.Decisions().Subscribe(256)
	defer unsub()
	changes1, unsub1 := m1.m.Decisions().Subscribe(256)
	defer unsub1()
	began := time.Now()
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.7", Duration: "1h", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, value)
	t.Logf("manual decision on member 1 in force at member 2 after %v", time.Since(began))
	// Each member applies the ledger on its own: member 1 may be a moment
	// behind member 2.
	waitFor(t, changes1, decisions.Added, value)

	list, err := c1.Decisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Value != "192.0.2.7" || len(list[0].Reporters) != 1 || list[0].Reporters[0] != info1.ID {
		t.Fatalf("member 1 decisions: %+v", list)
	}

	began = time.Now()
	if _, err := c1.DeleteDecision(ctx, "192.0.2.7", "test over"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Deleted, value)
	t.Logf("lift on member 1 in force at member 2 after %v", time.Since(began))

	// One decision that stays, for the restart below.
	kept := netip.MustParsePrefix("192.0.2.8/32")
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.8", Reason: "stays"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, kept)
	waitFor(t, changes1, decisions.Added, kept)

	members, err := c1.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Fatalf("members: %+v", members)
	}
	ch, err := c1.Charter(ctx)
	if err != nil || ch.Explain == "" || ch.Charter.Name != "test alliance" {
		t.Fatalf("charter: %+v %v", ch, err)
	}
	h, err := c1.Health(ctx)
	if err != nil || !h.OK || h.Member != info1.ID || h.Decisions != 1 {
		t.Fatalf("health: %+v %v", h, err)
	}

	// A ceasefire over the kept decision stands member 2 down from it; its
	// end restores it.
	cf, err := c1.StartCeasefire(ctx, CeasefireRequest{For: "1h", Scope: "192.0.2.0/24", Reason: "false positive?"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Deleted, kept)
	if _, err := c1.EndCeasefire(ctx, cf.Ceasefire); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, kept)

	// A drill through member 1 is confirmed by both.
	dr, err := c1.Drill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dr.Members) != 2 || !dr.Members[0].OK || !dr.Members[1].OK {
		t.Fatalf("drill: %+v", dr)
	}
	t.Logf("drill of two: p50 %.2f ms, p99 %.2f ms", dr.P50MS, dr.P99MS)

	// The founder restarted restores from its snapshot and ends with the
	// same set as member 2.
	want := values(m2.m.Decisions().List())
	m1.stop(t)
	if _, err := os.Stat(filepath.Join(d1, fileSnapshot)); err != nil {
		t.Fatalf("no snapshot after stopping: %v", err)
	}
	m1 = start(t, d1)
	if m1.m.restored == 0 {
		t.Error("the restarted founder did not restore from its snapshot")
	}
	if got := values(m1.m.Decisions().List()); !slices.Equal(got, want) {
		t.Errorf("after restart: %v, member 2 has %v", got, want)
	}
}

func TestDrill(t *testing.T) {
	now := time.Now()
	d1 := filepath.Join(t.TempDir(), "founder")
	if _, err := Init(d1, "drill", "127.0.0.1:0", nil, now); err != nil {
		t.Fatal(err)
	}
	start(t, d1)
	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c1.Drill(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 1 || !res.Members[0].OK {
		t.Fatalf("drill: %+v", res)
	}
	if !drillRange.Contains(netip.MustParseAddr(res.Value)) {
		t.Errorf("drill from %s, outside %s", res.Value, drillRange)
	}
	t.Logf("drill: p50 %.2f ms, p99 %.2f ms", res.P50MS, res.P99MS)
}

func TestAPIRejects(t *testing.T) {
	d1 := filepath.Join(t.TempDir(), "founder")
	if _, err := Init(d1, "api", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, d1)
	c, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"value":"192.0.2.1","reason":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "GET", "/v1/decisions", "", "", http.StatusUnauthorized},
		{"wrong token", "GET", "/v1/decisions", "Bearer nope", "", http.StatusUnauthorized},
		{"wrong token write", "POST", "/v1/decisions", "Bearer nope", `{"value":"192.0.2.1","reason":"x"}`, http.StatusUnauthorized},
		{"not JSON", "POST", "/v1/decisions", c.token, `{"value":`, http.StatusBadRequest},
		{"unknown field", "POST", "/v1/decisions", c.token, `{"value":"192.0.2.1","reason":"x","evil":1}`, http.StatusBadRequest},
		{"bad value", "POST", "/v1/decisions", c.token, `{"value":"example.com","reason":"x"}`, http.StatusBadRequest},
		{"bad type", "POST", "/v1/decisions", c.token, `{"value":"192.0.2.1","type":"nuke","reason":"x"}`, http.StatusBadRequest},
		{"bad duration", "POST", "/v1/decisions", c.token, `{"value":"192.0.2.1","duration":"-1h","reason":"x"}`, http.StatusBadRequest},
		{"no reason", "POST", "/v1/decisions", c.token, `{"value":"192.0.2.1"}`, http.StatusBadRequest},
		{"too big", "POST", "/v1/decisions", c.token, big, http.StatusRequestEntityTooLarge},
		{"bad lift", "DELETE", "/v1/decisions?value=nope", c.token, "", http.StatusBadRequest},
		{"bad ceasefire", "POST", "/v1/ceasefire", c.token, `{"for":"soon","reason":"x"}`, http.StatusBadRequest},
		{"ceasefire without id", "DELETE", "/v1/ceasefire", c.token, "", http.StatusBadRequest},
		{"read", "GET", "/v1/health", c.token, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, c.base+tc.path, bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				if !strings.HasPrefix(tc.token, "Bearer ") {
					tc.token = "Bearer " + tc.token
				}
				req.Header.Set("Authorization", tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(d1, fileAPIToken)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("api.token: %v %v", fi, err)
	}
}

func TestOpenRefusesNonMember(t *testing.T) {
	_, err := Open(t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "alliance init") {
		t.Fatalf("Open of an empty directory: %v", err)
	}
	if _, err := Join("not-a-token", t.TempDir(), "x", nil, time.Now()); err == nil {
		t.Fatal("Join with a garbage token succeeded")
	}
	if _, err := Client(t.TempDir()); err == nil {
		t.Fatal("Client of a directory with no running member succeeded")
	}
}

// sshdLines writes n failed logins from src, dated now, to path.
func sshdLines(t *testing.T, path string, src string, n int) {
	t.Helper()
	var b strings.Builder
	now := time.Now()
	for i := range n {
		fmt.Fprintf(&b, "%s host sshd[%d]: Failed password for root from %s port %d ssh2\n",
			now.Format(time.Stamp), 1000+i, src, 40000+i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// twoWithLogs starts an alliance of two members whose logs each hold n
// failed logins from src, and returns a client of the founder.
func twoWithLogs(t *testing.T, src string, n int) *APIClient {
	t.Helper()
	now := time.Now()
	d1 := filepath.Join(t.TempDir(), "founder")
	d2 := filepath.Join(t.TempDir(), "second")
	if _, err := Init(d1, "detect", "127.0.0.1:0", nil, now); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	for i, d := range []string{d1, d2} {
		log := filepath.Join(logs, fmt.Sprintf("auth%d.log", i))
		sshdLines(t, log, src, n)
		if i == 1 {
			tok, err := Invite(d1, ledger.RoleMember, "", time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Join(tok, d2, "second", nil, now); err != nil {
				t.Fatal(err)
			}
		}
		start(t, d, func(m *Member) {
			m.AddSource(file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true})
			m.sightingEvery = 20 * time.Millisecond
		})
	}
	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	return c1
}

// waitDecision polls the API until value is an alliance decision by two
// reporters of scenario.
func waitDecision(t *testing.T, c *APIClient, value, scenario string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		list, err := c.Decisions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Value == value && list[0].Scenario == scenario && len(list[0].Reporters) == 2 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no alliance decision of %s by two members within %v: %+v", scenario, deadline, list)
		}
		time.Sleep(20 * time.Millisecond) // polling a network event, with a deadline
	}
}

// TestReportsCorroborated: both members see the same brute force in their
// own logs; each enforces it at once and reports it, and the alliance
// decision names both reporters.
func TestReportsCorroborated(t *testing.T) {
	c1 := twoWithLogs(t, "198.51.100.23", 12)
	waitDecision(t, c1, "198.51.100.23", "ssh-bf")
}

// TestCollectiveSightings: each member sees three failed logins, under its
// own threshold; their sightings add up to the alliance's (six events from
// two members).
func TestCollectiveSightings(t *testing.T) {
	c1 := twoWithLogs(t, "198.51.100.24", 3)
	waitDecision(t, c1, "198.51.100.24", "collective:ssh")
}

// TestMetricsEndpoint: /metrics, behind the token like every route,
// exports the drill's time-to-protect and the fold's counters.
func TestMetricsEndpoint(t *testing.T) {
	d1 := filepath.Join(t.TempDir(), "m1")
	if _, err := Init(d1, "metrics", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, d1)
	c, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Drill(t.Context()); err != nil {
		t.Fatal(err)
	}
	get := func(auth string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", c.base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	code, body := get("Bearer " + c.token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"phalanx_drill_time_to_protect_seconds{member=", "phalanx_drills_total 1", "phalanx_ledger_applied_position", "phalanx_decisions_in_force"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
