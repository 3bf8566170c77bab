package syslog

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/phalanx-defence/phalanx/source"
)

// MaxMessage is the largest syslog message accepted, in bytes. Larger
// datagrams are dropped; a TCP stream that announces or carries a larger
// frame is closed.
const MaxMessage = 64 << 10

// ErrFrame reports a TCP stream that is not RFC 6587 framing.
var ErrFrame = errors.New("source/syslog: bad frame")

// ErrFrameTooLarge reports a frame longer than MaxMessage.
var ErrFrameTooLarge = errors.New("source/syslog: frame larger than 64 KiB")

// Frame is a bufio.SplitFunc for syslog over TCP (RFC 6587). A frame that
// starts with a digit is octet-counted ("LEN SP MSG"); anything else is
// newline-terminated (non-transparent framing, as most senders do). No
// frame may exceed MaxMessage; the stream is then unusable and Frame
// returns an error, which closes the connection.
func Frame(data []byte, atEOF bool) (advance int, token []byte, err error) {
	// Empty lines between frames (some senders end an octet-counted frame
	// with "\n" too) are skipped rather than delivered as empty messages.
	skip := 0
	for skip < len(data) && (data[skip] == '\n' || data[skip] == '\r') {
		skip++
	}
	if skip > 0 {
		// One call must both skip and return the frame: bufio.Scanner
		// stops at EOF after a call that returns no token.
		a, tok, err := frame(data[skip:], atEOF)
		if tok != nil || err != nil {
			return skip + a, tok, err
		}
		return skip, nil, nil
	}
	return frame(data, atEOF)
}

func frame(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if c := data[0]; c >= '1' && c <= '9' {
		sp := bytes.IndexByte(data[:min(len(data), 7)], ' ')
		if sp < 0 {
			if len(data) >= 7 {
				return 0, nil, ErrFrame
			}
			if atEOF {
				return 0, nil, ErrFrame
			}
			return 0, nil, nil
		}
		n, perr := strconv.Atoi(string(data[:sp]))
		if perr != nil {
			return 0, nil, ErrFrame
		}
		if n > MaxMessage {
			return 0, nil, ErrFrameTooLarge
		}
		end := sp + 1 + n
		if len(data) < end {
			if atEOF {
				return 0, nil, ErrFrame // cut short
			}
			return 0, nil, nil
		}
		return end, data[sp+1 : end], nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		if i > MaxMessage {
			return 0, nil, ErrFrameTooLarge
		}
		return i + 1, data[:i], nil
	}
	if len(data) > MaxMessage {
		return 0, nil, ErrFrameTooLarge
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// decoder turns one syslog message into a Line. Its parsers are safe for
// concurrent use (they lock).
type decoder struct {
	r5424, r3164 gosyslog.Machine
}

func newDecoder() *decoder {
	return &decoder{
		r5424: rfc5424.NewParser(rfc5424.WithBestEffort()),
		// RFC 3164 stamps have no year and no zone: they are this year's,
		// in this host's zone. rsyslog's RFC 3339 stamps are accepted too.
		r3164: rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithYear(rfc3164.CurrentYear{}),
			rfc3164.WithTimezone(time.Local), rfc3164.WithRFC3339(), rfc3164.WithSecondFractions()),
	}
}

// decode parses msg as RFC 5424 or RFC 3164. What cannot be parsed is kept:
// a message without a recognisable header becomes a raw line (its text
// after any "<PRI>"), so a parser may still recognise it. ok is false for
// an empty message.
func (d *decoder) decode(msg []byte) (l source.Line, ok bool) {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	if len(msg) == 0 {
		return source.Line{}, false
	}
	var m gosyslog.Message
	if is5424(msg) {
		m, _ = d.r5424.Parse(msg) // best effort: a partial message and an error
	} else {
		m, _ = d.r3164.Parse(msg)
	}
	var b *gosyslog.Base
	switch v := m.(type) {
	case *rfc5424.SyslogMessage:
		if v != nil {
			b = &v.Base
		}
	case *rfc3164.SyslogMessage:
		if v != nil {
			b = &v.Base
		}
	}
	if b == nil || b.Message == nil {
		return source.Line{Text: string(afterPRI(msg))}, true
	}
	l.Text = *b.Message
	if b.Appname != nil {
		l.Program = *b.Appname
	}
	if b.Hostname != nil {
		l.Host = *b.Hostname
	}
	if b.ProcID != nil {
		if n, err := strconv.Atoi(*b.ProcID); err == nil && n > 0 {
			l.PID = n
		}
	}
	if b.Timestamp != nil {
		l.Time = *b.Timestamp
	}
	return l, true
}

// is5424 reports whether msg starts "<PRI>VERSION SP", the mark of RFC 5424.
func is5424(msg []byte) bool {
	if len(msg) < 2 || msg[0] != '<' {
		return false
	}
	i := bytes.IndexByte(msg[:min(len(msg), 6)], '>')
	if i < 0 {
		return false
	}
	rest := msg[i+1:]
	j := 0
	for j < len(rest) && j < 3 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	return j > 0 && rest[0] != '0' && j < len(rest) && rest[j] == ' '
}

// afterPRI drops a leading "<PRI>".
func afterPRI(msg []byte) []byte {
	if len(msg) > 0 && msg[0] == '<' {
		if i := bytes.IndexByte(msg[:min(len(msg), 6)], '>'); i > 0 {
			return msg[i+1:]
		}
	}
	return msg
}
