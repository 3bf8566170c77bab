package decisions

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/phalanx-defence/phalanx"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable fake clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

func dec(v string, typ phalanx.DecisionType, last time.Time, dur time.Duration) phalanx.Decision {
	p, err := phalanx.ParsePrefixOrAddr(v)
	if err != nil {
		panic(err)
	}
	return phalanx.Decision{Value: p, Type: typ, Scenario: "s-" + string(typ), Duration: dur,
		FirstSeen: last.Add(-time.Minute), LastSeen: last, Events: 6, Origin: phalanx.OriginLocal,
		Evidence: []string{"line " + v + " " + string(typ)}}
}

func TestAddMerge(t *testing.T) {
	const ip = "192.0.2.1"
	tests := []struct {
		name      string
		first     phalanx.Decision
		second    phalanx.Decision
		changed   bool
		typ       phalanx.DecisionType
		until     time.Time
		events    int
		scenario  string
		evidence  int
		firstSeen time.Time
	}{
		{"stronger type wins, later expiry kept", dec(ip, phalanx.Throttle, t0, 4*time.Hour), dec(ip, phalanx.Ban, t0, time.Hour),
			true, phalanx.Ban, t0.Add(4 * time.Hour), 12, "s-ban", 2, t0.Add(-time.Minute)},
		{"weaker type loses but extends", dec(ip, phalanx.Ban, t0, time.Hour), dec(ip, phalanx.Captcha, t0.Add(30*time.Minute), 4*time.Hour),
			true, phalanx.Ban, t0.Add(270 * time.Minute), 12, "s-ban", 2, t0.Add(-time.Minute)},
		{"weaker and shorter changes nothing enforced", dec(ip, phalanx.Ban, t0, 4*time.Hour), dec(ip, phalanx.Throttle, t0.Add(-10*time.Minute), time.Hour),
			false, phalanx.Ban, t0.Add(4 * time.Hour), 12, "s-ban", 2, t0.Add(-11 * time.Minute)},
		{"a duplicate is idempotent", dec(ip, phalanx.Ban, t0, 4*time.Hour), dec(ip, phalanx.Ban, t0, 4*time.Hour),
			false, phalanx.Ban, t0.Add(4 * time.Hour), 6, "s-ban", 1, t0.Add(-time.Minute)},
		{"same type, longer", dec(ip, phalanx.Ban, t0, time.Hour), dec(ip, phalanx.Ban, t0.Add(time.Minute), time.Hour),
			true, phalanx.Ban, t0.Add(61 * time.Minute), 12, "s-ban", 1, t0.Add(-time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(newClock(t0))
			if !s.Add(tt.first) {
				t.Fatal("first add not a change")
			}
			if got := s.Add(tt.second); got != tt.changed {
				t.Errorf("changed %v, want %v", got, tt.changed)
			}
			d, ok := s.Lookup(netip.MustParseAddr(ip))
			if !ok {
				t.Fatal("not found")
			}
			if d.Type != tt.typ || !d.Until().Equal(tt.until) || d.Events != tt.events || d.Scenario != tt.scenario ||
				len(d.Evidence) != tt.evidence || !d.FirstSeen.Equal(tt.firstSeen) {
				t.Errorf("merged %+v until %v", d, d.Until())
			}
			if s.Len() != 1 {
				t.Errorf("len %d", s.Len())
			}
		})
	}
}

func TestAddIgnores(t *testing.T) {
	s := New(newClock(t0))
	if s.Add(dec("192.0.2.1", phalanx.Ban, t0.Add(-2*time.Hour), time.Hour)) {
		t.Error("expired decision added")
	}
	if s.Add(phalanx.Decision{Type: phalanx.Ban, LastSeen: t0, Duration: time.Hour}) {
		t.Error("invalid value added")
	}
	if s.Add(phalanx.Decision{Value: netip.MustParsePrefix("192.0.2.1/32"), Type: "jail", LastSeen: t0, Duration: time.Hour}) {
		t.Error("unknown type added")
	}
	// Evidence is bounded.
	d := dec("192.0.2.2", phalanx.Ban, t0, time.Hour)
	for i := range 3 * maxEvidence {
		d.Evidence = []string{fmt.Sprint("line ", i)}
		d.LastSeen = t0.Add(time.Duration(i) * time.Second)
		s.Add(d)
	}
	got, _ := s.Lookup(netip.MustParseAddr("192.0.2.2"))
	if len(got.Evidence) != maxEvidence || got.Evidence[maxEvidence-1] != fmt.Sprint("line ", 3*maxEvidence-1) || got.Events != 6*3*maxEvidence {
		t.Errorf("evidence %q events %d", got.Evidence, got.Events)
	}
}

