package sshd

import (
	"strings"

	"github.com/phalanx-defence/phalanx"
)

// match is what a message said, before per-process state is applied.
type match struct {
	kind   phalanx.EventKind // the kind when the line counts
	info   phalanx.EventKind // the kind when it does not (nofail): KindInfo or KindAuthSuccess
	host   string            // the address token; "" when the message names none
	user   string
	method string

	nofail  bool // fail2ban F-NOFAIL: does not count by itself, but gives the process its address
	forget  bool // F-MLFFORGET: ends the process's state
	gained  bool // F-MLFGAINED: a successful login clears waiting failures
	noState bool // recognised, but no fail2ban rule of this mode knows it: no effect on state
}

func fail(kind phalanx.EventKind) match { return match{kind: kind, info: phalanx.KindInfo} }

func helper() match { return match{kind: phalanx.KindInfo, info: phalanx.KindInfo, nofail: true} }

// benign is a recognised line that never counts and never touches state.
func benign() match {
	return match{kind: phalanx.KindInfo, info: phalanx.KindInfo, nofail: true, noState: true}
}

// classify recognises an sshd message. Rules follow fail2ban's
// filter.d/sshd.conf (1.0.2, plus the newer OpenSSH messages its test
// corpus has); the comment on each case quotes the message it reads.
func classify(msg string, mode Mode) (m match, ok bool) {
	// Solaris: "[ID 800047 auth.info] ".
	if strings.HasPrefix(msg, "[ID ") {
		if i := strings.IndexByte(msg, ']'); i > 0 && i < 40 {
			msg = trimLeftSpace(msg[i+1:])
		}
	}
	// A kernel-style stamp that journald forwarding leaves in the message:
	// "kernel:[  970.699396]: " or "kernel: [  970.699397] ".
	if rest, ok := strings.CutPrefix(msg, "kernel:"); ok {
		rest = strings.TrimPrefix(rest, " ")
		if len(rest) > 0 && rest[0] == '[' {
			if i := strings.IndexByte(rest, ']'); i > 0 && i < 32 {
				rest = strings.TrimPrefix(rest[i+1:], ":")
				msg = trimLeftSpace(rest)
			}
		}
	}
	// fail2ban's __pref: "error: ", "fatal: ", optionally "PAM: ".
	if len(msg) > 7 && (msg[:7] == "error: " || msg[:7] == "fatal: ") {
		msg = msg[7:]
		msg = strings.TrimPrefix(msg, "PAM: ")
	}
	if len(msg) < 8 {
		return m, false
	}
	switch msg[0] {
	case 'F':
		if rest, ok := strings.CutPrefix(msg, "Failed "); ok {
			return failed(rest)
		}
	case 'I', 'i':
		// Invalid user NAME from HOST[ port N]
		if len(msg) > 13 && (msg[1:13] == "nvalid user " || msg[1:13] == "llegal user ") {
			return userFrom(msg[13:], phalanx.KindInvalidUser)
		}
		// input_userauth_request: invalid user NAME [preauth] (follows "Invalid user", which counted)
		if strings.HasPrefix(msg, "input_userauth_request: ") {
			return benign(), true
		}
	case 'A', 'a':
		if rest, ok := strings.CutPrefix(msg, "Accepted "); ok {
			return accepted(rest)
		}
		// Address HOST maps to NAME, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!
		if strings.HasPrefix(msg, "Address ") && strings.Contains(msg, " maps to ") {
			return benign(), true
		}
		// Authentication failure for NAME from HOST[ via H] (PAM on BSD/macOS)
		if rest, ok := strings.CutPrefix(msg[1:], "uthentication "); ok {
			for _, w := range [...]string{"failure for ", "error for ", "failed for "} {
				if r, ok := strings.CutPrefix(rest, w); ok {
					return pamFrom(r, true)
				}
			}
		}
	case 'U':
		return classifyU(msg, mode)
	case 'C':
		return classifyC(msg, mode)
	case 'D':
		return classifyD(msg, mode)
	case 'R':
		return classifyR(msg, mode)
	case 'p':
		// pam_unix(sshd:auth): authentication failure; ... ruser=R rhost=HOST [user=U]
		return pamModule(msg)
	case 'r':
		// refused connect from NAME (HOST)
		if rest, ok := strings.CutPrefix(msg, "refused connect from "); ok {
			_, rest = token(rest)
			if len(rest) > 2 && rest[0] == ' ' && rest[1] == '(' {
				if i := strings.IndexByte(rest, ')'); i > 2 {
					m = fail(phalanx.KindConnRefused)
					m.host = rest[2:i]
					return m, true
				}
			}
		}
		// reverse mapping checking getaddrinfo for NAME [HOST] failed - POSSIBLE BREAK-IN ATTEMPT!
		// (DNS hygiene of the client's network, not an attack; fail2ban ignores it too)
		if strings.HasPrefix(msg, "reverse mapping checking ") {
			return benign(), true
		}
	case 'm':
		// maximum authentication attempts exceeded for NAME from HOST port N ssh2 [preauth]
		if rest, ok := strings.CutPrefix(msg, "maximum authentication attempts exceeded for "); ok {
			m, ok = userFrom(rest, phalanx.KindMaxAuthTries)
			m.user = strings.TrimPrefix(m.user, "invalid user ")
			return m, ok
		}
	case 'k':
		// kex_exchange_identification: [read: ](client sent invalid protocol identifier|Connection closed by remote host|Connection reset by peer)
		if rest, ok := strings.CutPrefix(msg, "kex_exchange_identification: "); ok {
			rest = strings.TrimPrefix(rest, "read: ")
			if len(rest) > 1 && (hasPrefixFold1(rest, "lient sent invalid protocol identifier") ||
				hasPrefixFold1(rest, "onnection closed by remote host") || hasPrefixFold1(rest, "onnection reset by peer")) {
				if hasPrefixFold1(rest, "lient sent invalid protocol identifier") {
					return ddosOnly(mode, fail(phalanx.KindBannerError))
				}
				// Connected and left without a banner: what a port check
				// does as well as a scanner, so it is a pre-auth close.
				return ddosOnly(mode, fail(phalanx.KindPreauthClose))
			}
			return benign(), true // "banner line too long" and the like
		}
	case 'B':
		// Bad protocol version identification 'X' from HOST port N
		if rest, ok := strings.CutPrefix(msg, "Bad protocol version identification "); ok {
			if i := strings.LastIndex(rest, "' from "); i >= 0 {
				m = fail(phalanx.KindKexFailure)
				m.host, _ = token(rest[i+7:])
				return ddosOnly(mode, m)
			}
		}
	case 'b':
		// banner exchange: Connection from HOST port N: invalid format
		if rest, ok := strings.CutPrefix(msg, "banner exchange: Connection from "); ok {
			m = fail(phalanx.KindBannerError)
			m.host, _ = token(rest)
			return ddosOnly(mode, m)
		}
	case 'S':
		// SSH: Server;Ltype: Version;Remote: HOST-PORT;Protocol: ...  (a no-fail address helper)
		if rest, ok := strings.CutPrefix(msg, "SSH: Server;Ltype: "); ok {
			if i := strings.Index(rest, ";Remote: "); i > 0 {
				lt := rest[:i]
				if lt == "Authname" || lt == "Version" || lt == "Kex" {
					r := rest[i+9:]
					if j := strings.IndexByte(r, ';'); j > 0 {
						if d := strings.LastIndexByte(r[:j], '-'); d > 0 {
							m = helper()
							m.host = r[:d]
							return ddosOnly(mode, m)
						}
					}
				}
			}
		}
	case 's':
		// ssh_dispatch_run_fatal: Connection from HOST port N: message authentication code incorrect [preauth]
		if rest, ok := strings.CutPrefix(msg, "ssh_dispatch_run_fatal: Connection from "); ok {
			if strings.Contains(rest, ": message authentication code incorrect") || strings.Contains(rest, ": Connection corrupted") || strings.Contains(rest, ": connection corrupted") {
				m = fail(phalanx.KindKexFailure)
				m.host, _ = token(rest)
				return ddosOnly(mode, m)
			}
		}
	case 'T':
		// Timeout before authentication for HOST port N
		// Timeout before authentication for connection from HOST to ADDR, pid = N
		if rest, ok := strings.CutPrefix(msg, "Timeout before authentication for "); ok {
			rest = strings.TrimPrefix(rest, "connection from ")
			m = fail(phalanx.KindAuthTimeout)
			m.host, _ = token(rest)
			return ddosOnly(mode, m)
		}
	case 'M':
		// Magic value check failed (N) on obfuscated handshake from HOST port N
		// (a patched sshd; CrowdSec counts it, fail2ban has no rule: protocol garbage, as ddos)
		if rest, ok := strings.CutPrefix(msg, "Magic value check failed "); ok {
			if i := strings.Index(rest, " from "); i >= 0 {
				m = fail(phalanx.KindKexFailure)
				m.host, _ = token(rest[i+6:])
				m.noState = true
				return ddosOnly(mode, m)
			}
		}
	case 'n':
		// no matching mac found: client ... server ...   (no address: from the process)
		if rest, ok := strings.CutPrefix(msg, "no matching "); ok {
			if algMatch(rest, " found:") {
				return extraOnly(mode, fail(phalanx.KindKexFailure))
			}
		}
	case 'P':
		// PAM 4 more authentication failures; ... rhost=HOST user=U (a summary of lines already counted)
		// PAM service(sshd) ignoring max retries; 6 > 3
		if strings.HasPrefix(msg, "PAM ") {
			return benign(), true
		}
		// Postponed publickey for USER from HOST port N ssh2 [preauth]
		if rest, ok := strings.CutPrefix(msg, "Postponed "); ok {
			if i := strings.Index(rest, " for "); i > 0 {
				m = benign()
				m.method = authMethod(rest[:i])
				return m, true
			}
		}
	}
	return m, false
}

