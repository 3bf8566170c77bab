package member

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// foldReports has member 0 of a two-member alliance fold n reports, each
// against a distinct address in 10.0.0.0/8, published by member 1 in
// batches, and returns member 0.
func foldReports(t *testing.T, n int) *Member {
	t.Helper()
	a := newTestAlliance(t, 2, func(c *charter.Charter) { c.Policy.MaxReportsPerMinute = 1_000_000 })
	m := a.ms[0].m
	a.ms[1].stop(t)
	r := openRogue(t, a.dirs[1])
	last := publishReports(t, r, n)
	waitApplied(t, []*Member{m}, last, 10*time.Minute)
	return m
}

// lockProbe takes and lets go of the member's lock in a loop, as the
// ledger path does for each message, and keeps the longest wait for it.
type lockProbe struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	longest time.Duration
}

func probeLock(m *Member) *lockProbe {
	p := &lockProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			t0 := time.Now()
			m.mu.Lock()
			waited := time.Since(t0)
			m.mu.Unlock()
			p.mu.Lock()
			p.longest = max(p.longest, waited)
			p.mu.Unlock()
			time.Sleep(50 * time.Microsecond)
		}
	}()
	return p
}

func (p *lockProbe) end() time.Duration {
	close(p.stop)
	<-p.done
	return p.longest
}

// discard is a ResponseWriter that counts the body and keeps nothing.
type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// TestDecisionsListScale measures GET /v1/decisions on a member holding
// many decisions: PHALANX_API_SCALE=1000000 go test -run
// TestDecisionsListScale ./member. It logs, for a whole list and for a
// page (limit=100), the request's duration and the longest another
// goroutine waited for the member's lock (which the ledger fold needs)
// meanwhile.
func TestDecisionsListScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PHALANX_API_SCALE"))
	if n <= 0 {
		t.Skip("set PHALANX_API_SCALE to the number of decisions")
	}
	m := foldReports(t, n)
	for _, query := range []string{"", "?limit=100", "?value=10.0.0.0/24", "?scenario=ssh-bf&limit=1000"} {
		for range 2 {
			p := probeLock(m)
			w := &discard{header: http.Header{}}
			t0 := time.Now()
			m.getDecisions(w, httptest.NewRequest(http.MethodGet, "/v1/decisions"+query, nil))
			took := time.Since(t0)
			waited := p.end()
			if w.code != 0 && w.code != http.StatusOK {
				t.Fatalf("GET /v1/decisions%s: status %d", query, w.code)
			}
			t.Logf("%d decisions: GET /v1/decisions%s took %v (%d bytes); longest wait for the member's lock meanwhile %v",
				n, query, took.Round(time.Millisecond), w.n, waited.Round(time.Microsecond))
		}
	}
}

// publishReports publishes, as r, n reports (2 h bans on 10.0.0.0,
// 10.0.0.1, ...) in batches of ledger.MaxReports, and returns the ledger
// position of the last batch.
func publishReports(t *testing.T, r *rogue, n int) (last uint64) {
	t.Helper()
	for i := 0; i < n; i += ledger.MaxReports {
		var b ledger.Reports
		now := time.Now().UTC()
		for j := i; j < min(n, i+ledger.MaxReports); j++ {
			b.Reports = append(b.Reports, ledger.Report{Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)}), 32),
				Type: phalanx.Ban, Scenario: "ssh-bf", Duration: 2 * time.Hour, FirstSeen: now, LastSeen: now, Events: 6})
		}
		last = r.publish(t, r.seal(t, ledger.KindReports, b, now))
	}
	return last
}
