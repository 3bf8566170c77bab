// Package sshd recognises OpenSSH server log lines: every failure that
// fail2ban's sshd filter knows in its normal, ddos, extra and aggressive
// modes, successful logins, and the benign lines around them.
//
// It is hand-written (literal prefixes, scanning from the anchored end of a
// message where fail2ban's regexes are anchored there) because it runs on
// every sshd line an alliance member reads: it allocates nothing on the
// common lines and takes a few hundred nanoseconds at most.
//
// Some lines only count because an earlier line of the same sshd process
// said something: "Disconnecting: Too many authentication failures" names
// no address, so the address comes from an earlier "Connection from" or
// "Failed publickey" line of that PID, or, if none came yet, the failure
// waits for the next line of that PID that names one. The Parser keeps that
// state per (host, PID) in a fixed table (see stateEntries) — the same
// merging rules as fail2ban's multi-line failure ids (F-MLFID, F-NOFAIL,
// F-MLFFORGET, F-MLFGAINED).
//
// Choices a reader should know, all fail2ban's:
//   - A valid user's "Failed publickey" is KindInfo with Method "publickey"
//     (a client offers its keys in turn; a misconfigured job is likelier
//     than an attack); the "Too many authentication failures" that ends
//     real key spraying counts, with the address those lines gave.
//   - A pam_unix "authentication failure" is KindInfo: sshd logs a
//     "Failed password" line for the same attempt. It counts only when the
//     same process saw more than one user name.
//   - An "Accepted" line is KindAuthSuccess, except after failures for
//     other user names in the same process: then it is KindAuthFailed,
//     charging the attempts that did not count by themselves.
//   - A host name where an address belongs is never resolved (the attacker
//     chose it): the event is recognised with an invalid Source.
package sshd

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// Mode selects which lines count, as fail2ban's sshd filter "mode" does.
type Mode int

// Modes. Aggressive is Normal plus DDoS plus Extra.
const (
	// Normal counts authentication failures, invalid and refused users and
	// refused connections.
	Normal Mode = iota
	// DDoS also counts connections that never got to authenticate: no
	// identification string, bad protocol, closed or reset in preauth.
	DDoS
	// Extra also counts clients that cannot negotiate (no matching cipher,
	// key exchange, MAC; no authentication method) and preauth disconnects
	// that name a user.
	Extra
	// Aggressive counts everything DDoS and Extra count.
	Aggressive
)

// ParseMode parses a fail2ban mode name; "" is Normal.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "normal":
		return Normal, nil
	case "ddos":
		return DDoS, nil
	case "extra":
		return Extra, nil
	case "aggressive":
		return Aggressive, nil
	}
	return 0, fmt.Errorf("sshd: unknown mode %q: use normal, ddos, extra or aggressive", s)
}

