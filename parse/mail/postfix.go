package mail

import (
	"strings"

	"github.com/phalanx-defence/phalanx"
)

// postfix recognises a postfix message (the part after "postfix/smtpd[pid]: ")
// and fills ev. It returns false, leaving ev's kind unset, when the message
// is none it knows.
func (p *Parser) postfix(s string, ev *phalanx.Event) bool {
	if rest, ok := strings.CutPrefix(s, "warning: "); ok {
		return p.postfixWarning(rest, ev)
	}
	// An optional queue id: "NOQUEUE: " or "1D8CC1CA0A7F: ".
	if i := strings.Index(s, ": "); i >= 5 && i <= 24 && isQueueID(s[:i]) {
		s = s[i+2:]
	}
	switch {
	case strings.HasPrefix(s, "reject: "):
		return p.reject(s[len("reject: "):], ev)
	case strings.HasPrefix(s, "milter-reject: "):
		return p.reject(s[len("milter-reject: "):], ev)
	case strings.HasPrefix(s, "improper command pipelining after "),
		strings.HasPrefix(s, "too many errors after "):
		// A spambot that does not wait for the server's answers, or
		// one that keeps trying commands the server refuses.
		return p.fromKind(s, phalanx.KindMailProtocol, ev)
	case strings.HasPrefix(s, "lost connection after "):
		cmd, _ := word(s[len("lost connection after "):])
		// A connection lost during DATA is an ordinary network failure;
		// after AUTH it is followed by a "disconnect ... auth=0/1" line
		// that is counted instead.
		k := p.aggressive(phalanx.KindMailProtocol)
		if cmd == "DATA" || cmd == "AUTH" || !isCommand(cmd) {
			k = phalanx.KindInfo
		}
		return p.fromKind(s, k, ev)
	case strings.HasPrefix(s, "disconnect from "):
		a, rest, ok := client(s[len("disconnect from "):])
		if !ok {
			return false
		}
		ev.Source, ev.Kind = a, phalanx.KindInfo
		if failedAuth(rest) {
			ev.Kind = p.aggressive(phalanx.KindMailProtocol)
		}
		return true
	case strings.HasPrefix(s, "connect from "):
		return p.fromKind(s, phalanx.KindInfo, ev)
	case strings.HasPrefix(s, "PREGREET "), strings.HasPrefix(s, "HANGUP after "),
		strings.HasPrefix(s, "COMMAND TIME LIMIT from "), strings.HasPrefix(s, "COMMAND COUNT LIMIT from "),
		strings.HasPrefix(s, "COMMAND LENGTH LIMIT from "):
		// postscreen: talking before the greeting, hanging up mid-test,
		// flooding commands — bots, but also broken clients.
		return p.fromKind(s, p.aggressive(phalanx.KindMailProtocol), ev)
	case strings.HasPrefix(s, "client="):
		a, rest, ok := client(s[len("client="):])
		if !ok {
			return false
		}
		ev.Source, ev.Kind = a, phalanx.KindInfo
		if i := strings.Index(rest, "sasl_username="); i >= 0 {
			ev.Kind = phalanx.KindAuthSuccess
			ev.User, _ = cutAny(rest[i+len("sasl_username="):], ", ")
		}
		return true
	}
	return false
}

// postfixWarning handles "warning: ..." messages.
func (p *Parser) postfixWarning(s string, ev *phalanx.Event) bool {
	if rest, ok := strings.CutPrefix(s, "hostname "); ok {
		// "hostname h does not resolve to address a": forged reverse DNS.
		_, rest = word(rest)
		if a, ok := strings.CutPrefix(rest, "does not resolve to address "); ok {
			w, _ := word(a)
			if ip := addr(strings.TrimSuffix(w, ":")); ip.IsValid() {
				ev.Source, ev.Kind = ip, p.aggressive(phalanx.KindMailProtocol)
				return true
			}
		}
		return false
	}
	if strings.Contains(s, " limit exceeded: ") {
		// anvil: "Connection rate limit exceeded: 31 from h[a] for service smtpd".
		return p.fromKind(s, p.aggressive(phalanx.KindMailProtocol), ev)
	}
	a, rest, ok := client(s)
	if !ok || !strings.HasPrefix(rest, ": SASL ") {
		return false
	}
	mech, rest := word(rest[len(": SASL "):])
	if !isMechanism(mech) {
		return false
	}
	reason, ok := strings.CutPrefix(rest, "authentication failed:")
	if !ok {
		return false
	}
	ev.Source = a
	if i := strings.LastIndex(reason, "sasl_username="); i >= 0 {
		ev.User, _ = cutAny(reason[i+len("sasl_username="):], ", ")
	}
	switch {
	case strings.HasPrefix(reason, " Connection lost to authentication server"):
		// Our own auth service failed: not the client's doing.
		ev.Kind = phalanx.KindInfo
	case strings.HasPrefix(reason, " Invalid authentication mechanism"):
		// Usually a client configured for a mechanism we do not offer.
		ev.Kind = p.aggressive(phalanx.KindMailAuthFailed)
	default:
		ev.Kind = phalanx.KindMailAuthFailed
	}
	return true
}