// ddosOnly keeps a ddos-mode rule's match in ddos and aggressive modes and
// makes it a recognised, stateless, non-counting line otherwise (fail2ban
// has no rule for it in that mode, so it must not touch state either).
func ddosOnly(mode Mode, m match) (match, bool) {
	if !mode.ddos() {
		host := m.host
		m = benign()
		m.host = host
	}
	return m, true
}

func extraOnly(mode Mode, m match) (match, bool) {
	if !mode.extra() {
		host, user := m.host, m.user
		m = benign()
		m.host, m.user = host, user
	}
	return m, true
}

// failed reads what follows "Failed ": "METHOD for [invalid user ]NAME from
// HOST [port N] [ssh2][: details]". The user name is attacker-chosen and may
// itself contain " from ADDR port N ssh2", so the host is chosen as
// fail2ban's regex chooses it (see failedHost).
func failed(s string) (m match, ok bool) {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return m, false
	}
	method := s[:sp]
	rest, ok := strings.CutPrefix(s[sp:], " for ")
	if !ok {
		return m, false
	}
	user, host, inv, ok := failedHost(rest)
	if !ok {
		return m, false
	}
	m = fail(phalanx.KindAuthFailed)
	m.user, m.host = user, host
	m.method = authMethod(method)
	if method == "publickey" && !inv {
		// fail2ban's default (publickey=nofail): a valid user's rejected
		// key does not count — a client offers its keys in turn, and a
		// misconfigured job is likelier than an attack — but it gives the
		// process its address and user, so the "Too many authentication
		// failures" that ends a real key-spraying attempt counts. It is
		// reported as info with Method "publickey" and the user, so that
		// detection can still see it.
		m.nofail = true
	}
	return m, true
}

