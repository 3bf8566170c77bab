// Package logline splits a log line into its header — time, host, program,
// process id — and the message the program wrote, for the header forms
// that Unix logs come in: BSD syslog without a year (RFC 3164), ISO 8601
// (rsyslog's high-precision format), RFC 5424 with its <PRI>VERSION prefix,
// and journalctl's short output. It is hand-written because every built-in
// parser calls it on every line: it allocates nothing and looks at each byte
// at most twice.
package logline

import (
	"strings"
	"time"
)

// Header is what precedes the message in a syslog-style line. Its strings
// point into the line.
type Header struct {
	Time    time.Time // zero if the line has no recognised timestamp
	Host    string
	Program string
	PID     int // 0 if absent
	Message string
}

// Context supplies what a line does not say: the year of a yearless BSD
// timestamp and the zone of a timestamp without an offset.
type Context struct {
	Year int            // 0: the current year of Now
	Loc  *time.Location // nil: time.Local
	Now  func() time.Time

	// last caches the previous BSD timestamp: consecutive lines mostly
	// share their second, and resolving a yearless stamp (the clock for
	// the year and the roll-back, the local zone) costs more than parsing
	// the rest of the line.
	last struct {
		key bsdKey
		t   time.Time
	}
}

type bsdKey struct {
	year, mon, day, h, m, sec, ns int
}

func (c *Context) loc() *time.Location {
	if c == nil || c.Loc == nil {
		return time.Local
	}
	return c.Loc
}

func (c *Context) year() int {
	if c != nil && c.Year != 0 {
		return c.Year
	}
	if c != nil && c.Now != nil {
		return c.Now().Year()
	}
	return time.Now().Year()
}

// Parse splits a syslog-style line. ok is false when the line has no
// recognisable header; the caller may then treat the whole line as the
// message.
func Parse(line string, c *Context) (h Header, ok bool) {
	rest := line
	// Optional <PRI>, then an optional RFC 5424 version "1 ".
	if len(rest) > 2 && rest[0] == '<' {
		i := 1
		for i < len(rest) && i < 5 && isDigit(rest[i]) {
			i++
		}
		if i > 1 && i < len(rest) && rest[i] == '>' {
			rest = rest[i+1:]
			if len(rest) > 2 && rest[0] == '1' && rest[1] == ' ' {
				return parse5424(rest[2:], c)
			}
		}
	}
	t, n, ok := Time(rest, c)
	if !ok {
		return Header{}, false
	}
	h.Time = t
	rest = strings.TrimLeft(rest[n:], " ")
	// Some forwarders put a facility.priority tag here: "[daemon.info]" or
	// "<auth.info>". A bracketed word without a dot is not one: old syslogds
	// write the program that way, with no host ("[sshd]: msg", "[sshd] msg").
	if len(rest) > 0 && (rest[0] == '[' || rest[0] == '<') {
		closer := byte(']')
		if rest[0] == '<' {
			closer = '>'
		}
		if i := strings.IndexByte(rest, closer); i > 0 && i < 32 && strings.IndexByte(rest[:i], ' ') < 0 {
			if closer == ']' && strings.IndexByte(rest[:i], '.') < 0 && !tagFollows(rest[i+1:]) {
				return bracketProgram(h, rest, i)
			}
			rest = strings.TrimLeft(rest[i+1:], " ")
		}
	}
	// host program[pid]: message — the host may be absent (some embedded
	// systems) in which case the first token already ends with ':' or '['.
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return Header{}, false
	}
	first := rest[:sp]
	if tagEnd(first) {
		h.Program, h.PID, h.Message, ok = splitTag(rest)
		return h, ok
	}
	h.Host = first
	rest = rest[sp+1:]
	// An optional second facility tag after the host ("host kernel: [..]" is
	// not one: it comes after the program).
	if len(rest) > 0 && rest[0] == '[' {
		if i := strings.IndexByte(rest, ']'); i > 0 && i < 32 && strings.IndexByte(rest[:i], ' ') < 0 {
			rest = strings.TrimLeft(rest[i+1:], " ")
		}
	}
	h.Program, h.PID, h.Message, ok = splitTag(rest)
	return h, ok
}

// tagFollows reports whether s (what follows a bracketed word) goes on as
// " prog: ..." or " host prog[pid]: ...": then the bracketed word was a
// facility or level tag ("[auth]", nginx's "[error]"), not the program.
func tagFollows(s string) bool {
	if len(s) == 0 || s[0] != ' ' {
		return false
	}
	s = strings.TrimLeft(s, " ")
	tok, rest, _ := strings.Cut(s, " ")
	if tagEnd(tok) {
		return true
	}
	tok, _, _ = strings.Cut(rest, " ")
	return tagEnd(tok)
}

