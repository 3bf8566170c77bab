package syslog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

const failAfter = 5 * time.Second

func start(t *testing.T, cfg Config) (*Source, chan source.Line) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan source.Line, 16)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(failAfter):
			t.Error("Run did not return after cancel")
		}
	})
	return s, out
}

func next(t *testing.T, out chan source.Line) source.Line {
	t.Helper()
	select {
	case l := <-out:
		return l
	case <-time.After(failAfter):
		t.Fatal("timed out waiting for a line")
		return source.Line{}
	}
}

func TestUDP(t *testing.T) {
	s, out := start(t, Config{Listen: "udp://127.0.0.1:0", Hint: "sshd"})
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	send := func(m string) { t.Helper(); c.Write([]byte(m)) }

	send("<38>Nov 27 10:00:01 web1 sshd[812]: Failed password for root from 203.0.113.5 port 22 ssh2\n")
	l := next(t, out)
	if l.Text != "Failed password for root from 203.0.113.5 port 22 ssh2" || l.Program != "sshd" || l.PID != 812 || l.Host != "web1" {
		t.Errorf("RFC 3164: %+v", l)
	}
	if l.Time.Month() != time.November || l.Time.Day() != 27 || l.Time.Second() != 1 || l.Time.Year() != time.Now().Year() {
		t.Errorf("RFC 3164 time = %v", l.Time)
	}
	if l.Hint != "sshd" || l.Origin != "syslog+udp:"+s.Addr().String() || !l.Structured() {
		t.Errorf("hint %q origin %q structured %v", l.Hint, l.Origin, l.Structured())
	}

	send(`<165>1 2026-11-27T10:00:02.5Z mail.example.org postfix 4242 ID47 [exampleSDID@32473 iut="3"] SASL LOGIN authentication failed`)
	l = next(t, out)
	want := time.Date(2026, 11, 27, 10, 0, 2, 5e8, time.UTC)
	if l.Text != "SASL LOGIN authentication failed" || l.Program != "postfix" || l.PID != 4242 || l.Host != "mail.example.org" || !l.Time.Equal(want) {
		t.Errorf("RFC 5424: %+v", l)
	}

	send("just some text \xff")
	if l = next(t, out); l.Text != "just some text \xff" || l.Structured() {
		t.Errorf("raw: %+v", l)
	}

	send("<13>Nov 27 10:00:03 h app: after the big one")
	if l = next(t, out); l.Text != "after the big one" {
		t.Errorf("after oversized datagram: %+v", l)
	}
	// (An oversized datagram cannot be tested: IPv4 UDP carries at most
	// 65507 bytes, less than MaxMessage+1.)
	if s.Stats().Dropped.Load() != 0 || s.Stats().Lines.Load() != 4 {
		t.Errorf("stats: dropped %d, lines %d", s.Stats().Dropped.Load(), s.Stats().Lines.Load())
	}
}

func TestTCPFraming(t *testing.T) {
	s, out := start(t, Config{Listen: "tcp://127.0.0.1:0"})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m1 := "<38>Nov 27 10:00:01 web1 sshd[1]: one\nstill one"
	m2 := "<38>Nov 27 10:00:02 web1 sshd[2]: two"
	fmt.Fprintf(c, "%d %s", len(m1), m1)
	fmt.Fprintf(c, "%s\n", m2)
	fmt.Fprintf(c, "<38>1 2026-11-27T10:00:03Z web1 sshd 3 - - three\r\n")

	if l := next(t, out); l.PID != 1 || !strings.HasPrefix(l.Text, "one") {
		t.Errorf("octet-counted: %+v", l)
	}
	if l := next(t, out); l.PID != 2 || l.Text != "two" {
		t.Errorf("newline: %+v", l)
	}
	if l := next(t, out); l.PID != 3 || l.Text != "three" || l.Origin != "syslog+tcp:"+s.Addr().String() {
		t.Errorf("RFC 5424 over TCP: %+v", l)
	}
}

// expectClosed waits until the server closes c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(failAfter))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read = %v, want EOF (closed by the server)", err)
	}
}

func TestTCPOversizedFrameClosesConnection(t *testing.T) {
	s, _ := start(t, Config{Listen: "tcp://127.0.0.1:0"})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%d ", MaxMessage+1)
	expectClosed(t, c)
}

func TestTCPLimits(t *testing.T) {
	s, out := start(t, Config{Listen: "tcp://127.0.0.1:0", MaxConnections: 1, IdleTimeout: 200 * time.Millisecond})
	a, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	io.WriteString(a, "<13>Nov 27 10:00:00 h app: a\n")
	next(t, out) // a is being served

	b, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	expectClosed(t, b) // over the limit
	expectClosed(t, a) // idle
}

func TestNewErrors(t *testing.T) {
	for _, l := range []string{"127.0.0.1:5514", "http://127.0.0.1:1", "udp://nope"} {
		if _, err := New(Config{Listen: l}, nil); err == nil {
			t.Errorf("New(%q) succeeded", l)
		}
	}
	s, err := New(Config{Listen: "udp://127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := New(Config{Listen: "udp://" + s.Addr().String()}, nil); err == nil {
		t.Error("port in use accepted")
	}
}

func TestFrame(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader("5 hello3 abc\nline two\n\nlast"))
	sc.Split(Frame)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"hello", "abc", "line two", "last"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"1234567 x", "12x4 y", "9 short"} {
		sc := bufio.NewScanner(strings.NewReader(bad))
		sc.Split(Frame)
		for sc.Scan() {
		}
		if sc.Err() == nil {
			t.Errorf("%q: no framing error", bad)
		}
	}
}

func FuzzFrame(f *testing.F) {
	f.Add([]byte("5 hello<13>Nov 27 10:00:00 h app[1]: x\n"))
	f.Add([]byte("<165>1 2026-11-27T10:00:02.5Z h app 1 ID [a b=\"c\"] msg\n"))
	f.Add([]byte("65537 "))
	f.Add([]byte("\x00\xff\n\n"))
	d := newDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64), MaxMessage+8)
		sc.Split(Frame)
		for sc.Scan() {
			if len(sc.Bytes()) > MaxMessage {
				t.Fatalf("frame of %d bytes", len(sc.Bytes()))
			}
			d.decode(sc.Bytes())
		}
		// Octet counting carries any bytes, newlines included.
		if len(data) <= MaxMessage {
			framed := fmt.Appendf(nil, "%d %s", len(data), data)
			sc := bufio.NewScanner(bytes.NewReader(framed))
			sc.Buffer(make([]byte, 64), MaxMessage+8)
			sc.Split(Frame)
			if len(data) > 0 && (!sc.Scan() || !bytes.Equal(sc.Bytes(), data)) {
				t.Fatalf("round trip of %q failed: %v", data, sc.Err())
			}
		}
	})
}