// failedHost mirrors fail2ban's
//
//	for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER>
//	from <HOST>( port \d+| on \S+){0,2}( ssh\d*)?(?(cond_user): |(?:(?! from ).)*$)
//
// in the order its alternatives are tried: a one-word user followed by the
// host and ": details"; for an invalid user, the first " from " if nothing
// after the host says " from " again; otherwise a colon-free user up to the
// last " from ".
func failedHost(s string) (user, host string, inv, ok bool) {
	if u, isInv := strings.CutPrefix(s, "invalid user "); isInv {
		if user, host, ok = oneWordUser(u); ok {
			return user, host, true, true
		}
		if i := strings.Index(u, " from "); i >= 0 {
			h, rest := hostToken(u[i+6:])
			if h != "" && !strings.Contains(rest, " from ") {
				return u[:i], h, true, true
			}
		}
	}
	if user, host, ok = oneWordUser(s); ok {
		return user, host, false, true
	}
	prefix := s
	if c := strings.IndexByte(s, ':'); c >= 0 {
		prefix = s[:c]
	}
	i := strings.LastIndex(prefix, " from ")
	if i <= 0 {
		return "", "", false, false
	}
	h, rest := hostToken(s[i+6:])
	if h == "" || strings.Contains(rest, " from ") {
		return "", "", false, false
	}
	return s[:i], h, false, true
}

