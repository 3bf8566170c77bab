package member

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// pactParty is the outside party under a pact in the lying-member test.
var pactParty = netip.MustParsePrefix("198.51.100.0/28")

// liarReports is how many bogus reports the liar publishes: 2,000 by
// default (over three times the charter's limit of 600 a minute, and about
// half a minute under -race on a loaded two-core machine),
// PHALANX_LIAR_REPORTS=100000 for the full flood (minutes: every
// honest member verifies every envelope's signature).
func liarReports(t *testing.T) int {
	s := os.Getenv("PHALANX_LIAR_REPORTS")
	if s == "" {
		return 2_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1000 {
		t.Fatalf("PHALANX_LIAR_REPORTS=%q: want a number ≥ 1000", s)
	}
	return n
}

// TestLyingMember: a compromised member — admitted, holding a valid key,
// chaining its envelopes correctly — publishes a flood of bogus reports
// (random addresses, allied territory, a pact party) while three honest
// members go on deciding. The charter's limits must hold at every honest
// member: at most max_reports_per_minute of the liar's envelopes a minute
// counted, nothing needing corroboration decided on its word alone, no
// territory or pact party ever banned, the liar flagged in /v1/members
// and counted in /metrics; every honest manual decision of the same
// minute in force everywhere; and all honest members fold the same state.
//
//	PHALANX_LIAR_REPORTS=100000 go test -run TestLyingMember -v -timeout 30m ./member
func TestLyingMember(t *testing.T) {
	if testing.Short() {
		t.Skip("an alliance of four under a flood")
	}
	n := liarReports(t)
	a := newTestAlliance(t, 3, func(c *charter.Charter) {
		c.Pacts = []charter.Pact{{Name: "uptime-checker", Prefixes: []netip.Prefix{pactParty}}}
	})
	honest := []*Member{a.ms[0].m, a.ms[1].m, a.ms[2].m}
	liarDir := a.root + "/liar"
	a.join(t, liarDir, "liar", territoryOf(3))
	liar := openRogue(t, liarDir)
	policy := charter.DefaultPolicy()

	// Bogus reports, one in three of each sort: a random address (half of
	// them in a scenario that needs two members, half in ssh-bf which the
	// charter lets one member decide), an address in a member's
	// territory, one of the pact party's.
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	envs := make([][]byte, n)
	ids := make([]string, n)
	began := time.Now()
	for i := range envs {
		var v netip.Addr
		scenario := "http-probing"
		switch i % 3 {
		case 0:
			v = netip.AddrFrom4([4]byte{byte(11 + rng.IntN(100)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
			if i%2 == 0 {
				scenario = "ssh-bf"
			}
		case 1:
			t := territoryOf(rng.IntN(4)).Addr().As4()
			t[3] += byte(rng.IntN(16))
			v = netip.AddrFrom4(t)
			scenario = "ssh-bf"
		case 2:
			p := pactParty.Addr().As4()
			p[3] += byte(rng.IntN(16))
			v = netip.AddrFrom4(p)
			scenario = "ssh-bf"
		}
		env := liar.seal(t, ledger.KindReport, ledger.Report{
			Value: netip.PrefixFrom(v, 32), Type: phalanx.Ban, Scenario: scenario, Duration: time.Hour,
			FirstSeen: began, LastSeen: began, Events: 1000, Evidence: []string{"trust me"},
		}, time.Now())
		envs[i], ids[i] = env.Encode(), env.ID()
	}
	t.Logf("sealed %d bogus reports in %v", n, time.Since(began).Round(time.Millisecond))

	// The honest members publish manual decisions while the flood runs,
	// one each time another eleventh of it is out; their delay (from the
	// API's answer to the last honest member enforcing it) is measured.
	const honestEach = 10
	var honestWant []netip.Prefix
	var pubMu sync.Mutex
	publishedAt := map[netip.Prefix]time.Time{}
	seen := watchSets(t, honest)
	ticks := make([]chan struct{}, 2)
	var wg sync.WaitGroup
	var honestErrs atomic.Int64
	for k := range ticks {
		ticks[k] = make(chan struct{}, honestEach)
		c, err := Client(a.dirs[1+k])
		if err != nil {
			t.Fatal(err)
		}
		var vals []netip.Prefix
		for j := range honestEach {
			vals = append(vals, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + 100*k + j)}), 32))
		}
		honestWant = append(honestWant, vals...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ticks[k] {
				v := vals[0]
				vals = vals[1:]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := c.AddDecision(ctx, DecisionRequest{Value: v.Addr().String(), Duration: "1h", Reason: "honest, during the flood"}); err != nil {
					t.Errorf("honest member %d: add %s during the flood: %v", 2+k, v, err)
					honestErrs.Add(1)
				}
				pubMu.Lock()
				publishedAt[v] = time.Now()
				pubMu.Unlock()
				cancel()
			}
		}()
	}

	// Memory and CPU of the whole process (three honest members, the hub
	// they share, and the liar's publisher) from the flood's start until
	// every honest member has folded all of it.
	var peakHeap atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	cpu0, flood0 := cpuTime(), time.Now()

	hubURL := liarURL(t, liarDir)
	nc, err := nats.Connect(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	subject := natsbus.Subject(liar.alliance)
	step := n / (honestEach + 1)
	for i := range envs {
		if _, err := js.PublishAsync(subject, envs[i], jetstream.WithMsgID(ids[i])); err != nil {
			t.Fatalf("liar's publish %d: %v", i, err)
		}
		if js.PublishAsyncPending() >= 2048 {
			// As fast as the hub takes them, no faster: the client
			// refuses more than 4,096 unacknowledged.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				t.Fatal("the hub acknowledged none of 2,048 publishes within a minute")
			}
		}
		if i > 0 && i%step == 0 && i/step <= honestEach {
			for _, ch := range ticks {
				ch <- struct{}{}
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		t.Fatal("the liar's publishes were not all acknowledged within 2 minutes")
	}
	floodTook := time.Since(flood0)
	for _, ch := range ticks {
		close(ch)
	}
	wg.Wait()
	last := lastSeq(t, honest[0])
	// Folding is ed25519-bound (every envelope is verified before the rate
	// limit can refuse it, so that it still moves its author's chain):
	// allow 5 ms per envelope on a loaded two-core machine.
	waitApplied(t, honest, last, max(3*time.Minute, time.Duration(n)*5*time.Millisecond))
	foldTook := time.Since(flood0)
	cpu := cpuTime() - cpu0
	close(stopSampling)
	<-sampled
	t.Logf("flood: %d reports published in %v (%.0f/s); every honest member folded it %v after it began; process CPU %v (%.0f%% of one core); peak heap in use %.1f MiB, peak RSS %.1f MiB",
		n, floodTook.Round(time.Millisecond), float64(n)/floodTook.Seconds(), foldTook.Round(time.Millisecond),
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/foldTook.Seconds(), float64(peakHeap.Load())/(1<<20), peakRSSMiB())
	if floodTook > time.Minute {
		t.Logf("the flood took more than a minute: the rate limit was measured over %v", floodTook)
	}

	var worst time.Duration
	for v, at := range publishedAt {
		for i := range honest {
			if got, ok := seen[i].first(v); ok {
				worst = max(worst, got.Sub(at))
			}
		}
	}
	t.Logf("honest decisions published during the flood: %d; slowest until enforced by all three: %v", len(publishedAt), worst.Round(time.Millisecond))

	now := time.Now()
	view := sameFold(t, honest, now)
	ctx := t.Context()
	for i, m := range honest {
		m.mu.Lock()
		ds := m.fold.Decisions(now)
		breaches := m.fold.Breaches()
		rej := m.fold.Rejections()
		m.mu.Unlock()
		liarOnly := 0
		for _, d := range ds {
			for k := range 4 {
				if territoryOf(k).Overlaps(d.Value) {
					t.Errorf("member %d: allied territory banned: %+v", i+1, d)
				}
			}
			if pactParty.Overlaps(d.Value) {
				t.Errorf("member %d: pact party banned: %+v", i+1, d)
			}
			if len(d.Reporters) == 1 && d.Reporters[0] == liar.id.ID {
				liarOnly++
				if need := policy.Required(d.Scenario); need > 1 {
					t.Errorf("member %d: %s decided on the liar's word alone; the charter needs %d members", i+1, d.Value, need)
				}
			}
			if d.Scenario == "http-probing" {
				t.Errorf("member %d: the liar's uncorroborated http-probing reports became a decision: %+v", i+1, d)
			}
		}
		// Stream time is at least as dense as the flood: it spanned at most
		// foldTook, so at most that many minutes (rounded up) of quota.
		quota := policy.MaxReportsPerMinute * (int(foldTook/time.Minute) + 1)
		if liarOnly > quota {
			t.Errorf("member %d: %d decisions on the liar's word, over its quota of %d", i+1, liarOnly, quota)
		}
		if got := rej[alliance.ReasonRateLimit]; got < uint64(n-quota) {
			t.Errorf("member %d: %d envelopes refused for the rate limit, want at least %d", i+1, got, n-quota)
		}
		if len(breaches) == 0 {
			t.Errorf("member %d recorded no pact breach", i+1)
		}
		for _, v := range honestWant {
			if _, ok := m.Decisions().Lookup(v.Addr()); !ok {
				t.Errorf("member %d lost the honest decision against %s made during the flood", i+1, v)
			}
		}
		c, err := Client(a.dirs[i])
		if err != nil {
			t.Fatal(err)
		}
		ms, err := c.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		flagged := map[ledger.MemberID]string{}
		for _, s := range ms {
			flagged[s.ID] = s.Flagged
		}
		if flagged[liar.id.ID] != alliance.ReasonRateLimit {
			t.Errorf("member %d: GET /v1/members shows the liar flagged %q, want %q", i+1, flagged[liar.id.ID], alliance.ReasonRateLimit)
		}
		for _, h := range honest {
			if flagged[h.ID()] != "" {
				t.Errorf("member %d: honest member %s flagged %q", i+1, h.ID(), flagged[h.ID()])
			}
		}
		metrics := scrape(t, c)
		if got := metrics[`phalanx_ledger_rejected_total{reason="rate-limit"}`]; got < float64(n-quota) {
			t.Errorf("member %d: /metrics counts %v rate-limited envelopes, want at least %d", i+1, got, n-quota)
		}
		if i == 0 {
			t.Logf("member 1: %d decisions in force, %d on the liar's word alone (ssh-bf, which the charter lets one member decide), %d pact breaches kept, rejections %v",
				len(ds), liarOnly, len(breaches), rej)
		}
	}
	if honestErrs.Load() == 0 && len(view.decisions) == 0 {
		t.Error("no decision at all: the test decided nothing")
	}
}

// liarURL is the NATS URL the liar's data directory points at.
func liarURL(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NATS.URLs) == 0 {
		t.Fatalf("liar's config names no NATS URL: %+v", cfg.NATS)
	}
	return strings.Join(cfg.NATS.URLs, ",")
}

// setWatch records when each value first entered one member's set.
type setWatch struct {
	mu    sync.Mutex
	added map[netip.Prefix]time.Time
}

func (w *setWatch) first(v netip.Prefix) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.added[v]
	return at, ok
}

// watchSets follows each member's decision set until the test ends.
func watchSets(t *testing.T, ms []*Member) []*setWatch {
	out := make([]*setWatch, len(ms))
	for i, m := range ms {
		w := &setWatch{added: map[netip.Prefix]time.Time{}}
		out[i] = w
		ch, unsub := m.Decisions().Subscribe(4096)
		go func() {
			for c := range ch {
				at := time.Now()
				w.mu.Lock()
				if c.Resync {
					for _, d := range m.Decisions().List() {
						if _, ok := w.added[d.Value]; !ok {
							w.added[d.Value] = at
						}
					}
				} else if _, ok := w.added[c.Decision.Value]; !ok && c.Op == decisions.Added {
					w.added[c.Decision.Value] = at
				}
				w.mu.Unlock()
			}
		}()
		t.Cleanup(unsub)
	}
	return out
}
