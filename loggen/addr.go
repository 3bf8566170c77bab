package loggen

import (
	"math/rand/v2"
	"net/netip"
)

// Attackers and legitimate clients are drawn from disjoint first octets
// (and, for IPv6, disjoint first 16 bits), so that a background address
// can never be mistaken for an attacker in the truth.
var (
	attackerV4 = []byte{5, 45, 61, 80, 92, 103, 112, 141, 159, 162, 170, 179, 185, 193, 194, 218, 222}
	legitV4    = []byte{24, 31, 37, 50, 62, 67, 71, 73, 76, 78, 82, 84, 86, 88, 90, 98, 108, 151, 174, 176, 188, 212, 213, 217}
	attackerV6 = []uint16{0x2a0e, 0x2602, 0x2400, 0x2a06}
	legitV6    = []uint16{0x2a01, 0x2a02, 0x2003, 0x2600, 0x2406}
)

func randV4(r *rand.Rand, octets []byte) netip.Addr {
	return netip.AddrFrom4([4]byte{
		octets[r.IntN(len(octets))],
		byte(r.IntN(256)),
		byte(r.IntN(256)),
		byte(1 + r.IntN(254)),
	})
}

func randV6(r *rand.Rand, firsts []uint16) netip.Addr {
	var b [16]byte
	f := firsts[r.IntN(len(firsts))]
	b[0], b[1] = byte(f>>8), byte(f)
	for i := 2; i < 8; i++ {
		b[i] = byte(r.IntN(256))
	}
	fillIID(r, &b)
	return netip.AddrFrom16(b)
}

// fillIID fills the interface identifier (low 64 bits) of b: sometimes a
// small number, as hosting providers assign, sometimes random (SLAAC
// privacy addresses).
func fillIID(r *rand.Rand, b *[16]byte) {
	if r.IntN(3) == 0 {
		for i := 8; i < 15; i++ {
			b[i] = 0
		}
		b[15] = byte(1 + r.IntN(254))
		return
	}
	for i := 8; i < 16; i++ {
		b[i] = byte(r.IntN(256))
	}
}

// attackerAddr returns an attacker address not yet used by another actor.
func (g *gen) attackerAddr(r *rand.Rand, v6 bool) netip.Addr {
	for {
		var a netip.Addr
		if v6 {
			a = randV6(r, attackerV6)
		} else {
			a = randV4(r, attackerV4)
		}
		if !g.used[a] {
			g.used[a] = true
			return a
		}
	}
}

// legitAddr returns a named legitimate actor's address.
func (g *gen) legitAddr(r *rand.Rand, v6 bool) netip.Addr {
	for {
		a := backgroundAddr(r, v6)
		if !g.used[a] {
			g.used[a] = true
			return a
		}
	}
}

// backgroundAddr returns an address of the anonymous legitimate crowd.
func backgroundAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		return randV6(r, legitV6)
	}
	return randV4(r, legitV4)
}

// subnet64 returns n distinct attacker addresses in one random /64.
func (g *gen) subnet64(r *rand.Rand, n int) (netip.Prefix, []netip.Addr) {
	base := g.attackerAddr(r, true).As16()
	p := netip.PrefixFrom(netip.AddrFrom16(base), 64).Masked()
	addrs := make([]netip.Addr, 0, n)
	for len(addrs) < n {
		b := base
		fillIID(r, &b)
		a := netip.AddrFrom16(b)
		if !g.used[a] {
			g.used[a] = true
			addrs = append(addrs, a)
		}
	}
	return p, addrs
}

func appendAddr(b []byte, a netip.Addr) []byte { return a.AppendTo(b) }
