package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/member"
)

// query is what the hub asks a member at the end of a run.
type query struct {
	LastSeq uint64        `json:"last_seq"` // the ledger's last position: wait until folded
	Issued  int64         `json:"issued"`   // report indices 0..Issued-1 were handed out
	Drain   time.Duration `json:"drain"`
}

// MemberResult is one member's answer.
type MemberResult struct {
	Member         string            `json:"member"`
	Expected       int64             `json:"expected"`
	Present        int64             `json:"present"`
	Lost           int64             `json:"lost"`
	Applied        uint64            `json:"applied"`
	CaughtUp       bool              `json:"caught_up"`        // folded the whole ledger: Lost is then really lost
	CatchUpSeconds float64           `json:"catch_up_seconds"` // after publishing stopped, until the last report was folded
	TTPSamples     int64             `json:"ttp_samples"`
	TTPp50ms       float64           `json:"ttp_p50_ms"`
	TTPp99ms       float64           `json:"ttp_p99_ms"`
	TTPmaxms       float64           `json:"ttp_max_ms"`
	Resyncs        int64             `json:"subscriber_resyncs"`
	PeakRSSMB      float64           `json:"peak_rss_mb"`
	PeakHeapMB     float64           `json:"peak_heap_mb"`
	CPUSeconds     float64           `json:"cpu_seconds"`
	Rejections     map[string]uint64 `json:"rejections,omitempty"`
	Err            string            `json:"error,omitempty"`
}

// ttpHistogram counts time-to-protect in 1 ms buckets: a fixed size
// whatever the run's length.
type ttpHistogram struct {
	mu      sync.Mutex
	buckets [120_001]int64 // the last one is "120 s or more"
	n       int64
	max     time.Duration
}

func (h *ttpHistogram) add(d time.Duration) {
	i := min(max(int(d/time.Millisecond), 0), len(h.buckets)-1)
	h.mu.Lock()
	h.buckets[i]++
	h.n++
	h.max = max(h.max, d)
	h.mu.Unlock()
}

func (h *ttpHistogram) quantileMS(q float64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	want := int64(q*float64(h.n-1)) + 1
	var seen int64
	for i, c := range h.buckets {
		if seen += c; seen >= want {
			return float64(i) + 0.5
		}
	}
	return float64(len(h.buckets))
}

// runMember runs the member in dir, says "ready" on out once it has folded
// the ledger up to readySeq, then answers one query read from in.
func runMember(ctx context.Context, dir string, readySeq uint64, in io.Reader, out io.Writer) error {
	m, err := member.Open(dir, nil)
	if err != nil {
		return err
	}
	m.SetAPIListen("127.0.0.1:0")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Time to protect: from the moment the reporter sealed the report
	// (its LastSeen) to the moment the decision is in this member's set.
	var ttp ttpHistogram
	var resyncs atomic.Int64
	changes, unsubscribe := m.Decisions().Subscribe(1 << 16)
	defer unsubscribe()
	go func() {
		for c := range changes {
			if c.Resync {
				resyncs.Add(1)
			}
			if c.Op == decisions.Added && c.Decision.Scenario == "ssh-bf" {
				ttp.add(time.Since(c.Decision.LastSeen))
			}
		}
	}()
	var peakHeap atomic.Uint64
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap.Load() {
				peakHeap.Store(ms.HeapAlloc)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	applied := func() (member.Health, error) {
		cl, err := member.Client(dir)
		if err != nil {
			return member.Health{}, err
		}
		hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
		defer hcancel()
		return cl.Health(hctx)
	}
	waitFor := func(seq uint64, within time.Duration) (member.Health, error) {
		deadline := time.Now().Add(within)
		for {
			h, err := applied()
			if err == nil && h.Applied >= seq {
				return h, nil
			}
			if time.Now().After(deadline) {
				return h, fmt.Errorf("folded up to %d of %d after %s (last error: %v)", h.Applied, seq, within, err)
			}
			select {
			case err := <-errc:
				return h, fmt.Errorf("member stopped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if _, err := waitFor(readySeq, time.Minute); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}

	var q query
	if err := json.NewDecoder(in).Decode(&q); err != nil {
		return fmt.Errorf("reading the query: %w", err)
	}
	res := MemberResult{Member: string(m.ID())}
	asked := time.Now()
	h, err := waitFor(q.LastSeq, q.Drain)
	res.CatchUpSeconds = time.Since(asked).Seconds()
	if err != nil {
		res.Err = err.Error()
	}
	res.Applied, res.Rejections = h.Applied, h.Rejections
	set := m.Decisions()
	for i := range q.Issued {
		if _, ok := set.Lookup(addrOf(i)); ok {
			res.Present++
		}
	}
	// Let the subscriber drain what is queued before reading the histogram.
	for range 100 {
		if len(changes) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ttp.mu.Lock()
	res.TTPSamples = ttp.n
	res.TTPmaxms = float64(ttp.max) / float64(time.Millisecond)
	ttp.mu.Unlock()
	res.TTPp50ms, res.TTPp99ms = ttp.quantileMS(0.50), ttp.quantileMS(0.99)
	res.Resyncs = resyncs.Load()
	res.PeakRSSMB, res.CPUSeconds = selfUsage()
	res.PeakHeapMB = float64(peakHeap.Load()) / (1 << 20)
	if err := json.NewEncoder(out).Encode(res); err != nil {
		return err
	}
	cancel()
	<-errc
	return nil
}

func numCPU() int { return runtime.NumCPU() }
