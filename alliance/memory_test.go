package alliance

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
)

// memoryDecisions is how many decisions the memory benchmarks hold: the
// order of what a member holds under bench/load.
const memoryDecisions = 200_000

// fillFold puts n decisions shaped like bench/load's into f, as
// applyReport would: one reporter, a scenario string decoded from each
// envelope, no evidence, expiries spread over two hours.
func fillFold(f *Fold, n int, reporter ledger.MemberID) {
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		d := &Decision{Since: uint64(i + 2), Reporters: []ledger.MemberID{reporter}}
		d.Value, d.Type, d.Scenario = netip.PrefixFrom(a, 32), phalanx.Ban, strings.Clone("ssh-bf")
		d.Origin, d.Duration, d.Events = phalanx.OriginAlliance, 2*time.Hour, 6
		d.LastSeen = t0.Add(time.Duration(i) * time.Millisecond)
		d.FirstSeen = d.LastSeen
		f.put(d)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkFoldMemory reports the heap a fold holds per decision in force.
func BenchmarkFoldMemory(b *testing.B) {
	for b.Loop() {
		h := newHarness(b)
		before := heapInuse()
		fillFold(h.f, memoryDecisions, h.m["a"].id)
		after := heapInuse()
		b.ReportMetric(float64(after-before)/memoryDecisions, "B/decision")
		runtime.KeepAlive(h.f)
	}
}

// BenchmarkSnapshot measures a snapshot of a fold holding
// memoryDecisions decisions: capture is the part a member does under its
// lock, encode the rest; restore is a member starting from it.
func BenchmarkSnapshot(b *testing.B) {
	h := newHarness(b)
	fillFold(h.f, memoryDecisions, h.m["a"].id)
	snap := mustSnapshot(b, h.f)
	b.Run("capture", func(b *testing.B) {
		for b.Loop() {
			h.f.Capture()
		}
	})
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := h.f.Capture().Encode(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(snap))/memoryDecisions, "bytes/decision")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if _, err := Restore(h.genesis, snap, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
