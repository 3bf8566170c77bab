package member

import (
	"net/netip"

	"github.com/phalanx-defence/phalanx"
)

// builtinNever are addresses no enforcer may block on this host, whatever
// the ledger says: blocking loopback or link-local breaks the host itself.
var builtinNever = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
}

// Never lists what this member's enforcers must never block: its own
// allowlist, loopback and link-local, and every member's declared
// territory as the ledger knows it now (local sovereignty and no friendly
// fire, enforced a second time at the last step).
func (m *Member) Never() []netip.Prefix {
	out := append([]netip.Prefix(nil), builtinNever...)
	for _, s := range m.cfg.Allowlist {
		if p, err := phalanx.ParsePrefixOrAddr(s); err == nil {
			out = append(out, p)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fold != nil {
		for _, ms := range m.fold.Members() {
			out = append(out, ms.Territory...)
		}
	}
	return out
}
