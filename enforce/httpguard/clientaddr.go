package httpguard

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address the guard judges r by. It is the TCP peer
// unless the peer is a trusted proxy; then the forwarding chain is walked
// from the right, skipping trusted hops, and the first untrusted hop is the
// client, because it is the last address a trusted party wrote down.
// Everything left of it was written by the client and may be a lie.
//
// X-Forwarded-For is read when present, else Forwarded (RFC 7239), else
// X-Real-IP. A proxy that writes only Forwarded must drop an incoming
// X-Forwarded-For, or a client could choose which header is read.
// An entry a trusted hop wrote that does not parse ("unknown", an
// obfuscated identifier, garbage) ends the walk at that trusted hop: the
// guard never reaches past it to an address a client wrote.
func (g *Guard) ClientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !g.isTrusted(peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return g.walk(peer, xff, splitXFF)
	}
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		return g.walk(peer, fwd, splitForwarded)
	}
	if a, ok := parseHop(r.Header.Get("X-Real-IP")); ok {
		return a
	}
	return peer
}

// walk goes right to left over the hops in lines (header lines in order),
// starting from the trusted peer.
func (g *Guard) walk(peer netip.Addr, lines []string, split func(string) ([]string, bool)) netip.Addr {
	cur := peer
	for i := len(lines) - 1; i >= 0; i-- {
		hops, ok := split(lines[i])
		if !ok {
			return cur
		}
		for j := len(hops) - 1; j >= 0; j-- {
			a, ok := parseHop(hops[j])
			if !ok {
				return cur
			}
			cur = a
			if !g.isTrusted(cur) {
				return cur
			}
		}
	}
	return cur
}

func (g *Guard) isTrusted(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses http.Request.RemoteAddr, which net/http sets to
// "ip:port" ("[ip%zone]:port" for v6).
func peerAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	// Some test harnesses and unix-socket servers set a bare address or
	// none at all; an invalid address matches no decision.
	a, _ := parseHop(s)
	return a
}

// parseHop parses one forwarding entry: an address, or an address and
// port ("1.2.3.4:80", "[2001:db8::1]:80", as Azure and RFC 7239 write).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// splitXFF splits one X-Forwarded-For line into its entries.
func splitXFF(line string) ([]string, bool) {
	return strings.Split(line, ","), true
}

// splitForwarded returns the for= value of each element of one RFC 7239
// Forwarded line, "" for an element without one. ok is false when the line
// is malformed (an unterminated quote, a pair without "="): a client can
// send a broken prefix hoping to swallow the element a proxy appends, so a
// broken line yields nothing rather than a guess.
func splitForwarded(line string) ([]string, bool) {
	var fors []string
	var cur string // for= of the element being read
	has := false   // whether the element has any pair: empty ones are skipped
	end := func() {
		if has {
			fors = append(fors, cur)
		}
		cur, has = "", false
	}
	i := 0
	for {
		// One pair: token "=" (token / quoted-string).
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			end()
			return fors, true
		}
		if line[i] == ',' || line[i] == ';' {
			// Empty list element or pair, which RFC 7230 lists allow.
			if line[i] == ',' {
				end()
			}
			i++
			continue
		}
		eq := strings.IndexByte(line[i:], '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.TrimSpace(line[i : i+eq])
		if !isToken(name) {
			return nil, false
		}
		i += eq + 1
		var val string
		if i < len(line) && line[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					b.WriteByte(line[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, false
			}
			val = b.String()
		} else {
			j := i
			for j < len(line) && line[j] != ';' && line[j] != ',' {
				j++
			}
			val = strings.TrimSpace(line[i:j])
			if !isToken(val) {
				return nil, false
			}
			i = j
		}
		has = true
		if strings.EqualFold(name, "for") {
			cur = val
		}
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			end()
			return fors, true
		}
		switch line[i] {
		case ';':
			i++
		case ',':
			end()
			i++
		default:
			return nil, false
		}
	}
}

// isToken reports whether s is an RFC 7230 token, plus ':' '[' ']' which
// unquoted for= values carry in the wild although the RFC says to quote
// them.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~:[]", c) >= 0:
		default:
			return false
		}
	}
	return true
}
