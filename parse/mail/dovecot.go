package mail

import (
	"net/netip"
	"strings"

	"github.com/phalanx-defence/phalanx"
)

// dovecot recognises a dovecot message. prog is the syslog tag (which may
// itself be a dovecot component such as "auth-worker(123)" or
// "imap-login"); msg may start with more components ("dovecot: auth: ",
// "Info: ", "conn unix:auth-worker (uid=143): auth-worker<1>: ").
func (p *Parser) dovecot(prog, msg string, ev *phalanx.Event) bool {
	var ctx authCtx
	if prog != "" {
		ctx.component(prog)
	}
	s := msg
	// Strip the components; a handful at most in real logs.
	for range 8 {
		i := strings.Index(s, ": ")
		if i <= 0 || !ctx.component(s[:i]) {
			break
		}
		s = s[i+2:]
	}
	switch {
	case strings.HasPrefix(s, "authentication failure; "):
		return pamUnix(s[len("authentication failure; "):], ev)
	case strings.HasPrefix(s, "Login: "):
		a, user, ok := loginFields(s[len("Login: "):])
		if !ok {
			return false
		}
		ev.Source, ev.User, ev.Kind = a, user, phalanx.KindAuthSuccess
		return true
	case isLoginEnd(s):
		return p.loginEnd(s, ev)
	}
	return passdb(s, &ctx, ev)
}

// authCtx is what the components before the content say.
type authCtx struct {
	// Dovecot 2.4 names the user and address in the tag:
	// "auth(user,addr,sasl:login)<session>: Info: sql: Password mismatch".
	user string
	addr netip.Addr
}

// component reports whether tok is one of the prefixes dovecot puts
// before its messages, and picks up what a 2.4 auth tag says.
func (c *authCtx) component(tok string) bool {
	switch tok {
	case "dovecot", "dovecot-auth", "auth", "auth-worker", "Info", "pam_unix(dovecot:auth)":
		return true
	}
	switch {
	case isLoginService(tok), strings.HasPrefix(tok, "auth-worker("), strings.HasPrefix(tok, "auth-worker<"),
		strings.HasPrefix(tok, "conn "):
		return true
	case strings.HasPrefix(tok, "auth("):
		inner := tok[len("auth("):]
		if i := strings.LastIndexByte(inner, ')'); i >= 0 {
			inner = inner[:i]
		}
		if user, a, ok := userAddr(inner); ok {
			c.user, c.addr = user, a
		}
		return true
	}
	return false
}

// pamUnix parses pam_unix's "logname= uid=0 euid=0 tty=dovecot ruser=x
// rhost=addr [user=y]" token by token, so that a ruser of "rhost=1.2.3.4"
// cannot pose as the address.
func pamUnix(s string, ev *phalanx.Event) bool {
	var a netip.Addr
	var ruser, user string
	dovecot := false
	for s != "" {
		var tok string
		tok, s = word(s)
		switch {
		case tok == "tty=dovecot":
			dovecot = true
		case strings.HasPrefix(tok, "rhost="):
			a = addr(tok[len("rhost="):])
		case strings.HasPrefix(tok, "ruser="):
			ruser = tok[len("ruser="):]
		case strings.HasPrefix(tok, "user="):
			user = tok[len("user="):]
		}
	}
	if !dovecot || !a.IsValid() {
		return false
	}
	if user == "" {
		user = ruser
	}
	ev.Source, ev.User, ev.Kind = a, user, phalanx.KindMailAuthFailed
	return true
}

// loginEnds are how a login process's last line starts.
var loginEnds = [...]string{"Aborted login", "Disconnected", "Login aborted", "Remote closed connection", "Client has quit the connection"}

func isLoginEnd(s string) bool {
	for _, e := range loginEnds {
		if strings.HasPrefix(s, e) && (len(s) == len(e) || s[len(e)] == ':' || s[len(e)] == ' ') {
			return true
		}
	}
	return false
}

// loginEnd parses "Disconnected[: reason...] (why)[ (code)]: [user=<u>,]
// [method=m,] rip=addr, ...". The parenthesised why says whether the
// client failed to authenticate.
func (p *Parser) loginEnd(s string, ev *phalanx.Event) bool {
	// The first "): " closes the why: the free-text reason before it is
	// dovecot's, and the user name the client chose comes after it.
	k := strings.Index(s, "): ")
	if k < 0 {
		return false
	}
	head, fields := s[:k], s[k+3:]
	open := strings.LastIndexByte(head, '(')
	if open < 0 {
		return false
	}
	why := head[open+1:]
	// Dovecot 2.4 adds a code: "(auth failed, 3 attempts in 16 secs) (auth_failed)".
	if isCode(why) && open >= 2 && head[open-2:open] == ") " {
		head = head[:open-2]
		o := strings.LastIndexByte(head, '(')
		if o < 0 {
			return false
		}
		why = head[o+1:]
	}
	a, user, ok := loginFields(fields)
	if !ok {
		return false
	}
	ev.Source, ev.User = a, user
	switch {
	case strings.HasPrefix(why, "auth failed, "), strings.HasPrefix(why, "tried to use disabled "),
		strings.HasPrefix(why, "tried to use disallowed "), why == "proxy dest auth failed":
		ev.Kind = phalanx.KindMailAuthFailed
	case strings.HasPrefix(why, "no auth attempts"), strings.HasPrefix(why, "disconnected before auth was ready"),
		strings.HasPrefix(why, "client didn't finish "), why == "disconnected during TLS handshake":
		// A client that leaves without trying: scanners, but also
		// phones on a flaky network.
		ev.Kind = p.aggressive(phalanx.KindMailProtocol)
	default:
		ev.Kind = phalanx.KindInfo
	}
	return true
}

