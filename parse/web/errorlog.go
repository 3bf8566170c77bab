package web

import (
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// parseNginxError parses
//
//	2006/01/02 15:04:05 [level] pid#tid: *cid message, client: IP, server: S, request: "GET / HTTP/1.1", host: "h"
//
// Lines without a client (startup notices) are recognised with no source.
func (p *Parser) parseNginxError(s string, ev *phalanx.Event) bool {
	t, n, ok := logline.Time(s, p.ctx)
	if !ok {
		return false
	}
	rest := s[n:]
	if len(rest) < 4 || rest[0] != ' ' || rest[1] != '[' {
		return false
	}
	rb := strings.IndexByte(rest, ']')
	if rb < 0 || rb > 16 {
		return false
	}
	level := rest[2:rb]
	rest = strings.TrimLeft(rest[rb+1:], " ")
	// "pid#tid: "
	if i := strings.Index(rest, ": "); i > 0 && i < 32 && strings.IndexByte(rest[:i], '#') > 0 {
		rest = rest[i+2:]
	}
	// "*cid "
	if len(rest) > 1 && rest[0] == '*' {
		if sp := strings.IndexByte(rest, ' '); sp > 0 {
			rest = rest[sp+1:]
		}
	}
	ev.Time = t
	ev.Service = phalanx.ServiceNginx
	ev.Kind = phalanx.KindInfo

	msg, tail := rest, ""
	if c := nginxClient(rest); c >= 0 {
		msg, tail = rest[:c], rest[c+len(", client: "):]
		end := strings.IndexByte(tail, ',')
		if end < 0 {
			end = len(tail)
		}
		if a, ok := parseAddr(tail[:end]); ok {
			ev.Source = a
		}
		tail = tail[end:]
	}
	if i := strings.Index(tail, `, request: "`); i >= 0 {
		req := tail[i+len(`, request: "`):]
		if j := strings.Index(req, `", `); j >= 0 {
			req = req[:j]
		} else {
			req = strings.TrimSuffix(req, `"`)
		}
		ev.Method, ev.Path = splitRequest(req)
	}
	ev.Kind = nginxKind(level, msg, ev)
	return true
}

// nginxClient finds the ", client: " that nginx wrote. The message before
// it may hold attacker text (a user name, a file name) with its own fake
// ", client: ..."; the real one is the last that is followed by a valid
// address and ", server: " — nginx writes the request, the only other
// attacker-controlled part, after server.
func nginxClient(s string) int {
	const key = ", client: "
	found := -1
	for off := 0; ; {
		i := strings.Index(s[off:], key)
		if i < 0 {
			break
		}
		i += off
		off = i + len(key)
		rest := s[off:]
		end := strings.IndexByte(rest, ',')
		if end < 0 {
			end = len(rest)
		}
		if _, ok := parseAddr(rest[:end]); !ok {
			continue
		}
		if end == len(rest) || strings.HasPrefix(rest[end:], ", server: ") {
			found = i
		}
	}
	if found < 0 {
		// Forwarders sometimes truncate: take the first one at all.
		return strings.Index(s, key)
	}
	return found
}

func nginxKind(level, msg string, ev *phalanx.Event) phalanx.EventKind {
	switch {
	case strings.HasPrefix(msg, "limiting requests"), strings.HasPrefix(msg, "limiting connections"),
		strings.HasPrefix(msg, "delaying request"):
		return phalanx.KindHTTPRateLimited
	case strings.HasPrefix(msg, `user "`):
		// The name is not escaped: it ends at the last marker before the
		// client, as fail2ban's `user "(?:[^"]+|.*?)":? ...` reads it.
		u := msg[len(`user "`):]
		end := -1
		for _, m := range [...]string{`" was not found in "`, `": was not found in "`, `": password mismatch`} {
			end = max(end, strings.LastIndex(u, m))
		}
		if end >= 0 {
			ev.User = u[:end]
			return phalanx.KindHTTPAuthFailed
		}
	case strings.HasPrefix(msg, "PAM: user '"):
		u := msg[len("PAM: user '"):]
		if i := strings.Index(u, "' - not authenticated"); i >= 0 {
			ev.User = u[:i]
			return phalanx.KindHTTPAuthFailed
		}
	case strings.HasPrefix(msg, "access forbidden by rule"):
		return phalanx.KindHTTPDenied
	case strings.HasPrefix(msg, "SSL_do_handshake() failed"), strings.HasPrefix(msg, "SSL_read() failed"):
		// A TLS stack that is not a browser's: fail2ban's aggressive mode
		// counts these; they only reach [crit] for protocol garbage.
		if level == "crit" {
			return phalanx.KindHTTPMalformed
		}
	case strings.HasPrefix(msg, "client sent invalid"), strings.HasPrefix(msg, "client sent plain HTTP request"),
		strings.HasPrefix(msg, "client sent too long"), strings.HasPrefix(msg, "client sent too large"):
		return phalanx.KindHTTPMalformed
	case strings.HasSuffix(msg, "(2: No such file or directory)"):
		// The access log records the same request as a 404: only a request
		// for what scanners look for counts here, as in fail2ban's
		// nginx-botsearch.
		return errorPathKind(ev.Path, true)
	case strings.Contains(msg, "Primary script unknown"):
		return phalanx.KindHTTPNotFound
	}
	return phalanx.KindInfo
}

// errorPathKind classifies a path from an error-log "not found" line:
// secret files and payloads as for an access log, a bot-search target or a
// script as probing, anything else as information (the access log has the
// 404 already). isURL says whether p is a request target rather than a
// file-system path.
func errorPathKind(p string, isURL bool) phalanx.EventKind {
	if p == "" {
		return phalanx.KindInfo
	}
	switch k := pathKind(p, 404); k {
	case phalanx.KindHTTPExploit, phalanx.KindHTTPSensitive:
		return k
	}
	if botsearch(p, isURL) || (!isURL && scriptPath(p)) {
		return phalanx.KindHTTPNotFound
	}
	return phalanx.KindInfo
}

// botsearch reports whether a request target (first component) or a
// file-system path (last component, the one that did not exist) names what
// bots search for: webmail, phpMyAdmin, WordPress login, cgi-bin, as
// fail2ban's botsearch-common lists them.
func botsearch(p string, isURL bool) bool {
	p = strings.TrimRight(p, "/")
	var comp string
	if isURL {
		p = strings.TrimLeft(p, "/")
		comp = p
		if i := strings.IndexAny(p, "/?"); i >= 0 {
			comp = p[:i]
		}
	} else {
		comp = p[strings.LastIndexByte(p, '/')+1:]
	}
	var low [64]byte
	if len(comp) > len(low) {
		return false
	}
	for i := 0; i < len(comp); i++ {
		low[i] = lower(comp[i])
	}
	c := string(low[:len(comp)]) // does not escape: compared and dropped
	for _, pre := range [...]string{"roundcube", "mail", "extmail", "horde", "webmail", "v-webmail", "vwebmail",
		"pma", "phpmyadmin", "myadmin", "mysqladmin", "cgi-bin", "wp-login.php", "wp-signup.php", "wp-admin.php"} {
		if strings.HasPrefix(c, pre) {
			return true
		}
	}
	for _, pre := range [...]string{"typo3/", "xampp/", "admin/"} {
		if strings.HasPrefix(p, pre) && (strings.Contains(p, "pma") || strings.Contains(p, "myadmin")) {
			return true
		}
	}
	return false
}

// scriptPath reports whether a file-system path names a script, as
// fail2ban's apache-noscript does: php, php4/5, php-cgi, .asp, .exe, .pl,
// cgi-bin.
func scriptPath(p string) bool {
	return strings.Contains(p, "php") || strings.Contains(p, ".asp") || strings.Contains(p, ".exe") ||
		strings.Contains(p, ".pl") || strings.Contains(p, "cgi-bin")
}

// parseApacheError parses Apache 2.2 and 2.4 error lines, with the date
// or (behind a syslog header) without it:
//
//	[Wed Oct 11 14:32:52.123 2000] [module:level] [pid N:tid M] [client IP:port] AHnnnnn: message
//	[Wed Oct 11 14:32:52 2000] [error] [client IP] message
func (p *Parser) parseApacheError(s string, ev *phalanx.Event) bool {
	rest := s
	var module, level string
	brackets, sawLevel := 0, false
	for len(rest) > 0 && rest[0] == '[' && brackets < 8 {
		rb := strings.IndexByte(rest, ']')
		if rb < 0 {
			return false
		}
		if strings.HasPrefix(rest, "[client [") || strings.HasPrefix(rest, "[remote [") {
			// "[client [2001:db8::1]:51548]": the address has brackets too.
			if j := strings.IndexByte(rest[rb+1:], ']'); j >= 0 {
				rb += 1 + j
			}
		}
		in := rest[1:rb]
		switch {
		case brackets == 0 && len(in) > 20:
			t, _, ok := logline.Time(in, p.ctx)
			if !ok {
				return false
			}
			ev.Time = t
		case strings.HasPrefix(in, "client "), strings.HasPrefix(in, "remote "):
			if a, ok := parseAddr(in[len("client "):]); ok {
				ev.Source = a
			}
		case strings.HasPrefix(in, "pid "):
		default:
			if i := strings.IndexByte(in, ':'); i >= 0 {
				module, level = in[:i], in[i+1:]
			} else {
				level = in
			}
			if !isLevel(level) {
				return false
			}
			sawLevel = true
		}
		brackets++
		rest = strings.TrimLeft(rest[rb+1:], " ")
	}
	if !sawLevel {
		return false
	}
	ev.Service = phalanx.ServiceApache
	ev.Kind = phalanx.KindInfo
	if !ev.Source.IsValid() {
		// mod_ssl and others put the client after some text:
		// "(70014)End of file found: [client 192.0.2.1:17036] AH02006: ..."
		if i := strings.Index(rest, "[client "); i >= 0 {
			if j := strings.IndexByte(rest[i:], ']'); j > 0 {
				if a, ok := parseAddr(rest[i+len("[client ") : i+j]); ok {
					ev.Source = a
				}
				rest = strings.TrimLeft(rest[i+j+1:], " ")
			}
		}
	}
	// "AH01618: "
	if len(rest) > 9 && rest[0] == 'A' && rest[1] == 'H' && rest[7] == ':' && isDigit(rest[2]) {
		rest = strings.TrimLeft(rest[8:], " ")
	}
	ev.Kind = apacheKind(module, rest, ev)
	return true
}

func isLevel(s string) bool {
	switch s {
	case "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug":
		return true
	}
	return strings.HasPrefix(s, "trace")
}

// apacheKind classifies an Apache error message (after the AH code).
func apacheKind(module, msg string, ev *phalanx.Event) phalanx.EventKind {
	// Apache 2.2 prefixes the auth module's messages ("Digest: ").
	body := msg
	if i := strings.Index(body, ": "); i > 0 && i < 16 && body[0] >= 'A' && body[0] <= 'Z' &&
		strings.IndexByte(body[:i], ' ') < 0 {
		body = body[i+2:]
	}
	switch {
	case strings.HasPrefix(body, "client denied by server configuration"):
		ev.Path = afterColon(body)
		return phalanx.KindHTTPDenied
	case strings.HasPrefix(body, "client used wrong authentication scheme"):
		ev.Path = afterColon(body)
		return phalanx.KindHTTPAuthFailed
	case strings.HasPrefix(body, "user "):
		if u, path, ok := apacheUser(body[len("user "):]); ok {
			ev.User, ev.Path = u, path
			return phalanx.KindHTTPAuthFailed
		}
	case strings.HasPrefix(body, "Authorization of user "):
		u := body[len("Authorization of user "):]
		if i := strings.Index(u, " to access "); i >= 0 {
			path := u[i+len(" to access "):]
			if j := strings.Index(path, " failed"); j >= 0 {
				ev.User, ev.Path = u[:i], path[:j]
				return phalanx.KindHTTPAuthFailed
			}
		}
	case strings.HasPrefix(body, "invalid nonce "):
		// A stale nonce ("hash is not") is what browsers send after a
		// server restart; a forged one is not.
		if strings.Contains(body, "received - length is not") || strings.Contains(body, "user attempted time travel") {
			return phalanx.KindHTTPAuthFailed
		}
	case strings.HasPrefix(body, "realm mismatch - got "), strings.HasPrefix(body, "unknown algorithm `"),
		strings.HasPrefix(body, "invalid qop `"):
		return phalanx.KindHTTPAuthFailed
	case strings.HasPrefix(body, "Hostname ") && strings.Contains(body, " provided via SNI"),
		strings.HasPrefix(body, "No hostname was provided via SNI"):
		// Misdirected requests: scanners that speak TLS to an address.
		return phalanx.KindHTTPMalformed
	case strings.HasPrefix(body, "Invalid URI in request "), strings.HasPrefix(body, "Invalid method in request "):
		req := body[strings.Index(body, " request ")+len(" request "):]
		return badRequestKind(req, ev)
	case strings.HasPrefix(body, "invalid URI path ("):
		path := strings.TrimSuffix(body[len("invalid URI path ("):], ")")
		ev.Path = path
		if k := pathKind(path, 400); k == phalanx.KindHTTPExploit || k == phalanx.KindHTTPSensitive {
			return k
		}
		return phalanx.KindHTTPMalformed
	case strings.HasPrefix(body, "Access denied with code "):
		// ModSecurity ("ModSecurity: " was stripped above) blocked it.
		return phalanx.KindHTTPDenied
	case strings.HasPrefix(body, "request failed: "):
		return phalanx.KindHTTPMalformed
	case strings.HasPrefix(body, "File does not exist: "):
		ev.Path = trimReferer(body[len("File does not exist: "):])
		return errorPathKind(ev.Path, false)
	case strings.HasPrefix(body, "script not found or unable to stat: "):
		ev.Path = trimReferer(body[len("script not found or unable to stat: "):])
		return scriptKind(ev.Path)
	case strings.HasPrefix(body, "script '"):
		path := body[len("script '"):]
		if i := strings.Index(path, "' not found or unable to stat"); i >= 0 {
			ev.Path = path[:i]
			return scriptKind(ev.Path)
		}
	case strings.HasPrefix(body, "stderr from ") && strings.HasSuffix(body, "script not found or unable to stat"):
		path := body[len("stderr from "):]
		if i := strings.Index(path, ": "); i >= 0 {
			ev.Path = path[:i]
		}
		return scriptKind(ev.Path)
	case strings.HasPrefix(body, "Got error 'Primary script unknown"), strings.HasPrefix(body, "Got error 'primary script unknown"):
		return phalanx.KindHTTPNotFound
	}
	return phalanx.KindInfo
}

// scriptKind is the kind of a request for a script that does not exist:
// probing, unless the path is a secret or a payload.
func scriptKind(p string) phalanx.EventKind {
	if k := pathKind(p, 404); k == phalanx.KindHTTPExploit || k == phalanx.KindHTTPSensitive {
		return k
	}
	return phalanx.KindHTTPNotFound
}

// badRequestKind classifies a request line Apache refused to parse: a
// payload if it carries one, otherwise malformed.
func badRequestKind(req string, ev *phalanx.Event) phalanx.EventKind {
	req = strings.TrimRight(req, " ")
	if i := strings.Index(req, " - possible attempt"); i >= 0 {
		req = req[:i]
	}
	ev.Method, ev.Path = splitRequest(req)
	if ev.Method != "" {
		if k := pathKind(ev.Path, 400); k == phalanx.KindHTTPExploit || k == phalanx.KindHTTPSensitive {
			return k
		}
	}
	return phalanx.KindHTTPMalformed
}

// apacheUser parses what follows "user " in the auth modules' messages:
//
//	NAME not found: /path
//	NAME: authentication failure for "/path": Password Mismatch
//	NAME: authorization failure for "/path":
//	NAME: password mismatch: /path
//	`NAME' in realm `R' not found: /path
func apacheUser(s string) (user, path string, ok bool) {
	if strings.HasPrefix(s, "`") {
		i := strings.Index(s, "' in realm `")
		if i < 0 {
			return "", "", false
		}
		user, s = s[1:i], s[i:]
		for _, m := range [...]string{" not found", " authentication failure", " authorization failure", " denied by provider"} {
			if j := strings.Index(s, m); j >= 0 {
				return user, afterColon(s[j:]), true
			}
		}
		return "", "", false
	}
	for _, m := range [...]string{" not found", ": authentication failure", ": authorization failure",
		": password mismatch", " denied by provider"} {
		if i := strings.Index(s, m); i >= 0 {
			user, rest := s[:i], s[i+len(m):]
			if q := strings.Index(rest, `for "`); q >= 0 {
				path = rest[q+len(`for "`):]
				if e := strings.IndexByte(path, '"'); e >= 0 {
					path = path[:e]
				}
			} else {
				path = afterColon(rest)
			}
			return user, path, true
		}
	}
	return "", "", false
}

// afterColon returns what follows the first ": ", without a trailing
// ", referer: ...".
func afterColon(s string) string {
	i := strings.Index(s, ": ")
	if i < 0 {
		return ""
	}
	return trimReferer(s[i+2:])
}

func trimReferer(s string) string {
	if i := strings.Index(s, ", referer: "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " ")
}
