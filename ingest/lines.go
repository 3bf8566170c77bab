package ingest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unsafe"
)

// MaxLine is the longest line kept whole; the rest of a longer line is
// dropped (and counted) so that one hostile line cannot grow memory.
const MaxLine = 1 << 20

// chunk is how much is read at a time.
const chunk = 256 << 10

// ScanLines calls fn for every line of r, without its line ending (a
// trailing '\r' is dropped too), and returns the number of lines that were
// longer than MaxLine and cut.
//
// The string fn receives is a view of ScanLines' read buffer, valid only
// until fn returns: copying every line would cost more than parsing it.
// This is the same contract phalanx.Event states for its fields — whoever
// keeps a line, or a field parsed from it, past the call must clone it
// (the scenario engine copies its evidence; parsers keep hashes).
func ScanLines(r io.Reader, fn func(line string)) (truncated int, err error) {
	buf := make([]byte, chunk+MaxLine)
	n := 0        // valid bytes in buf
	skip := false // inside an over-long line: drop until the next newline
	for {
		m, rerr := r.Read(buf[n:min(len(buf), n+chunk)])
		n += m
		end := bytes.LastIndexByte(buf[:n], '\n')
		if end >= 0 {
			// The lines are views of buf, which the next read overwrites:
			// the zero-copy contract documented above.
			s := unsafe.String(&buf[0], end+1)
			for len(s) > 0 {
				i := indexNL(s)
				line := s[:i]
				s = s[i+1:]
				if skip {
					skip = false
					continue
				}
				if len(line) > MaxLine {
					truncated++
					line = line[:MaxLine]
				}
				fn(trimCR(line))
			}
			n = copy(buf, buf[end+1:n])
		}
		if n >= MaxLine {
			// No newline within MaxLine bytes: deliver the cut line now
			// and drop the rest of it.
			if !skip {
				truncated++
				fn(unsafe.String(&buf[0], MaxLine))
			}
			skip = true
			n = 0
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				if n > 0 && !skip {
					fn(trimCR(unsafe.String(&buf[0], n)))
				}
				return truncated, nil
			}
			return truncated, rerr
		}
	}
}

func indexNL(s string) int {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return i
	}
	return len(s)
}

func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}