func TestLookup(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	s.Add(dec("2001:db8:1:2::/64", phalanx.Ban, t0, 4*time.Hour))
	s.Add(dec("2001:db8:1:2::7", phalanx.Throttle, t0, time.Hour))
	s.Add(dec("192.0.2.0/24", phalanx.Captcha, t0, time.Hour))
	s.Add(dec("::ffff:198.51.100.1", phalanx.Ban, t0, time.Hour)) // stored unmapped
	tests := []struct {
		addr  string
		value string
		found bool
	}{
		{"2001:db8:1:2::7", "2001:db8:1:2::7/128", true},
		{"2001:db8:1:2::8", "2001:db8:1:2::/64", true},
		{"2001:db8:1:3::7", "", false},
		{"192.0.2.200", "192.0.2.0/24", true},
		{"::ffff:192.0.2.200", "192.0.2.0/24", true},
		{"198.51.100.1", "198.51.100.1/32", true},
		{"203.0.113.1", "", false},
	}
	for _, tt := range tests {
		d, ok := s.Lookup(netip.MustParseAddr(tt.addr))
		if ok != tt.found || (ok && d.Value.String() != tt.value) {
			t.Errorf("%s: %v %v, want %s", tt.addr, d.Value, ok, tt.value)
		}
	}
	// When the specific one has run out (before Expire), the range applies.
	c.set(t0.Add(2 * time.Hour))
	if d, ok := s.Lookup(netip.MustParseAddr("2001:db8:1:2::7")); !ok || d.Value.Bits() != 64 {
		t.Errorf("after expiry: %v %v", d.Value, ok)
	}
	if _, ok := s.Lookup(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("expired range still found")
	}
}

func TestListAndExpire(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	s.Add(dec("192.0.2.3", phalanx.Ban, t0, 3*time.Hour))
	s.Add(dec("192.0.2.2", phalanx.Ban, t0, time.Hour))
	s.Add(dec("192.0.2.1", phalanx.Ban, t0, time.Hour))
	s.Add(dec("192.0.2.4", phalanx.Ban, t0, 2*time.Hour))
	// Extend .4 past .3: the stale heap entry must not expire it early.
	s.Add(dec("192.0.2.4", phalanx.Ban, t0, 4*time.Hour))
	var got []string
	for _, d := range s.List() {
		got = append(got, d.ValueString())
	}
	if want := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}; !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	steps := []struct {
		at   time.Duration
		n    int
		left int
	}{
		{59 * time.Minute, 0, 4}, {time.Hour, 2, 2}, {2 * time.Hour, 0, 2}, {3 * time.Hour, 1, 1}, {5 * time.Hour, 1, 0},
	}
	for _, st := range steps {
		c.set(t0.Add(st.at))
		if n := s.Expire(t0.Add(st.at)); n != st.n || s.Len() != st.left || len(s.List()) != st.left {
			t.Fatalf("at %v: expired %d left %d, want %d %d", st.at, n, s.Len(), st.n, st.left)
		}
	}
	if s.Delete(netip.MustParsePrefix("192.0.2.4/32")) {
		t.Error("deleted an expired decision")
	}
}

