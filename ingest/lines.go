package ingest

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// MaxLine is the longest line kept whole; the rest of a longer line is
// dropped (and counted) so that one hostile line cannot grow memory.
const MaxLine = 1 << 20

// chunk is how much is read at a time. Each chunk becomes one string that
// every line of it is a substring of: one allocation per chunk instead of
// one per line. Kept moderate because a substring that a parser or
// scenario keeps pins its whole chunk.
const chunk = 256 << 10

// ScanLines calls fn for every line of r, without its line ending (a
// trailing '\r' is dropped too), and returns the number of lines that were
// longer than MaxLine and cut. fn's string is valid only during the call
// unless retained by reference to the chunk (see chunk).
func ScanLines(r io.Reader, fn func(line string)) (truncated int, err error) {
	buf := make([]byte, chunk+MaxLine)
	n := 0        // valid bytes in buf
	skip := false // inside an over-long line: drop until the next newline
	for {
		m, rerr := r.Read(buf[n:])
		n += m
		end := bytes.LastIndexByte(buf[:n], '\n')
		if end >= 0 {
			s := string(buf[:end+1])
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
				fn(string(buf[:MaxLine]))
			}
			skip = true
			n = 0
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				if n > 0 && !skip {
					fn(trimCR(string(buf[:n])))
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
