package httpguard

import (
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

// BenchmarkCheck is the per-request cost of the guard with a million
// decisions: one lookup in the set (a bart table) and the verdict. It uses
// a test clock, which the set reads on every lookup.
func BenchmarkCheck(b *testing.B) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	benchCheck(b, c, decisions.New(c))
}

// BenchmarkCheckSystemClock is BenchmarkCheck as deployed: the set runs on
// the system clock (no clock read per lookup) and its lock-free snapshot
// has been published, as it is once the initial load quiets down.
func BenchmarkCheckSystemClock(b *testing.B) {
	set := decisions.New(phalanx.SystemClock{})
	benchCheck(b, phalanx.SystemClock{}, set)
}

func benchCheck(b *testing.B, c phalanx.Clock, set *decisions.Set) {
	const n = 1_000_000
	now := c.Now()
	for i := range n {
		a := netip.AddrFrom4([4]byte{byte(11 + i>>16&0x3f), byte(i >> 8), byte(i), 1})
		typ := phalanx.Ban
		if i%7 == 0 {
			typ = phalanx.Throttle
		}
		set.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: typ, Duration: time.Hour, LastSeen: now})
	}
	if set.Len() != n {
		b.Fatalf("%d decisions, want %d", set.Len(), n)
	}
	if _, ok := c.(phalanx.SystemClock); ok {
		set.Settle() // publish the snapshot the load dropped
	}
	g := New(set, Config{Clock: c}, nil)
	r := httptest.NewRequest("GET", "/", nil)
	// Half the probes hit a ban, half miss: both paths are common.
	probes := make([]netip.Addr, 1024)
	for i := range probes {
		j := i * 977
		probes[i] = netip.AddrFrom4([4]byte{byte(11 + j>>16&0x3f), byte(j >> 8), byte(j), byte(1 + i%2)})
	}
	// Collect the garbage of building the set now, not during the loop.
	runtime.GC()
	i := 0
	for b.Loop() {
		g.check(r, probes[i&1023])
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/check")
}

// BenchmarkClientAddr is the cost of finding the client behind one trusted
// proxy.
func BenchmarkClientAddr(b *testing.B) {
	g := New(nil, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:4711"
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.9")
	for b.Loop() {
		g.ClientAddr(r)
	}
}