// oneWordUser matches "NAME from HOST[ port N][ on A][ ssh2]: ".
func oneWordUser(s string) (user, host string, ok bool) {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 || !strings.HasPrefix(s[sp:], " from ") {
		return "", "", false
	}
	h, rest := hostToken(s[sp+6:])
	if h == "" {
		return "", "", false
	}
	for range 2 {
		if r, ok := skipPortOn(rest); ok {
			rest = r
		}
	}
	if strings.HasPrefix(rest, " ssh") {
		i := 4
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		rest = rest[i:]
	}
	if !strings.HasPrefix(rest, ": ") {
		return "", "", false
	}
	return s[:sp], h, true
}

// hostToken takes the host token at the start of s: up to a space, without
// a trailing colon ("1.2.3.4: 11: Bye").
func hostToken(s string) (host, rest string) {
	host, rest = token(s)
	if n := len(host); n > 1 && host[n-1] == ':' {
		host, rest = host[:n-1], s[n-1:]
	}
	return host, rest
}

// skipPortOn skips " port N" or " on ADDR" at the start of s.
func skipPortOn(s string) (string, bool) {
	if r, ok := strings.CutPrefix(s, " port "); ok {
		i := 0
		for i < len(r) && isDigit(r[i]) {
			i++
		}
		if i > 0 {
			return r[i:], true
		}
		return s, false
	}
	if r, ok := strings.CutPrefix(s, " on "); ok {
		_, r = token(r)
		return r, true
	}
	return s, false
}

func authMethod(s string) string {
	switch {
	case s == "password":
		return "password"
	case s == "publickey":
		return "publickey"
	case strings.HasPrefix(s, "keyboard-interactive"):
		return "keyboard-interactive"
	}
	return ""
}

// accepted reads "METHOD for USER from HOST port N ssh2[: KEY]".
func accepted(s string) (m match, ok bool) {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return m, false
	}
	method := s[:sp]
	rest, ok := strings.CutPrefix(s[sp:], " for ")
	if !ok {
		return m, false
	}
	sp = strings.IndexByte(rest, ' ')
	if sp <= 0 || !strings.HasPrefix(rest[sp:], " from ") {
		return m, false
	}
	m = match{kind: phalanx.KindAuthFailed, info: phalanx.KindAuthSuccess, nofail: true, forget: true, gained: true}
	m.user = rest[:sp]
	m.host, _ = token(rest[sp+6:])
	m.method = authMethod(method)
	return m, true
}

// userFrom reads "NAME from HOST[ port N][ ssh2][ [preauth]]" anchored at the
// end: the host is the last token once the suffix is gone, so a user name
// that contains " from ADDR" cannot move it.
func userFrom(s string, kind phalanx.EventKind) (m match, ok bool) {
	t := stripSuffix(s)
	head, host := lastToken(t)
	user, ok := strings.CutSuffix(head, " from")
	if !ok || host == "" {
		return m, false
	}
	m = fail(kind)
	m.user, m.host = user, host
	return m, true
}

// pamFrom reads "NAME from HOST[ via H]" (BSD PAM). User-not-known lines
// say the user does not exist.
func pamFrom(s string, auth bool) (m match, ok bool) {
	t := stripSuffix(s)
	if head, _ := lastToken(t); strings.HasSuffix(head, " via") {
		t = head[:len(head)-4]
	}
	kind := phalanx.KindAuthFailed
	if !auth {
		kind = phalanx.KindInvalidUser
	}
	return userFrom(t, kind)
}

