package nft

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

// runObserved runs e (made with an Observe that feeds the returned
// channel) on set until the test ends.
func runObserved(t testing.TB, ns string) (*decisions.Set, <-chan Applied, *Enforcer) {
	t.Helper()
	obs := make(chan Applied, 1024)
	e, err := New(Config{NetNS: ns, Observe: func(a Applied) {
		select {
		case obs <- a:
		default: // a test that stops reading must not wedge Run
		}
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := decisions.New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, set) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = e.Close()
	})
	// Run's first full reconcile is not caused by a change: it must not
	// be observed. Wait until it has happened (the table exists).
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		ready := e.ready
		e.mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("enforcer did not install its table within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return set, obs, e
}

// TestObserveAfterFlush checks the apply-latency hook: it fires once the
// kernel holds the change (not before), covers the change, and measures a
// positive time no longer than the test has waited.
func TestObserveAfterFlush(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	set, obs, _ := runObserved(t, ns)
	select {
	case a := <-obs:
		t.Fatalf("observed %+v before any change", a)
	default:
	}

	for _, tc := range []struct {
		name string
		do   func()
		want bool // element present after
	}{
		{"ban", func() { set.Add(ban("192.0.2.44/32", time.Hour)) }, true},
		{"lift", func() { set.Delete(netip.MustParsePrefix("192.0.2.44/32")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tc.do()
			var a Applied
			select {
			case a = <-obs:
			case <-time.After(10 * time.Second):
				t.Fatal("no apply observed within 10 s")
			}
			waited := time.Since(start)
			t.Logf("%s applied: %d change(s), %v from the set's write to the netlink flush", tc.name, a.Changes, a.Latency)
			if a.Changes < 1 || a.Latency <= 0 || a.Latency > waited {
				t.Errorf("observed %+v after waiting %v: want ≥1 change and 0 < latency ≤ %v", a, waited, waited)
			}
			_, got := kernelSets(t, ns)[setAddrV4]["192.0.2.44"]
			if got != tc.want {
				t.Errorf("when observed, kernel holds 192.0.2.44: %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkRunApply100k measures the enforcement apply latency as the
// member's metric sees it: 100,000 bans added to the decision set at
// once, until the Run loop's last write holding all of them completes.
// ms/100k is from the first Add to that write; the Observe latencies
// are what phalanx_enforce_apply_seconds records; add-ms is the part
// spent adding to the set (which the Run loop overlaps with its writes).
func BenchmarkRunApply100k(b *testing.B) {
	netnstest.Need(b, "nftables tests", "ip", "nft")
	const n = 100_000
	now := time.Now()
	ds := make([]phalanx.Decision, 0, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		ds = append(ds, phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, Duration: time.Hour, LastSeen: now})
	}
	var total, adding, maxObserved time.Duration
	var writes int
	for b.Loop() {
		b.StopTimer()
		ns := netnstest.New(b, "phx-test-")
		set, obs, e := runObserved(b, ns)
		b.StartTimer()
		start := time.Now()
		for _, d := range ds {
			set.Add(d)
		}
		adding += time.Since(start)
		for {
			var a Applied
			select {
			case a = <-obs:
			case <-time.After(time.Minute):
				b.Fatal("100k bans not applied within a minute")
			}
			writes++
			maxObserved = max(maxObserved, a.Latency)
			e.mu.Lock()
			done := len(e.applied) == n
			e.mu.Unlock()
			if done {
				break
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/100k")
	b.ReportMetric(float64(adding.Milliseconds())/float64(b.N), "add-ms")
	b.ReportMetric(float64(maxObserved.Milliseconds()), "max-observed-ms")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}