// isCode matches dovecot 2.4's reason codes: "auth_failed", "no_auth_attempts".
func isCode(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// loginFields parses "[user=<u>, ][method=m, ]rip=addr[, ...]". A user name
// is the client's choice: it may hold ", rip=" but not '>', so whatever
// follows the address must have no '>' outside a trailing session=<id>.
func loginFields(s string) (netip.Addr, string, bool) {
	var user string
	if rest, ok := strings.CutPrefix(s, "user=<"); ok {
		i := strings.IndexByte(rest, '>')
		if i < 0 || !strings.HasPrefix(rest[i+1:], ", ") {
			return netip.Addr{}, "", false
		}
		user, s = rest[:i], rest[i+3:]
	}
	if rest, ok := strings.CutPrefix(s, "method="); ok {
		i := strings.Index(rest, ", ")
		if i < 0 || strings.IndexByte(rest[:i], ' ') >= 0 {
			return netip.Addr{}, "", false
		}
		s = rest[i+2:]
	}
	rest, ok := strings.CutPrefix(s, "rip=")
	if !ok {
		return netip.Addr{}, "", false
	}
	ip, tail := cutAny(rest, ", ")
	a := addr(ip)
	if !a.IsValid() {
		return netip.Addr{}, "", false
	}
	if i := strings.LastIndex(tail, ", session=<"); i >= 0 && strings.HasSuffix(tail, ">") {
		tail = tail[:i]
	}
	if strings.IndexByte(tail, '>') >= 0 {
		return netip.Addr{}, "", false
	}
	return a, user, true
}

// passdb recognises a password database's verdict:
// "pam(user,addr[,session]): pam_authenticate() failed: ...",
// "sql(user,addr,<session>): unknown user", "ldap(u,a,): invalid credentials",
// or, after a 2.4 auth(user,addr,...) tag, "sql: Password mismatch".
func passdb(s string, c *authCtx, ev *phalanx.Event) bool {
	n := 0
	for n < len(s) && n <= 15 && (s[n] >= 'a' && s[n] <= 'z' || s[n] == '-') {
		n++
	}
	if n < 3 || n > 15 || n == len(s) {
		return false
	}
	var user, reason string
	var a netip.Addr
	switch {
	case s[n] == '(':
		k := strings.Index(s, "): ")
		if k < 0 || strings.IndexByte(s[:k], ' ') >= 0 {
			return false
		}
		var ok bool
		if user, a, ok = userAddr(s[n+1 : k]); !ok {
			return false
		}
		reason = s[k+3:]
	case strings.HasPrefix(s[n:], ": ") && c.addr.IsValid():
		user, a, reason = c.user, c.addr, s[n+2:]
	default:
		return false
	}
	if !passdbFailure(reason) {
		return false
	}
	ev.Source, ev.User, ev.Kind = a, user, phalanx.KindMailAuthFailed
	return true
}

// passdbFailure matches the verdicts that mean a wrong user or password.
func passdbFailure(r string) bool {
	if rest, ok := strings.CutPrefix(r, "pam_authenticate() failed: "); ok {
		return strings.HasPrefix(rest, "User not known to the underlying authentication module") ||
			hasPrefixFold(rest, "Authentication failure (password mismatch?)") ||
			strings.HasPrefix(rest, "Permission denied")
	}
	return hasPrefixFold(r, "unknown user") || hasPrefixFold(r, "invalid credentials") ||
		hasPrefixFold(r, "password mismatch")
}

// userAddr splits "user,addr[,session]". The user is the client's choice
// and may hold commas, the session is dovecot's: so the address is the last
// field, or the one before it.
func userAddr(inner string) (string, netip.Addr, bool) {
	last := strings.LastIndexByte(inner, ',')
	if last < 0 {
		return "", netip.Addr{}, false
	}
	if a := addr(inner[last+1:]); a.IsValid() {
		return inner[:last], a, true
	}
	prev := strings.LastIndexByte(inner[:last], ',')
	if prev < 0 {
		return "", netip.Addr{}, false
	}
	if a := addr(inner[prev+1 : last]); a.IsValid() {
		return inner[:prev], a, true
	}
	return "", netip.Addr{}, false
}
