package source

import "bytes"

// Splitter cuts a byte stream into lines without ever holding more than
// max bytes of one line. The zero value splits at MaxLine.
//
// A trailing "\r" is removed with the "\n" (CRLF logs); every other byte,
// including NUL and invalid UTF-8, passes through untouched.
type Splitter struct {
	max  int
	buf  []byte // the start of the current, incomplete line (at most max bytes)
	over bool   // the current line has already exceeded max
}

// NewSplitter returns a splitter that cuts lines at max bytes (MaxLine if
// max <= 0).
func NewSplitter(max int) *Splitter {
	return &Splitter{max: max}
}

func (s *Splitter) limit() int {
	if s.max <= 0 {
		return MaxLine
	}
	return s.max
}

// Feed splits p. For every line completed by p it calls emit with the line
// (without its "\n"; valid only during the call), whether it was truncated,
// and end, the index in p just past the line's "\n". Bytes after the last
// "\n" are kept (up to the cap) for the next Feed. An error from emit stops
// the split and is returned; the splitter must then be Reset before reuse.
func (s *Splitter) Feed(p []byte, emit func(line []byte, truncated bool, end int) error) error {
	max := s.limit()
	pos := 0
	for pos < len(p) {
		i := bytes.IndexByte(p[pos:], '\n')
		if i < 0 {
			s.keep(p[pos:], max)
			return nil
		}
		seg := p[pos : pos+i]
		end := pos + i + 1
		var line []byte
		truncated := s.over
		if len(s.buf) == 0 && !s.over {
			line = seg
		} else {
			s.keep(seg, max)
			line = s.buf
			truncated = s.over
		}
		if len(line) > max {
			line, truncated = line[:max], true
		}
		// Only strip "\r" that really ends the line, not one at the cut.
		if !truncated && len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		err := emit(line, truncated, end)
		s.buf, s.over = s.buf[:0], false
		if cap(s.buf) > 64<<10 {
			s.buf = nil // one long line must not pin its buffer
		}
		if err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// keep appends seg to the pending line, up to max bytes.
func (s *Splitter) keep(seg []byte, max int) {
	room := max - len(s.buf)
	if len(seg) > room {
		seg = seg[:room]
		s.over = true
	}
	s.buf = append(s.buf, seg...)
}

// Pending reports whether an incomplete line is buffered.
func (s *Splitter) Pending() bool { return len(s.buf) > 0 || s.over }

// Flush returns the incomplete line, if any, and forgets it: a stream that
// ends without a final "\n" still delivers its last line.
func (s *Splitter) Flush() (line []byte, truncated, ok bool) {
	if !s.Pending() {
		return nil, false, false
	}
	line, truncated = s.buf, s.over
	if !truncated && len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	s.buf, s.over = s.buf[:0], false
	return line, truncated, true
}

// Reset forgets any incomplete line (after a seek or truncation). It also
// releases a large buffer so that one long line does not pin 1 MiB forever.
func (s *Splitter) Reset() {
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
	s.buf, s.over = s.buf[:0], false
}
