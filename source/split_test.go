package source

import (
	"bytes"
	"strings"
	"testing"
)

type got struct {
	line      string
	truncated bool
}

func feedAll(s *Splitter, chunks ...string) []got {
	var out []got
	for _, c := range chunks {
		_ = s.Feed([]byte(c), func(line []byte, truncated bool, end int) error {
			out = append(out, got{string(line), truncated})
			return nil
		})
	}
	return out
}

func TestSplitter(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		chunks  []string
		want    []got
		pending bool
	}{
		{"one", 0, []string{"a\n"}, []got{{"a", false}}, false},
		{"partial kept", 0, []string{"a\nb"}, []got{{"a", false}}, true},
		{"joined across feeds", 0, []string{"ab", "c\nd", "e\n"}, []got{{"abc", false}, {"de", false}}, false},
		{"crlf", 0, []string{"a\r\n\r\n"}, []got{{"a", false}, {"", false}}, false},
		{"nul and invalid utf8 untouched", 0, []string{"a\x00\xff\xfe\n"}, []got{{"a\x00\xff\xfe", false}}, false},
		{"cap in one feed", 4, []string{"abcdefg\nxy\n"}, []got{{"abcd", true}, {"xy", false}}, false},
		{"cap across feeds", 4, []string{"ab", "cdef", "gh\nxy\n"}, []got{{"abcd", true}, {"xy", false}}, false},
		{"exactly cap", 4, []string{"abcd\n"}, []got{{"abcd", false}}, false},
		{"exactly cap across feeds", 4, []string{"ab", "cd", "\n"}, []got{{"abcd", false}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSplitter(tt.max)
			out := feedAll(s, tt.chunks...)
			if len(out) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", out, tt.want)
			}
			for i := range out {
				if out[i] != tt.want[i] {
					t.Errorf("line %d: got %+v, want %+v", i, out[i], tt.want[i])
				}
			}
			if s.Pending() != tt.pending {
				t.Errorf("Pending() = %v, want %v", s.Pending(), tt.pending)
			}
		})
	}
}

func TestSplitterEndOffsets(t *testing.T) {
	s := NewSplitter(0)
	var ends []int
	_ = s.Feed([]byte("ab\ncde\nf"), func(_ []byte, _ bool, end int) error {
		ends = append(ends, end)
		return nil
	})
	if len(ends) != 2 || ends[0] != 3 || ends[1] != 7 {
		t.Fatalf("ends = %v, want [3 7]", ends)
	}
	line, _, ok := s.Flush()
	if !ok || string(line) != "f" {
		t.Fatalf("Flush() = %q, %v; want \"f\", true", line, ok)
	}
}

func TestSplitterBigLineBounded(t *testing.T) {
	s := NewSplitter(0)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 40 { // 2.5 MiB without a newline
		_ = s.Feed(chunk, func([]byte, bool, int) error { t.Fatal("no line yet"); return nil })
		if cap(s.buf) > 2*MaxLine {
			t.Fatalf("buffer grew to %d bytes", cap(s.buf))
		}
	}
	out := feedAll(s, "\nnext\n")
	if len(out) != 2 || len(out[0].line) != MaxLine || !out[0].truncated || out[1].line != "next" {
		t.Fatalf("got %d lines, first len %d truncated %v", len(out), len(out[0].line), out[0].truncated)
	}
	if strings.Count(out[0].line, "x") != MaxLine {
		t.Fatal("truncated line is not the line's start")
	}
}

func TestStructured(t *testing.T) {
	if (Line{Text: "x", Origin: "file:/a"}).Structured() {
		t.Error("raw line reported structured")
	}
	if !(Line{Text: "x", Program: "sshd"}).Structured() {
		t.Error("line with a program reported raw")
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), uint8(2))
	f.Add([]byte("\n\n\x00\xff\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		m := int(max%16) + 1
		s := NewSplitter(m)
		var joined []byte
		nl := 0
		err := s.Feed(data, func(line []byte, truncated bool, end int) error {
			if len(line) > m {
				t.Fatalf("line of %d bytes exceeds cap %d", len(line), m)
			}
			if end <= 0 || end > len(data) || data[end-1] != '\n' {
				t.Fatalf("end %d does not follow a newline", end)
			}
			nl++
			joined = append(joined, line...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if nl != bytes.Count(data, []byte("\n")) {
			t.Fatalf("%d lines for %d newlines", nl, bytes.Count(data, []byte("\n")))
		}
	})
}