// reject handles "CMD from name[addr]: CODE DSN text" after "reject: ".
func (p *Parser) reject(s string, ev *phalanx.Event) bool {
	cmd, rest := word(s)
	if !isCommand(cmd) || !strings.HasPrefix(rest, "from ") {
		return false
	}
	a, rest, ok := client(rest[len("from "):])
	if !ok {
		return false
	}
	ev.Source, ev.Kind = a, phalanx.KindInfo
	rest = strings.TrimPrefix(rest, ":")
	rest = strings.TrimPrefix(rest, " ")
	code, rest := word(rest)
	dsn, text := word(rest)
	if len(code) != 3 || !isDigits(code) || (code[0] != '4' && code[0] != '5') || !isDSN(dsn) {
		return true
	}
	if hostileReject(text) {
		ev.Kind = phalanx.KindMailRejected
	}
	return true
}

// hostileReason lists the rejection reasons that say the client is a
// spammer, a relay prober or a directory harvester; others (greylisting,
// a full mailbox, a message too large) happen to legitimate senders.
var hostileReasons = [...]string{
	"Service unavailable", // RBL hit
	"Client host rejected",
	"Command rejected",
	"Data command rejected",
	"Relay access denied",
	"Host not found",
	"Domain not found",
	"need fully-qualified hostname",
	"match ", // check_*_access tables
	"User unknown",
	"user unknown",
	"Undeliverable address",
	"undeliverable address",
	"Access denied",
	"Malformed DNS server reply",
}

// hostileReject classifies the text after the status codes:
// "[<addr>]: [Helo command|Sender address|Recipient address rejected: ]reason".
func hostileReject(text string) bool {
	if strings.HasPrefix(text, "<") {
		i := strings.Index(text, ">: ")
		if i < 0 {
			return false
		}
		text = text[i+3:]
	} else {
		text = strings.TrimPrefix(text, ": ")
	}
	if strings.HasPrefix(text, "Helo command rejected: ") {
		// Any HELO policy failure: legitimate MTAs announce a proper name.
		return true
	}
	if r, ok := strings.CutPrefix(text, "Sender address rejected: "); ok {
		text = r
	} else if r, ok := strings.CutPrefix(text, "Recipient address rejected: "); ok {
		text = r
	}
	for _, h := range hostileReasons {
		if strings.HasPrefix(text, h) {
			return true
		}
	}
	return false
}

// fromKind parses the client after " from " and sets kind.
func (p *Parser) fromKind(s string, k phalanx.EventKind, ev *phalanx.Event) bool {
	a, _, ok := fromClient(s)
	if !ok {
		return false
	}
	ev.Source, ev.Kind = a, k
	return true
}

// aggressive returns k in Aggressive mode and KindInfo otherwise.
func (p *Parser) aggressive(k phalanx.EventKind) phalanx.EventKind {
	if p.mode == Aggressive {
		return k
	}
	return phalanx.KindInfo
}

// failedAuth looks for "auth=0/N" (N > 0) among the command counters of a
// "disconnect from" line: every AUTH the client tried failed.
func failedAuth(s string) bool {
	i := strings.Index(s, " auth=")
	if i < 0 {
		return false
	}
	v, _ := word(s[i+len(" auth="):])
	ok, tried, found := strings.Cut(v, "/")
	return found && isDigits(ok) && isDigits(tried) && strings.Trim(ok, "0") == "" && strings.Trim(tried, "0") != ""
}

// isQueueID matches "NOQUEUE" and postfix queue ids (hex, or the long
// base-52 form); an id has a digit, which keeps "reject" from being one.
func isQueueID(s string) bool {
	if s == "NOQUEUE" {
		return true
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
		digit = digit || isDigit(c)
	}
	return digit
}

// isDSN matches an enhanced status code: "5.7.1", "4.7.25".
func isDSN(s string) bool {
	if len(s) < 5 || len(s) > 9 || (s[0] != '4' && s[0] != '5') || s[1] != '.' || !isDigit(s[2]) || s[3] != '.' {
		return false
	}
	return isDigits(s[4:])
}

// isMechanism matches a SASL mechanism name: LOGIN, PLAIN, CRAM-MD5, ...
func isMechanism(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cutAny returns s up to the first byte of any of cutset.
func cutAny(s, cutset string) (string, string) {
	if i := strings.IndexAny(s, cutset); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}
