package ingest

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

// reference splits the way ScanLines promises to, for inputs without
// over-long lines.
func reference(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimSuffix(l, "\r"))
	}
	return out
}

func collect(t *testing.T, in string, oneByte bool) ([]string, int) {
	t.Helper()
	var r = bytes.NewReader([]byte(in))
	var got []string
	var n int
	var err error
	if oneByte {
		n, err = ScanLines(iotest.OneByteReader(r), func(l string) { got = append(got, strings.Clone(l)) })
	} else {
		n, err = ScanLines(iotest.HalfReader(r), func(l string) { got = append(got, strings.Clone(l)) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return got, n
}

func TestScanLines(t *testing.T) {
	for _, in := range []string{"", "a", "a\n", "a\nb", "a\r\nb\r\n", "\n\n", "x\x00y\n\xff\xfe\n"} {
		for _, one := range []bool{false, true} {
			got, n := collect(t, in, one)
			want := reference(in)
			if n != 0 || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
				t.Errorf("ScanLines(%q) = %q (cut %d), want %q", in, got, n, want)
			}
		}
	}
}

func TestScanLinesLong(t *testing.T) {
	long := strings.Repeat("A", MaxLine+12345)
	// Lines that straddle the chunk boundary and one over the cap.
	mid := strings.Repeat("b", chunk-3)
	in := "first\n" + mid + "\n" + long + "\nlast\n"
	got, n := collect(t, in, false)
	if n != 1 {
		t.Fatalf("cut %d lines, want 1", n)
	}
	if len(got) != 4 || got[0] != "first" || got[1] != mid || len(got[2]) != MaxLine || got[3] != "last" {
		lens := make([]int, len(got))
		for i, g := range got {
			lens[i] = len(g)
		}
		t.Fatalf("got %d lines of lengths %v", len(got), lens)
	}
	// Over-long final line without a newline.
	got, n = collect(t, "x\n"+long, false)
	if n != 1 || len(got) != 2 || len(got[1]) != MaxLine {
		t.Fatalf("unterminated long line: cut %d, %d lines", n, len(got))
	}
}

func FuzzScanLines(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nc"))
	f.Add([]byte("\x00\xff\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []string
		n, err := ScanLines(iotest.HalfReader(bytes.NewReader(in)), func(l string) { got = append(got, strings.Clone(l)) })
		if err != nil || n != 0 {
			t.Fatalf("err %v cut %d", err, n)
		}
		want := reference(string(in))
		if len(got) != len(want) {
			t.Fatalf("%d lines, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("line %d = %q, want %q", i, got[i], want[i])
			}
		}
	})
}

func BenchmarkScanLines(b *testing.B) {
	line := "Jan  2 15:04:05 web1 sshd[12345]: Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2\n"
	data := []byte(strings.Repeat(line, 100000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ScanLines(bytes.NewReader(data), func(string) {})
	}
}
