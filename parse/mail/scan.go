package mail

import (
	"net/netip"
	"strings"
)

// addr parses an IP address; the zero Addr when s is none.
func addr(s string) netip.Addr {
	if len(s) < 2 || len(s) > 64 {
		return netip.Addr{}
	}
	// Postfix writes IPv6 clients as "IPv6:2001:db8::1" in some places.
	s = strings.TrimPrefix(s, "IPv6:")
	// netip's errors allocate: reject what cannot be an address first.
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
			return netip.Addr{}
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// client parses postfix's "name[addr]" or "name[addr]:port" at the start of
// s and returns the address and what follows (the port is dropped). The
// name is the first '[' away: a PTR name never holds one, so an attacker's
// reverse DNS cannot move it.
func client(s string) (netip.Addr, string, bool) {
	i := strings.IndexByte(s, '[')
	if i < 0 || i > 256 || strings.IndexByte(s[:i], ' ') >= 0 {
		return netip.Addr{}, "", false
	}
	s = s[i+1:]
	j := strings.IndexByte(s, ']')
	if j < 0 {
		return netip.Addr{}, "", false
	}
	a := addr(s[:j])
	if !a.IsValid() {
		return netip.Addr{}, "", false
	}
	s = s[j+1:]
	if len(s) > 1 && s[0] == ':' && isDigit(s[1]) {
		k := 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		s = s[k:]
	}
	return a, s, true
}

// fromClient finds " from " (or a leading "from ") in s and parses the
// client after it.
func fromClient(s string) (netip.Addr, string, bool) {
	if rest, ok := strings.CutPrefix(s, "from "); ok {
		return client(rest)
	}
	i := strings.Index(s, " from ")
	if i < 0 {
		return netip.Addr{}, "", false
	}
	return client(s[i+6:])
}

// word cuts s at its first space.
func word(s string) (w, rest string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isCommand matches an SMTP command or stage name: "RCPT", "END-OF-MESSAGE".
func isCommand(s string) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '-' {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
