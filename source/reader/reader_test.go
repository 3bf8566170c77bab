package reader

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

func collect(t *testing.T, s *Source) []source.Line {
	t.Helper()
	out := make(chan source.Line)
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context(), out); close(out) }()
	var got []source.Line
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-out:
			if !ok {
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				return got
			}
			got = append(got, l)
		case <-timeout:
			t.Fatal("Run did not end at EOF")
		}
	}
}

func TestReadsToEOF(t *testing.T) {
	long := strings.Repeat("L", source.MaxLine+10)
	in := "a\r\nb\x00\xff\n" + long + "\nlast"
	s, err := New(strings.NewReader(in), Config{Hint: "nginx"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, s)
	want := []string{"a", "b\x00\xff", long[:source.MaxLine], "last"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Text != w {
			t.Errorf("line %d = %.20q, want %.20q", i, got[i].Text, w)
		}
		if got[i].Origin != "stdin" || got[i].Hint != "nginx" {
			t.Errorf("line %d: origin %q hint %q", i, got[i].Origin, got[i].Hint)
		}
	}
	if !got[2].Truncated || got[0].Truncated {
		t.Error("truncation not marked on the long line only")
	}
	if s.Stats().Lines.Load() != 4 || s.Stats().Truncated.Load() != 1 {
		t.Errorf("stats: %d lines, %d truncated", s.Stats().Lines.Load(), s.Stats().Truncated.Load())
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	s, _ := New(failing{}, Config{Origin: "replay"}, nil)
	err := s.Run(t.Context(), make(chan source.Line))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Run = %v, want the read error", err)
	}
}

func TestCancelInterruptsBlockedPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	s, _ := New(r, Config{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan source.Line, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	io.WriteString(w, "one\n")
	select {
	case l := <-out:
		if l.Text != "one" {
			t.Fatalf("got %q", l.Text)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no line")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run blocked on a pipe after cancel")
	}
}
