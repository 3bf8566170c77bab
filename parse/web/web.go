// Package web parses nginx and Apache access and error logs into
// phalanx.Events and classifies each request (ordinary, probing, secret
// file, exploit payload, scanner agent, open-proxy probe, malformed).
//
// It is hand-written rather than built on regular expressions because it
// sits on the replay hot path: an ordinary access line is parsed and
// classified without allocating, and a request target is only decoded
// (percent-encoding, double encoding, '+', case) when it holds something
// that needs decoding. Strings in an Event point into the line, except a
// decoded copy that Classify keeps to itself.
package web

import (
	"hash/maphash"
	"net/netip"
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// Parser parses web server log lines. It is not safe for concurrent use.
type Parser struct {
	service phalanx.Service
	ctx     *logline.Context
	agents  agentCache
}

// New returns a parser; service is what access-log events are attributed to
// (phalanx.ServiceNginx, phalanx.ServiceApache, or phalanx.ServiceHTTP when
// unknown). Error-log lines say which server wrote them and set the service
// themselves. c supplies the zone of timestamps without an offset and the
// year of syslog headers; it may be nil.
func New(service phalanx.Service, c *logline.Context) *Parser {
	if service == "" {
		service = phalanx.ServiceHTTP
	}
	p := &Parser{service: service, ctx: c}
	p.agents.seed = maphash.MakeSeed()
	return p
}

// maxWrappers bounds how many syslog/journal prefixes Parse peels off one
// line ("host nginx[1]: host nginx: 2025/..." has two).
const maxWrappers = 3

// Parse takes a whole line — an access log (common, combined,
// vhost_combined, nginx combined, with or without a syslog header) or an
// nginx or Apache error log — and reports whether it recognised it. ev is
// reset and filled: Time, Source, Service, Kind, Method, Path, Status,
// UserAgent and User when known.
func (p *Parser) Parse(line string, ev *phalanx.Event) bool {
	ev.Reset()
	line = strings.TrimRight(line, "\r\n")
	return p.parse(line, ev, p.service, 0)
}

func (p *Parser) parse(s string, ev *phalanx.Event, svc phalanx.Service, depth int) bool {
	if len(s) < 8 {
		return false
	}
	switch {
	case s[0] == '[':
		return p.parseApacheError(s, ev)
	case isNginxDate(s):
		return p.parseNginxError(s, ev)
	}
	if p.parseAccess(s, ev, svc) {
		return true
	}
	if depth >= maxWrappers {
		return false
	}
	// A syslog or journal header in front of one of the forms above.
	if h, ok := logline.Parse(s, p.ctx); ok && h.Message != "" && len(h.Message) < len(s) {
		if !p.parse(h.Message, ev, serviceOf(h.Program, svc), depth+1) {
			return false
		}
		if ev.Time.IsZero() {
			ev.Time = h.Time
		}
		return true
	}
	// journalctl -o short without a timestamp, or a forwarder that drops
	// it: "host prog[pid]: message".
	if msg, prog, ok := stripTag(s); ok {
		return p.parse(msg, ev, serviceOf(prog, svc), depth+1)
	}
	return false
}

// serviceOf refines an unknown service from the syslog program name.
func serviceOf(prog string, svc phalanx.Service) phalanx.Service {
	if svc != phalanx.ServiceHTTP {
		return svc
	}
	switch {
	case strings.Contains(prog, "nginx"):
		return phalanx.ServiceNginx
	case strings.Contains(prog, "apache"), strings.Contains(prog, "httpd"):
		return phalanx.ServiceApache
	}
	return svc
}

// stripTag removes "host prog[pid]: " or "prog[pid]: " from the front of s.
func stripTag(s string) (msg, prog string, ok bool) {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 || sp > 64 {
		return "", "", false
	}
	if tok := s[:sp]; tok[len(tok)-1] == ':' && len(tok) > 1 {
		return s[sp+1:], tok[:len(tok)-1], true
	}
	rest := s[sp+1:]
	sp = strings.IndexByte(rest, ' ')
	if sp <= 1 || sp > 64 || rest[sp-1] != ':' {
		return "", "", false
	}
	return rest[sp+1:], rest[:sp-1], true
}

// isNginxDate reports whether s starts with "2006/01/02 15:04:05".
func isNginxDate(s string) bool {
	return len(s) >= 20 && s[4] == '/' && s[7] == '/' && s[10] == ' ' && s[13] == ':' &&
		isDigit(s[0]) && isDigit(s[3]) && isDigit(s[5]) && isDigit(s[8])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseAddr parses an address as logs write it: "1.2.3.4", "2001:db8::1",
// "1.2.3.4:5678", "[2001:db8::1]:5678". Mapped IPv4 is unmapped.
func parseAddr(s string) (netip.Addr, bool) {
	if len(s) == 0 || len(s) > 64 {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return netip.Addr{}, false
		}
		s = s[1:i]
	}
	if !validAddrChars(s) {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if a, err := netip.ParseAddr(s[:i]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// validAddrChars rejects cheaply what cannot be an address, so that a
// hostname in front of an access line costs no ParseAddr, and a zone
// (which netip would allocate for) is never accepted from a log.
func validAddrChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || c == '.' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'f')) {
			return false
		}
	}
	return true
}