func TestSubscribe(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	ch, cancel := s.Subscribe(16)
	a := dec("192.0.2.1", phalanx.Throttle, t0, time.Hour)
	s.Add(a)
	s.Add(dec("192.0.2.1", phalanx.Ban, t0, time.Hour))        // stronger: changed
	s.Add(dec("192.0.2.1", phalanx.Throttle, t0, time.Minute)) // no change: no message
	s.Add(dec("192.0.2.2", phalanx.Ban, t0, 2*time.Hour))
	s.Delete(netip.MustParsePrefix("192.0.2.2/32"))
	s.Expire(t0.Add(time.Hour))
	want := []string{"added 192.0.2.1 throttle", "added 192.0.2.1 ban", "deleted 192.0.2.2 ban", "expired 192.0.2.1 ban"}
	want = slices.Insert(want, 2, "added 192.0.2.2 ban")
	for i, w := range want {
		got := <-ch
		if s := fmt.Sprintf("%s %s %s", got.Op, got.Decision.ValueString(), got.Decision.Type); s != w || got.Resync {
			t.Fatalf("change %d: %s (resync %v), want %s", i, s, got.Resync, w)
		}
	}
	select {
	case got := <-ch:
		t.Fatalf("extra change %+v", got)
	default:
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	s.Add(dec("192.0.2.9", phalanx.Ban, t0, time.Hour)) // no panic on a closed subscription
}

func TestSlowSubscriber(t *testing.T) {
	s := New(newClock(t0))
	ch, cancel := s.Subscribe(4)
	defer cancel()
	for i := range 10 {
		s.Add(dec(fmt.Sprintf("192.0.2.%d", i), phalanx.Ban, t0, time.Hour))
	}
	// The set never blocked; the subscriber has the 4 newest, and the
	// newest says it must resync.
	var got []string
	var resync []bool
	for range 4 {
		c := <-ch
		got = append(got, c.Decision.ValueString())
		resync = append(resync, c.Resync)
	}
	if !slices.Equal(got, []string{"192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9"}) || !resync[3] {
		t.Fatalf("got %v resync %v", got, resync)
	}
	if len(s.List()) != 10 {
		t.Fatal("list incomplete")
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(phalanx.SystemClock{})
		ch, cancel := s.Subscribe(16)
		defer cancel()
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		now := time.Now()
		s.Add(dec("192.0.2.1", phalanx.Ban, now, time.Hour))
		<-ch
		// An earlier expiry added while Run sleeps wakes it.
		s.Add(dec("192.0.2.2", phalanx.Ban, now, time.Minute))
		<-ch
		synctest.Wait()
		time.Sleep(time.Minute) // fake time: advances when every goroutine is blocked
		synctest.Wait()
		if c := <-ch; c.Op != Expired || c.Decision.ValueString() != "192.0.2.2" || !time.Now().Equal(now.Add(time.Minute)) {
			t.Fatalf("change %+v at %v", c, time.Since(now))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if c := <-ch; c.Op != Expired || c.Decision.ValueString() != "192.0.2.1" || s.Len() != 0 {
			t.Fatalf("change %+v", c)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrent(t *testing.T) {
	s := New(phalanx.SystemClock{})
	now := time.Now()
	ch, cancel := s.Subscribe(8)
	var reader, wg sync.WaitGroup
	reader.Go(func() {
		for range ch {
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				v := fmt.Sprintf("10.%d.%d.%d", w, i/256, i%256)
				s.Add(dec(v, phalanx.Ban, now, time.Hour))
				s.Lookup(netip.MustParseAddr(v))
				if i%3 == 0 {
					s.Delete(netip.MustParsePrefix(v + "/32"))
				}
				if i%100 == 0 {
					s.List()
					s.Expire(time.Now())
				}
			}
		})
	}
	wg.Wait()
	cancel()
	reader.Wait()
	if n := s.Len(); n != 4*(500-167) {
		t.Fatalf("len %d", n)
	}
}

// fill1M fills s with a million decisions lasting from now for an hour:
// a /32 each, and a /24 for one in ten, spread over 16 first octets.
func fill1M(s *Set, now time.Time) {
	const n = 1_000_000
	for i := range n {
		a := netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 1})
		if i%10 == 0 {
			s.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 24).Masked(), Type: phalanx.Throttle, LastSeen: now, Duration: time.Hour})
		}
		s.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, LastSeen: now, Duration: time.Hour})
	}
}

func probes() []netip.Addr {
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{byte(1 + i*7%16), byte(i * 13), byte(i * 31), byte(i % 3)})
	}
	return addrs
}

// BenchmarkLookup is the cost of one check against a million decisions,
// with the wall clock (the live case) and with a test clock, from one
// goroutine and from all of them.
func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct {
		name  string
		clock phalanx.Clock
		now   time.Time
	}{{"system", phalanx.SystemClock{}, time.Now()}, {"fake", newClock(t0), t0}} {
		s := New(bc.clock)
		fill1M(s, bc.now)
		settle(s)
		addrs := probes()
		runtime.GC()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.Lookup(addrs[i%len(addrs)])
				i++
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					s.Lookup(addrs[i%len(addrs)])
					i++
				}
			})
		})
	}
}

