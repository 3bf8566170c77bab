package web

import (
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

// parseAccess parses the common/combined family:
//
//	[vhost[:port] ]ip ident user [02/Jan/2006:15:04:05 -0700] "GET /p HTTP/1.1" 200 123 ["ref" "ua" ...]
//
// Some writers drop the ident ("ip - [time]"), the bytes or the quoted
// tail; all of that is tolerated.
func (p *Parser) parseAccess(s string, ev *phalanx.Event, svc phalanx.Service) bool {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return false
	}
	addr, ok := parseAddr(s[:sp])
	rest := s[sp+1:]
	if !ok {
		// vhost_combined: the virtual host comes first.
		sp = strings.IndexByte(rest, ' ')
		if sp <= 0 {
			return false
		}
		if addr, ok = parseAddr(rest[:sp]); !ok {
			return false
		}
		rest = rest[sp+1:]
	}
	// ident and user, up to the bracketed time.
	lb := strings.IndexByte(rest, '[')
	if lb < 2 || lb > 256 || rest[lb-1] != ' ' {
		return false
	}
	who := rest[:lb-1]
	user := ""
	if i := strings.IndexByte(who, ' '); i >= 0 {
		user = who[i+1:]
	}
	if user == "-" {
		user = ""
	}
	rest = rest[lb+1:]
	rb := strings.IndexByte(rest, ']')
	if rb < 0 {
		return false
	}
	t, _, ok := logline.Time(rest[:rb], p.ctx)
	if !ok {
		return false
	}
	rest = rest[rb+1:]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] != '"' {
		return false
	}
	req, after, ok := requestField(rest[2:])
	if !ok {
		return false
	}
	status := 0
	if len(after) >= 4 && after[0] == ' ' && isDigit(after[1]) && isDigit(after[2]) && isDigit(after[3]) &&
		(len(after) == 4 || after[4] == ' ') {
		status = int(after[1]-'0')*100 + int(after[2]-'0')*10 + int(after[3]-'0')
		after = after[4:]
	} else {
		return false
	}
	ev.Time = t
	ev.Source = addr
	ev.Service = svc
	ev.User = user
	ev.Status = status
	ev.Method, ev.Path = splitRequest(req)
	ev.UserAgent = userAgent(after)
	ev.Kind = classify(ev.Method, ev.Path, ev.Status, ev.UserAgent, p)
	return true
}

// requestField finds the end of the quoted request line (s starts just
// after the opening quote) and returns it with what follows the closing
// quote. Apache escapes '"' as \" and nginx as \x22, so an unescaped quote
// followed by " NNN" ends it; if escaping was not honoured (a custom
// format), the last quote followed by a status is taken instead.
func requestField(s string) (req, after string, ok bool) {
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '"')
		if i < 0 {
			break
		}
		i += off
		off = i + 1
		if !escaped(s, i) && statusFollows(s[i+1:]) {
			return s[:i], s[i+1:], true
		}
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '"' && statusFollows(s[i+1:]) {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// escaped reports whether s[i] follows an odd run of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		n++
		i--
	}
	return n%2 == 1
}

func statusFollows(s string) bool {
	return len(s) >= 4 && s[0] == ' ' && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) &&
		(len(s) == 4 || s[4] == ' ')
}

// userAgent returns the second quoted field after the status and bytes
// (combined: "referer" "user-agent"), or "" for the common format.
func userAgent(s string) string {
	// Skip " bytes".
	s = strings.TrimLeft(s, " ")
	if sp := strings.IndexByte(s, ' '); sp >= 0 {
		s = s[sp:]
	} else {
		return ""
	}
	_, s, ok := quotedAfterSpace(s) // referer
	if !ok {
		return ""
	}
	ua, _, ok := quotedAfterSpace(s)
	if !ok || ua == "-" {
		return ""
	}
	return ua
}

// quotedAfterSpace reads ` "value"` from the front of s, honouring
// backslash escapes.
func quotedAfterSpace(s string) (v, rest string, ok bool) {
	if len(s) < 3 || s[0] != ' ' || s[1] != '"' {
		return "", s, false
	}
	s = s[2:]
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '"')
		if i < 0 {
			return "", s, false
		}
		i += off
		if !escaped(s, i) {
			return s[:i], s[i+1:], true
		}
		off = i + 1
	}
}

// splitRequest splits "METHOD target PROTO". A request line that is not
// HTTP ("-", binary, a TLS handshake, a bare word) has no method and the
// whole of it as the path, as CrowdSec reports it.
func splitRequest(req string) (method, path string) {
	if req == "-" || req == "" {
		return "", ""
	}
	sp := strings.IndexByte(req, ' ')
	if sp <= 0 || !isMethod(req[:sp]) {
		return "", req
	}
	method, rest := req[:sp], req[sp+1:]
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		proto := rest[i+1:]
		switch {
		case strings.HasPrefix(proto, "HTTP/"):
			rest = rest[:i]
		case isProto(proto):
			// RTSP, SIP and friends sent to a web port.
			return "", req
		}
	}
	return method, rest
}

// isMethod reports whether s looks like an HTTP method token.
func isMethod(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isProto reports whether s looks like "NAME/1.0".
func isProto(s string) bool {
	i := strings.IndexByte(s, '/')
	if i <= 0 || i+1 >= len(s) || !isMethod(s[:i]) {
		return false
	}
	for j := i + 1; j < len(s); j++ {
		if !isDigit(s[j]) && s[j] != '.' {
			return false
		}
	}
	return true
}