// pamModule reads "pam_unix(sshd:auth): authentication failure; logname= uid=0
// euid=0 tty=ssh ruser=R rhost=HOST  user=U". It does not count by itself:
// sshd logs a "Failed password" line for the same attempt.
func pamModule(msg string) (m match, ok bool) {
	if !strings.HasPrefix(msg, "pam_") {
		return m, false
	}
	i := 4
	for i < len(msg) && msg[i] >= 'a' && msg[i] <= 'z' {
		i++
	}
	rest, ok := strings.CutPrefix(msg[i:], "(sshd:")
	if !ok {
		return m, false
	}
	if !strings.HasPrefix(rest, "auth):") {
		if strings.HasPrefix(rest, "session):") {
			// session opened/closed for user U
			m = benign()
			return m, true
		}
		return m, false
	}
	rest = trimLeftSpace(rest[6:])
	if strings.HasPrefix(rest, "check pass;") {
		// check pass; user unknown (the Invalid user line counts)
		return benign(), true
	}
	rest, ok = strings.CutPrefix(rest, "authentication failure;")
	if !ok {
		return m, false
	}
	j := strings.Index(rest, " ruser=")
	if j < 0 {
		return m, false
	}
	ruser, rest := spaceToken(rest[j+7:])
	rest = trimLeftSpace(rest)
	rest, ok = strings.CutPrefix(rest, "rhost=")
	if !ok {
		return m, false
	}
	m = helper()
	m.kind = phalanx.KindAuthFailed
	m.host, rest = spaceToken(rest)
	rest = trimLeftSpace(rest)
	if u, ok := strings.CutPrefix(rest, "user="); ok {
		m.user, _ = spaceToken(u)
	}
	if m.user == "" {
		m.user = ruser
	}
	return m, true
}

func classifyU(msg string, mode Mode) (m match, ok bool) {
	// User NAME from HOST not allowed because not listed in AllowUsers
	// User NAME not allowed because account is locked
	if rest, ok := strings.CutPrefix(msg, "User "); ok {
		// User not known to the underlying authentication module for NAME from HOST
		if r, ok := strings.CutPrefix(rest, "not known to the underlying authentication module for "); ok {
			return pamFrom(r, false)
		}
		t := stripSuffix(rest)
		for _, why := range [...]string{
			" not allowed because not listed in AllowUsers",
			" not allowed because listed in DenyUsers",
			" not allowed because not in any group",
			" not allowed because a group is listed in DenyGroups",
			" not allowed because none of user's groups are listed in AllowGroups",
		} {
			if head, ok := strings.CutSuffix(t, why); ok {
				return userFrom(head, phalanx.KindUserNotAllowed)
			}
		}
		if i := strings.Index(rest, " not allowed because account is locked"); i > 0 {
			m = fail(phalanx.KindUserNotAllowed)
			m.user = rest[:i]
			return m, true
		}
		return m, false
	}
	// Unable to negotiate with HOST port N: no matching cipher found. Their offer: ...
	// Unable to negotiate a key exchange method  (no address: from the process)
	if rest, ok := strings.CutPrefix(msg, "Unable to negotiate "); ok {
		if r, ok := strings.CutPrefix(rest, "with "); ok {
			host, r := hostToken(r)
			for range 2 {
				if x, ok := skipPortOn(r); ok {
					r = x
				}
			}
			if r, ok := strings.CutPrefix(r, ": no matching "); ok && algMatch(r, " found.") {
				m = fail(phalanx.KindKexFailure)
				m.host = host
				return extraOnly(mode, m)
			}
			return m, false
		}
		if r, ok := strings.CutPrefix(rest, "a "); ok && len(r) > 0 {
			return extraOnly(mode, fail(phalanx.KindKexFailure))
		}
	}
	return m, false
}

// algMatch reports whether s is "ALG" + end, ALG being one to three words
// ("cipher", "key exchange method", "host key type").
func algMatch(s, end string) bool {
	i := strings.Index(s, end)
	if i <= 0 || i > 64 {
		return false
	}
	return strings.Count(s[:i], " ") <= 2
}

func classifyC(msg string, mode Mode) (m match, ok bool) {
	switch {
	case strings.HasPrefix(msg, "Connection closed "):
		return closed(msg[len("Connection closed "):], mode, false)
	case strings.HasPrefix(msg, "Connection reset "):
		return closed(msg[len("Connection reset "):], mode, false)
	case strings.HasPrefix(msg, "Connection from "):
		// Connection from HOST port N on ADDR port 22 (LogLevel VERBOSE; an address helper)
		m = helper()
		m.host, _ = token(msg[len("Connection from "):])
		return m, true
	case strings.HasPrefix(msg, "Close session: user "):
		// Close session: user U from HOST port N id 0 (a session that ends normally)
		m = benign()
		rest := msg[len("Close session: user "):]
		if i := strings.Index(rest, " from "); i > 0 {
			m.user = rest[:i]
			m.host, _ = token(rest[i+6:])
		}
		return m, true
	}
	return m, false
}