// bracketProgram splits "[prog]: msg" or "[prog] msg"; i is the index of
// the closing bracket.
func bracketProgram(h Header, rest string, i int) (Header, bool) {
	h.Program = rest[1:i]
	msg := rest[i+1:]
	if len(msg) > 0 && msg[0] == ':' {
		msg = msg[1:]
	}
	h.Message = strings.TrimLeft(msg, " ")
	return h, h.Program != ""
}

// ParseUntimed splits a line that has no timestamp, as `journalctl -o
// short` writes when the time is cut off or `-o cat` is combined with an
// identifier: "host prog[pid]: message" or "prog[pid]: message". The tag
// must carry a numeric pid, so that ordinary text with a colon in its
// second word is not mistaken for a header.
func ParseUntimed(line string) (h Header, ok bool) {
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return Header{}, false
	}
	rest := line
	if !pidTag(line[:sp]) {
		h.Host = line[:sp]
		rest = line[sp+1:]
		sp = strings.IndexByte(rest, ' ')
		if sp <= 0 || !pidTag(rest[:sp]) {
			return Header{}, false
		}
	}
	h.Program, h.PID, h.Message, ok = splitTag(rest)
	return h, ok
}

// pidTag reports whether tok is "prog[123]:".
func pidTag(tok string) bool {
	n := len(tok)
	if n < 5 || tok[n-1] != ':' || tok[n-2] != ']' {
		return false
	}
	i := strings.IndexByte(tok, '[')
	if i <= 0 || i+1 >= n-2 {
		return false
	}
	for j := i + 1; j < n-2; j++ {
		if !isDigit(tok[j]) {
			return false
		}
	}
	return true
}

// tagEnd reports whether a token looks like "prog:" or "prog[123]:".
func tagEnd(tok string) bool {
	return len(tok) > 1 && tok[len(tok)-1] == ':' && strings.IndexByte(tok, '=') < 0
}

// splitTag splits "prog[pid]: message" or "prog: message".
func splitTag(s string) (prog string, pid int, msg string, ok bool) {
	end := strings.IndexByte(s, ':')
	sp := strings.IndexByte(s, ' ')
	if end <= 0 || (sp >= 0 && sp < end) {
		// A program name with no colon, as journalctl-exported or broken
		// forwarders write: take the first token.
		if sp <= 0 {
			return "", 0, "", false
		}
		end = sp
		prog = s[:sp]
		msg = s[sp+1:]
	} else {
		prog = s[:end]
		msg = s[end+1:]
	}
	if i := strings.IndexByte(prog, '['); i > 0 && prog[len(prog)-1] == ']' {
		pid = atoi(prog[i+1 : len(prog)-1])
		prog = prog[:i]
	}
	if len(msg) > 0 && msg[0] == ' ' {
		msg = msg[1:]
	}
	return prog, pid, msg, prog != ""
}

// parse5424 parses "TIMESTAMP HOST APP PROCID MSGID [SD] MSG" (the part
// after "<PRI>1 ").
func parse5424(s string, c *Context) (h Header, ok bool) {
	var fields [5]string
	for i := range fields {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			if i < 4 {
				return Header{}, false
			}
			fields[i], s = s, ""
			break
		}
		fields[i], s = s[:sp], s[sp+1:]
	}
	if fields[0] != "-" {
		t, n, ok := Time(fields[0], c)
		if !ok || n != len(fields[0]) {
			return Header{}, false
		}
		h.Time = t
	}
	nilv := func(v string) string {
		if v == "-" {
			return ""
		}
		return v
	}
	h.Host, h.Program = nilv(fields[1]), nilv(fields[2])
	h.PID = atoi(fields[3])
	// Structured data: "-" or one or more [id k="v"] elements.
	if strings.HasPrefix(s, "- ") {
		s = s[2:]
	} else if s == "-" {
		s = ""
	} else {
		for len(s) > 0 && s[0] == '[' {
			i := sdEnd(s)
			if i < 0 {
				return Header{}, false
			}
			s = s[i+1:]
		}
		s = strings.TrimPrefix(s, " ")
	}
	s = strings.TrimPrefix(s, "\ufeff") // a BOM may start the message
	h.Message = s
	return h, true
}

// sdEnd finds the ']' that closes a structured-data element, skipping
// escaped and quoted brackets.
func sdEnd(s string) int {
	inq := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inq = !inq
		case ']':
			if !inq {
				return i
			}
		}
	}
	return -1
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// atoi parses a small non-negative decimal; anything else is 0.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}