// String returns the fail2ban name of the mode.
func (m Mode) String() string {
	switch m {
	case Normal:
		return "normal"
	case DDoS:
		return "ddos"
	case Extra:
		return "extra"
	case Aggressive:
		return "aggressive"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) ddos() bool  { return m == DDoS || m == Aggressive }
func (m Mode) extra() bool { return m == Extra || m == Aggressive }

// Parser parses sshd lines. It is not safe for concurrent use: it holds the
// per-process state that multi-line failures need.
type Parser struct {
	mode  Mode
	ctx   *logline.Context
	state table
}

// New returns a parser for mode. c supplies the year and zone of
// timestamps that lack them; nil means the current year and local time.
func New(mode Mode, c *logline.Context) *Parser {
	return &Parser{mode: mode, ctx: c}
}

// Mode returns the parser's mode.
func (p *Parser) Mode() Mode { return p.mode }

// IsProgram reports whether a syslog program name is OpenSSH's server:
// "sshd", or "sshd-session" which OpenSSH 9.8 and later log per connection.
func IsProgram(prog string) bool { return prog == "sshd" || prog == "sshd-session" }

// Parse parses a whole line: with a syslog header (any form logline
// understands), in journalctl's short form without a timestamp ("srv
// sshd[123]: msg"), or a bare sshd message. It reports whether the line is
// an sshd line it recognised, with ev filled; otherwise ev is untouched.
func (p *Parser) Parse(line string, ev *phalanx.Event) bool {
	h, ok := logline.Parse(line, p.ctx)
	if !ok {
		h, ok = logline.ParseUntimed(line)
	}
	if ok {
		if !IsProgram(h.Program) {
			return false
		}
	} else {
		h = logline.Header{Message: line}
	}
	return p.ParseMessage(&h, ev)
}

// ParseMessage is Parse for a line whose header the caller already split
// (the dispatcher routes lines of program sshd or sshd-session here; journald
// entries arrive split). The program is not checked again.
func (p *Parser) ParseMessage(h *logline.Header, ev *phalanx.Event) bool {
	msg := h.Message
	for len(msg) > 0 && (msg[len(msg)-1] == '\r' || msg[len(msg)-1] == '\n') {
		msg = msg[:len(msg)-1] // CRLF files, or a caller that kept the newline
	}
	m, ok := classify(msg, p.mode)
	if !ok {
		return false
	}
	ev.Reset()
	ev.Time = h.Time
	ev.Service = phalanx.ServiceSSHD
	ev.User = m.user
	ev.Method = m.method
	addr := parseAddr(m.host)
	if m.noState || h.PID == 0 {
		// Without a PID no two lines can be tied together.
		ev.Source = addr
		if !addr.IsValid() {
			ev.SourceName = m.host
		}
		ev.Kind = m.kind
		if m.nofail {
			ev.Kind = m.info
		}
		return true
	}
	p.merge(stateKey(h.Host, h.PID), h, &m, addr, ev)
	if !ev.Source.IsValid() && m.host != "" {
		ev.SourceName = m.host
	}
	return true
}

// merge applies fail2ban's multi-line rules (filter.py _mergeFailure) to a
// matched line: a line without an address takes the address an earlier line
// of the same process named; a line that does not count by itself (nofail)
// counts when a failure of that process is still waiting for an address,
// or when the process has seen more than one user name; a forgetting line
// (disconnect, accepted) ends the process's state.
func (p *Parser) merge(key uint64, h *logline.Header, m *match, addr netip.Addr, ev *phalanx.Event) {
	now := h.Time.UnixNano()
	if h.Time.IsZero() {
		now = 0
	}
	nofail := m.nofail
	var (
		e          = p.state.lookup(key, now)
		ip         = addr
		pendingWas bool
		pendKind   phalanx.EventKind
		multi      bool
		uh         uint64
	)
	if m.user != "" {
		uh = hashString(m.user)
	}
	if e != nil {
		if uh != 0 {
			e.addUser(uh)
		}
		if m.gained {
			e.pending = false
		}
		if addr.IsValid() {
			e.ip = addr
		}
		e.seen = now
		ip = e.ip
		multi = e.users > 1
		pendingWas, pendKind = e.pending, e.pendingKind
		e.pending = false
		if m.forget {
			p.state.remove(e)
			e = nil
		}
	} else if !m.forget {
		e = p.state.insert(key, now)
		e.ip = addr
		if uh != 0 {
			e.addUser(uh)
		}
	}
	kind := m.kind
	if pendingWas || multi {
		if nofail {
			kind = phalanx.KindAuthFailed
			if pendingWas {
				kind = pendKind
			}
		}
		nofail = false
	}
	if nofail {
		ev.Kind = m.info
		ev.Source = addr
		if !addr.IsValid() {
			ev.Source = ip
		}
		return
	}
	ev.Kind = kind
	ev.Source = ip
	if !ip.IsValid() && m.host == "" && e != nil {
		// A failure with no address yet: the next line of this process
		// that names one reports it.
		e.pending = true
		e.pendingKind = kind
	}
}

// parseAddr parses an address token; anything else (a host name, which we
// never resolve because the attacker chose it, or garbage) is invalid.
func parseAddr(s string) netip.Addr {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	// A zone ("fe80::1%eth0") is never a remote peer, and parsing one
	// would allocate.
	if s == "" || len(s) > 45 || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
