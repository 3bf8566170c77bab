package nft

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// span is one element of the kernel sets: [start, end). A single address
// (single) goes in a hash set as one element; any wider prefix is an
// interval element pair in an interval set. An invalid end means the span
// runs to the top of the address space, where there is no next address to
// carry the end flag.
type span struct {
	start, end netip.Addr
	single     bool
}

// entry is a span with the time it lapses.
type entry struct {
	span
	until time.Time
}

// compareSpan orders spans by start, then kind, then end: the order of
// plan's output and of read's, so the two can be merged.
func compareSpan(a, b span) int {
	if c := a.start.Compare(b.start); c != 0 {
		return c
	}
	if a.single != b.single {
		if a.single {
			return 1
		}
		return -1
	}
	return a.end.Compare(b.end)
}

// plan turns decisions into the spans the kernel sets should hold, each
// with the time it lapses. Only bans drop packets; addresses in never are
// carved out of wider bans rather than voiding them, so a ban on a /16
// still drops its neighbours of an allowlisted host. The kernel refuses
// overlapping intervals, so a prefix inside another banned prefix is left
// to the wider one.
//
// The result is sorted by compareSpan, with no span twice.
func plan(ds []phalanx.Decision, never []netip.Prefix, now time.Time) []entry {
	type item struct {
		hi, lo uint64 // the address as a sort key, IPv4 below IPv6
		fam    uint8  // 4 or 6
		bits   uint8
		p      netip.Prefix
		until  time.Time
	}
	mk := func(p netip.Prefix, until time.Time) item {
		b := p.Addr().As16()
		fam := uint8(6)
		if p.Addr().Is4() {
			fam = 4
		}
		return item{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), fam, uint8(p.Bits()), p, until}
	}
	items := make([]item, 0, len(ds))
	for _, d := range ds {
		if d.Type != phalanx.Ban || !d.Value.IsValid() {
			continue
		}
		until := d.Until()
		if !until.After(now) {
			continue
		}
		p := normalize(d.Value)
		if len(never) == 0 {
			items = append(items, mk(p, until))
			continue
		}
		for _, p := range subtract(p, never) {
			items = append(items, mk(p, until))
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.fam != b.fam {
			return cmp.Compare(a.fam, b.fam)
		}
		if a.hi != b.hi {
			return cmp.Compare(a.hi, b.hi)
		}
		if a.lo != b.lo {
			return cmp.Compare(a.lo, b.lo)
		}
		return cmp.Compare(a.bits, b.bits)
	})
	out := make([]entry, 0, len(items))
	var last item
	for _, it := range items {
		// Sorted by start, widest first: prefixes nest or are disjoint, so
		// if any kept prefix covers this one, the last kept one does.
		if last.p.IsValid() && last.p.Overlaps(it.p) {
			if last.p == it.p && it.until.After(last.until) {
				last.until = it.until
				out[len(out)-1].until = it.until
			}
			continue
		}
		last = it
		out = append(out, entry{toSpan(it.p), it.until})
	}
	return out
}

func normalize(p netip.Prefix) netip.Prefix { return phalanx.NormalizePrefix(p) }

// subtract returns p without the addresses in never, as prefixes.
func subtract(p netip.Prefix, never []netip.Prefix) []netip.Prefix {
	for _, n := range never {
		if !n.Overlaps(p) {
			continue
		}
		if n.Bits() <= p.Bits() {
			return nil // p is entirely protected
		}
		// n lies inside p: split p in halves until the pieces either miss
		// n or are inside it. That costs at most one prefix per bit.
		lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
		hi := netip.PrefixFrom(lastAddr(lo).Next(), p.Bits()+1)
		return append(subtract(lo, never), subtract(hi, never)...)
	}
	return []netip.Prefix{p}
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := bits; i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
}

func toSpan(p netip.Prefix) span {
	if p.IsSingleIP() {
		return span{start: p.Addr(), end: p.Addr().Next(), single: true}
	}
	return span{start: p.Masked().Addr(), end: lastAddr(p).Next()}
}

// key is an address as the kernel stores it in the set.
func key(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}