func classifyD(msg string, mode Mode) (m match, ok bool) {
	if rest, ok := strings.CutPrefix(msg, "Disconnected "); ok {
		return closed(rest, mode, true)
	}
	if rest, ok := strings.CutPrefix(msg, "Disconnecting"); ok {
		// Disconnecting: Too many authentication failures [for USER] [preauth]
		if r, ok := strings.CutPrefix(rest, ": Too many authentication failures"); ok {
			m = fail(phalanx.KindMaxAuthTries)
			r = stripSuffix(r)
			if u, ok := strings.CutPrefix(r, " for "); ok {
				m.user = u
			}
			return m, true
		}
		// Disconnecting [from] invalid user NAME HOST port N: Change of username or service not allowed: ... [preauth]
		r := strings.TrimPrefix(rest, " from")
		var inv bool
		if x, ok := strings.CutPrefix(r, " invalid user "); ok {
			r, inv = x, true
		} else if x, ok := strings.CutPrefix(r, " authenticating user "); ok {
			r, inv = x, true
		}
		if inv {
			user, r := token(r)
			if len(r) > 1 {
				host, r := hostToken(r[1:])
				for range 2 {
					if x, ok := skipPortOn(r); ok {
						r = x
					}
				}
				if r, ok := strings.CutPrefix(r, ":"); ok {
					if strings.HasPrefix(trimLeftSpace(r), "Change of username or service not allowed:") {
						m = fail(phalanx.KindUserNotAllowed)
						m.forget = true
						m.user, m.host = user, host
						return m, true
					}
					// "...: Too many authentication failures [preauth]" after the
					// max-attempts line: recognised, but already counted.
					return benign(), true
				}
			}
		}
		return m, false
	}
	// Did not receive identification string from HOST [port N]
	if rest, ok := strings.CutPrefix(msg, "Did not receive identification string from "); ok {
		// A TCP port check logs exactly this: count it with the pre-auth
		// closes, not with the garbage banners only scanners send.
		m = fail(phalanx.KindPreauthClose)
		m.host, _ = token(rest)
		return ddosOnly(mode, m)
	}
	return m, false
}

// closed reads what follows "Connection closed ", "Connection reset " or
// "Disconnected ": "(by|from)[ (invalid|authenticating) user NAME] HOST[ port
// N][ [preauth]]", anchored at the end. fail2ban: in normal mode it only
// gives or forgets the process's address; in ddos mode it counts when it
// says [preauth]; in extra mode only "Disconnected from invalid/authenticating
// user ... [preauth]" counts and the others match no rule at all.
func closed(s string, mode Mode, disconnected bool) (m match, ok bool) {
	if r, ok := strings.CutPrefix(s, "by "); ok {
		s = r
	} else if r, ok := strings.CutPrefix(s, "from "); ok {
		s = r
	} else {
		return m, false
	}
	t := trimRightSpace(s)
	t, preauth := strings.CutSuffix(t, " [preauth]")
	t = trimRightSpace(t)
	for range 2 {
		if head, tok := lastToken(t); isDigits(tok) && strings.HasSuffix(head, " port") {
			t = head[:len(head)-5]
		}
	}
	head, host := lastToken(t)
	if host == "" {
		return m, false
	}
	var user string
	var named bool
	if head != "" {
		if u, ok := strings.CutPrefix(head, "invalid user "); ok {
			user, named = u, true
		} else if u, ok := strings.CutPrefix(head, "authenticating user "); ok {
			user, named = u, true
		} else if u, ok := strings.CutPrefix(head, "user "); ok {
			// after a session: "Disconnected from user U HOST port N"
			m = benign()
			m.user, m.host = u, host
			return m, true
		} else {
			return m, false
		}
	}
	m.host, m.user = host, user
	m.forget = true
	switch {
	case mode.ddos():
		if preauth {
			m.kind, m.info = phalanx.KindPreauthClose, phalanx.KindInfo
			return m, true
		}
	case mode == Extra:
		if preauth && named && disconnected {
			m.kind, m.info = phalanx.KindPreauthClose, phalanx.KindInfo
			return m, true
		}
		m.kind, m.info, m.nofail, m.noState = phalanx.KindInfo, phalanx.KindInfo, true, true
		return m, true
	}
	m.kind, m.info, m.nofail = phalanx.KindInfo, phalanx.KindInfo, true
	return m, true
}