// BenchmarkAdd is the cost of adding a new decision to a set holding a
// million: a steady trickle, one at a time.
func BenchmarkAdd(b *testing.B) {
	now := time.Now()
	s := New(phalanx.SystemClock{})
	fill1M(s, now)
	settle(s)
	runtime.GC()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := netip.AddrFrom4([4]byte{byte(100 + i>>16&0x3f), byte(i >> 8), byte(i), 1})
		s.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, LastSeen: now, Duration: time.Hour})
		i++
	}
}

// BenchmarkFill is the cost of loading a million decisions into an empty
// set (a member starting up, or a large blocklist arriving at once).
func BenchmarkFill(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		s := New(phalanx.SystemClock{})
		fill1M(s, now)
	}
}

// settle publishes the lock-free snapshot now, as the set would do by
// itself once writes quiet down.
func settle(s *Set) { s.Settle() }

// TestSnapshot checks lookups through a burst of writes that drops the
// lock-free snapshot, and after it is rebuilt.
func TestSnapshot(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	const n = 3 * persistBurst
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}) }
	check := func(when string) {
		t.Helper()
		for i := range n {
			d, ok := s.Lookup(addr(i))
			if want := i%2 == 0; ok != want || (ok && d.Value.Addr() != addr(i)) {
				t.Fatalf("%s: %v: %v %v", when, addr(i), d.Value, ok)
			}
		}
	}
	for i := range n {
		s.Add(dec(addr(i).String(), phalanx.Ban, t0, time.Hour))
	}
	for i := 1; i < n; i += 2 {
		s.Delete(netip.PrefixFrom(addr(i), 32))
	}
	if s.snap.Load() != nil {
		t.Fatal("snapshot kept through a burst")
	}
	check("locked")
	settle(s)
	if s.snap.Load() == nil {
		t.Fatal("no snapshot after settle")
	}
	check("snapshot")
	// A write after the rebuild updates the snapshot in place of dropping it.
	s.Add(dec(addr(1).String(), phalanx.Ban, t0, time.Hour))
	if d, ok := s.Lookup(addr(1)); !ok || s.snap.Load() == nil {
		t.Fatalf("after add: %v %v", d.Value, ok)
	}
	// The set rebuilds the snapshot by itself once writes pause.
	for i := range n {
		s.Delete(netip.PrefixFrom(addr(i), 32))
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.snap.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("snapshot not rebuilt")
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := s.Lookup(addr(0)); ok || s.Len() != 0 {
		t.Fatalf("deleted still found, len %d", s.Len())
	}
}

// TestSystemClockExpiry checks that with the system clock, where Lookup
// does not read the clock, a decision stops being returned when it runs
// out even though Expire has not run.
func TestSystemClockExpiry(t *testing.T) {
	s := New(phalanx.SystemClock{})
	now := time.Now()
	s.Add(dec("192.0.2.0/24", phalanx.Captcha, now, time.Hour))
	s.Add(dec("192.0.2.1", phalanx.Ban, now, 50*time.Millisecond))
	a := netip.MustParseAddr("192.0.2.1")
	if d, ok := s.Lookup(a); !ok || d.Type != phalanx.Ban {
		t.Fatalf("before: %v %v", d.Type, ok)
	}
	for time.Now().Before(now.Add(50 * time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
	// The timer may fire a little late (a busy machine, -race); past that,
	// only the range applies.
	for deadline := time.Now().Add(5 * time.Second); !s.stale.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("stale not set")
		}
	}
	if d, ok := s.Lookup(a); !ok || d.Type != phalanx.Captcha {
		t.Fatalf("after: %v %v", d.Type, ok)
	}
	if n := s.Expire(time.Now()); n != 1 || s.stale.Load() {
		t.Fatalf("expired %d, stale %v", n, s.stale.Load())
	}
	if d, ok := s.Lookup(a); !ok || d.Type != phalanx.Captcha {
		t.Fatalf("after expire: %v %v", d.Type, ok)
	}
}

// BenchmarkSetMemory reports the heap a set holds per decision, lock-free
// snapshot included, at the order of what a member holds under
// bench/load: a /32 each, shaped like an alliance decision (scenario, no
// evidence), expiries spread over two hours.
func BenchmarkSetMemory(b *testing.B) {
	const n = 200_000
	heapInuse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	now := time.Now()
	for b.Loop() {
		before := heapInuse()
		s := New(phalanx.SystemClock{})
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			s.Add(phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, Scenario: "ssh-bf",
				Origin: phalanx.OriginAlliance, LastSeen: now.Add(time.Duration(i) * time.Millisecond), Duration: 2 * time.Hour, Events: 6})
		}
		s.Settle()
		after := heapInuse()
		b.ReportMetric(float64(after-before)/n, "B/decision")
		runtime.KeepAlive(s)
	}
}

