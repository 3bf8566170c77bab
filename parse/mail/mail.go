// Package mail recognises the log lines of the postfix MTA and the dovecot
// IMAP/POP3 server: SASL and IMAP/POP3 authentication failures, SMTP
// rejections of spammers and relay probes, and protocol abuse (pipelining,
// connection floods). It is hand-written rather than a list of regexps
// because mail servers log a great deal of benign traffic, and every line
// passes through here: it allocates nothing on common lines.
//
// What counts as hostile follows the postfix and dovecot filters of
// fail2ban, whose test logs are the accuracy benchmark. Lines that fail2ban
// only counts in its "aggressive" mode (clients that disconnect before
// authenticating, postscreen and rate-limit complaints) are recognised in
// every mode but only hostile under [Aggressive]: on a misconfigured MTA
// they are mostly legitimate clients.
package mail

import (
	"strings"
	"time"
	"unsafe"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// Mode says how eager the parser is to call a line hostile.
type Mode int

// Modes.
const (
	// Normal counts authentication failures, policy rejections and
	// protocol violations (fail2ban's default modes).
	Normal Mode = iota
	// Aggressive also counts clients that connect and leave without
	// authenticating, postscreen's complaints and rate limits (fail2ban's
	// "aggressive" mode).
	Aggressive
)

// Parser recognises postfix and dovecot lines. It is not safe for
// concurrent use.
type Parser struct {
	ctx  *logline.Context
	mode Mode
}

// New returns a parser in Normal mode. c supplies the year and zone that
// timestamps leave out; nil means the current year and local time.
func New(c *logline.Context) *Parser {
	return &Parser{ctx: c}
}

// SetMode switches between Normal and Aggressive.
func (p *Parser) SetMode(m Mode) { p.mode = m }

// Mode returns the parser's mode.
func (p *Parser) Mode() Mode { return p.mode }

// Parse recognises a whole line: any syslog header logline understands,
// dovecot's own log file ("2006-01-02 15:04:05 imap-login: Info: ..."),
// daemontools' tai64n ("@4000... imap-login: ..."), or a bare message. It
// returns true when the line is a postfix or dovecot line and fills ev.
func (p *Parser) Parse(line string, ev *phalanx.Event) bool {
	if len(line) > 26 && line[0] == '@' && line[25] == ' ' {
		if t, ok := tai64n(line[1:25]); ok {
			ev.Time = t.In(p.loc())
			prog, msg := splitTag(line[26:])
			return p.classify(prog, msg, ev)
		}
	}
	h, ok := logline.Parse(line, p.ctx)
	if !ok {
		return p.classify("", line, ev)
	}
	ev.Time = h.Time
	prog, msg := h.Program, h.Message
	if strings.IndexByte(prog, '(') >= 0 && strings.IndexByte(prog, ')') < 0 {
		// Dovecot 2.4 tags some lines "auth(user,ip,sasl:login)<id>:" and
		// logline, which splits the tag at its first colon, cuts that tag
		// in two. Re-split it at the first ": " from where the tag starts.
		if tail, ok := suffixAt(line, prog); ok {
			prog, msg = splitTag(tail)
		}
	}
	return p.classify(prog, msg, ev)
}

// ParseMessage is Parse for a line whose header was already split: by the
// dispatcher, or by journald.
func (p *Parser) ParseMessage(h *logline.Header, ev *phalanx.Event) bool {
	ev.Time = h.Time
	return p.classify(h.Program, h.Message, ev)
}

func (p *Parser) loc() *time.Location {
	if p.ctx == nil || p.ctx.Loc == nil {
		return time.Local
	}
	return p.ctx.Loc
}

// classify routes a message by the program that wrote it. A postfix or
// dovecot program is recognised even when its message is not (it is then
// KindInfo); without a known program only a specific pattern counts.
func (p *Parser) classify(prog, msg string, ev *phalanx.Event) bool {
	switch {
	case isPostfix(prog):
		ev.Service = phalanx.ServicePostfix
		if !p.postfix(msg, ev) {
			ev.Kind = phalanx.KindInfo
		}
		return true
	case isDovecot(prog):
		ev.Service = phalanx.ServiceDovecot
		if !p.dovecot(prog, msg, ev) {
			ev.Kind = phalanx.KindInfo
		}
		return true
	case prog == "":
		// A bare message: the tag, if any, is still in it.
		if p.postfix(msg, ev) {
			ev.Service = phalanx.ServicePostfix
			return true
		}
		if p.dovecot("", msg, ev) {
			ev.Service = phalanx.ServiceDovecot
			return true
		}
		return false
	default:
		// "auth" and the like are shared with other PAM users: only a
		// dovecot pattern makes the line dovecot's.
		if p.dovecot(prog, msg, ev) {
			ev.Service = phalanx.ServiceDovecot
			return true
		}
		return false
	}
}

// isPostfix matches postfix's syslog names: "postfix/smtpd",
// "postfix-incoming/smtpd", "postfix/submission/smtpd", ...
func isPostfix(prog string) bool {
	return len(prog) > 8 && prog[:7] == "postfix" && (prog[7] == '/' || prog[7] == '-')
}

// isDovecot matches the programs only dovecot writes as.
func isDovecot(prog string) bool {
	switch prog {
	case "dovecot", "dovecot-auth":
		return true
	}
	return strings.HasPrefix(prog, "auth-worker(") || strings.HasPrefix(prog, "auth(") ||
		isLoginService(prog)
}

// isLoginService matches "imap-login", "pop3-login", "managesieve-login",
// "submission-login": dovecot's pre-authentication processes.
func isLoginService(s string) bool {
	n, ok := strings.CutSuffix(s, "-login")
	if !ok || len(n) == 0 || len(n) > 16 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// splitTag splits "prog[pid]: message" at the first ": ", dropping the pid.
// A first token with a space in it is no tag: the whole string is then the
// message.
func splitTag(s string) (prog, msg string) {
	i := strings.Index(s, ": ")
	if i <= 0 || strings.IndexByte(s[:i], ' ') >= 0 {
		return "", s
	}
	prog, msg = s[:i], s[i+2:]
	if j := strings.LastIndexByte(prog, '['); j > 0 && prog[len(prog)-1] == ']' {
		prog = prog[:j]
	}
	return prog, msg
}

// suffixAt returns line from where sub starts, sub being a substring of
// line (as logline's header fields are). Pointer arithmetic finds it
// exactly where strings.Index might find an earlier copy in the host name.
func suffixAt(line, sub string) (string, bool) {
	if len(sub) == 0 || len(sub) > len(line) {
		return "", false
	}
	off := uintptr(unsafe.Pointer(unsafe.StringData(sub))) - uintptr(unsafe.Pointer(unsafe.StringData(line)))
	if off > uintptr(len(line)-len(sub)) || line[off:int(off)+len(sub)] != sub {
		return "", false
	}
	return line[off:], true
}

// tai64n decodes the 24 hex digits of a TAI64N label. Like fail2ban it
// ignores the TAI−UTC offset: multilog's users expect the wall clock.
func tai64n(s string) (time.Time, bool) {
	var secs, nanos uint64
	for i := 0; i < 24; i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return time.Time{}, false
		}
		if i < 16 {
			secs = secs<<4 | d
		} else {
			nanos = nanos<<4 | d
		}
	}
	const base = 1 << 62
	if secs < base || secs-base > 1<<40 || nanos >= 1e9 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs-base), int64(nanos)), true
}