func classifyR(msg string, mode Mode) (m match, ok bool) {
	// ROOT LOGIN REFUSED FROM HOST
	if rest, ok := strings.CutPrefix(msg, "ROOT LOGIN REFUSED FROM "); ok {
		m = fail(phalanx.KindUserNotAllowed)
		m.user = "root"
		m.host, _ = token(rest)
		return m, true
	}
	// Read from socket failed: Connection reset by peer [preauth]
	if strings.HasPrefix(msg, "Read from socket failed: Connection reset by peer") {
		m = fail(phalanx.KindPreauthClose)
		m.forget = true
		return ddosOnly(mode, m)
	}
	// Received disconnect from HOST[ port N]:[ ]CODE: TEXT [preauth]
	rest, ok := strings.CutPrefix(msg, "Received disconnect from ")
	if !ok {
		return m, false
	}
	host, r := hostToken(rest)
	for range 2 {
		if x, ok := skipPortOn(r); ok {
			r = x
		}
	}
	r, ok = strings.CutPrefix(r, ":")
	if !ok {
		return m, false
	}
	r = trimLeftSpace(r)
	i := 0
	for i < len(r) && isDigit(r[i]) {
		i++
	}
	if i == 0 || i >= len(r) || r[i] != ':' {
		return m, false
	}
	code, text := r[:i], trimLeftSpace(r[i+1:])
	m.host = host
	switch code {
	case "3":
		// 3: com.jcraft.jsch.JSchException: Auth fail [preauth]
		if strings.HasSuffix(strings.TrimSuffix(trimRightSpace(text), " [preauth]"), ": Auth fail") {
			m.kind, m.info, m.forget = phalanx.KindAuthFailed, phalanx.KindInfo, true
			return m, true
		}
	case "11":
		// 11: Bye Bye [preauth] — a normal disconnect; gives the address
		m.kind, m.info, m.nofail, m.forget = phalanx.KindInfo, phalanx.KindInfo, true, true
		return m, true
	case "14":
		// 14: No supported authentication methods available [preauth]
		if strings.HasPrefix(text, "No supported authentication methods available") || strings.HasPrefix(text, "No authentication methods available") {
			m.kind, m.info, m.forget = phalanx.KindAuthFailed, phalanx.KindInfo, true
			return extraOnly(mode, m)
		}
	}
	h := m.host
	m = benign()
	m.host = h
	return m, true
}

// stripSuffix removes what fail2ban's __suff and the ssh protocol tag allow
// at the end of a message: trailing space, " [preauth]", " ssh2", and up to
// two " port N".
func stripSuffix(s string) string {
	t := trimRightSpace(s)
	t = trimRightSpace(strings.TrimSuffix(t, " [preauth]"))
	if head, tok := lastToken(t); strings.HasPrefix(tok, "ssh") && isDigits(tok[3:]) && head != "" {
		t = head
	}
	for range 2 {
		if head, tok := lastToken(t); isDigits(tok) && tok != "" && strings.HasSuffix(head, " port") {
			t = head[:len(head)-5]
		}
	}
	return t
}

// token splits s at its first space.
func token(s string) (tok, rest string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// spaceToken splits s at its first space or tab.
func spaceToken(s string) (tok, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			return s[:i], s[i:]
		}
	}
	return s, ""
}

// lastToken splits s at its last space: head has no trailing space.
func lastToken(s string) (head, tok string) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

func trimLeftSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func trimRightSpace(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r' || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	return s
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold1 reports whether s is "c" or "C" followed by rest.
func hasPrefixFold1(s, rest string) bool {
	return len(s) > 0 && (s[0] == 'c' || s[0] == 'C') && strings.HasPrefix(s[1:], rest)
}