// TestGetAndValues: Get matches the value exactly (a range's decision is
// not an address's) and only while in force; Values lists every value.
func TestGetAndValues(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	s.Add(dec("192.0.2.0/24", phalanx.Ban, t0, time.Hour))
	s.Add(dec("192.0.2.7", phalanx.Captcha, t0, 2*time.Hour))
	tests := []struct {
		value string
		at    time.Time
		want  phalanx.DecisionType // "" for none
	}{
		{"192.0.2.0/24", t0, phalanx.Ban},
		{"192.0.2.7", t0, phalanx.Captcha},
		{"192.0.2.8", t0, ""}, // inside the /24, but not its value
		{"192.0.2.0/25", t0, ""},
		{"::ffff:192.0.2.7", t0, phalanx.Captcha}, // the same value, written the IPv6 way
		{"192.0.2.0/24", t0.Add(time.Hour), ""},   // expired, not yet collected
		{"192.0.2.7", t0.Add(time.Hour), phalanx.Captcha},
	}
	for _, tt := range tests {
		c.set(tt.at)
		p, err := phalanx.ParsePrefixOrAddr(tt.value)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := s.Get(p)
		if ok != (tt.want != "") || d.Type != tt.want {
			t.Errorf("Get(%s) at %s = %v %v, want %q", tt.value, tt.at.Sub(t0), d.Type, ok, tt.want)
		}
	}
	got := s.Values()
	slices.SortFunc(got, comparePrefix)
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.7/32")}
	if !slices.Equal(got, want) {
		t.Errorf("Values() = %v, want %v", got, want)
	}
}

// TestRebuildWhileWriting: a rebuild copies the snapshot a burst dropped
// and replays the writes since without holding the writers' lock, so
// writes go on meanwhile; whatever the interleaving (writes during the
// copy, Settle publishing in between, a burst dropping that again), the
// snapshot it publishes holds exactly what the table holds.
func TestRebuildWhileWriting(t *testing.T) {
	c := newClock(t0)
	s := New(c)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	const n = 20 * persistBurst
	for i := range n {
		s.Add(dec(addr(i).String(), phalanx.Ban, t0, time.Hour))
	}
	settle(s)
	for round := range 6 {
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; !stop.Load(); i += 2 {
					j := (i*7919 + round) % (2 * n)
					if i%3 == 0 {
						s.Delete(netip.PrefixFrom(addr(j), 32))
					} else {
						s.Add(dec(addr(j).String(), phalanx.Ban, t0, time.Hour))
					}
				}
			}()
		}
		// Rebuilds while the writers go on: the timer's, forced due by
		// pretending the burst is old, and in odd rounds Settles from
		// another goroutine, landing in the middle of them.
		if round%2 == 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					s.Settle()
					time.Sleep(time.Duration(round) * 300 * time.Microsecond)
				}
			}()
		}
		for range 30 {
			time.Sleep(2 * time.Millisecond)
			s.wmu.Lock()
			s.dirtySince, s.rebuiltAt = time.Time{}, time.Time{}
			s.wmu.Unlock()
			s.rebuildSnap()
		}
		stop.Store(true)
		wg.Wait()
		// The last snapshot comes from a rebuild too (Settle would copy
		// the table and hide a wrong one).
		for range 10 {
			if s.snap.Load() != nil {
				break
			}
			s.wmu.Lock()
			s.dirtySince, s.lastWrite, s.rebuiltAt = time.Time{}, time.Time{}, time.Time{}
			s.wmu.Unlock()
			s.rebuildSnap()
		}
		snap := s.snap.Load()
		if snap == nil {
			t.Fatalf("round %d: no snapshot after the writes stopped", round)
		}
		s.mu.RLock()
		if snap.Size() != s.table.Size() {
			t.Errorf("round %d: snapshot holds %d values, table %d", round, snap.Size(), s.table.Size())
		}
		for p, r := range s.table.All() {
			if got, ok := snap.Get(p); !ok || got != r {
				t.Errorf("round %d: %s in the table, snapshot has %v (%v)", round, p, got, ok)
				break
			}
		}
		s.mu.RUnlock()
	}
}
