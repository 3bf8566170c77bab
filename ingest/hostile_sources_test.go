package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
	"github.com/phalanx-defence/phalanx/source"
	"github.com/phalanx-defence/phalanx/source/file"
	"github.com/phalanx-defence/phalanx/source/journald"
	"github.com/phalanx-defence/phalanx/source/reader"
	"github.com/phalanx-defence/phalanx/source/syslog"
)

// The attacker controls the user name sshd logs: it fills it with
// terminal escapes, bidi overrides, NUL bytes, invalid UTF-8 and decoy
// addresses. Every source must hand these lines on unchanged and counted,
// and the pipeline must still ban the address sshd itself wrote — and
// nothing else.
const (
	attacker = "203.0.113.5"
	decoy    = "10.66.66.66"
)

var hostileUsers = []string{
	"\x1b[2J\x1b]0;owned\x07",
	"\u202eroot\u202c",
	"a\x00b",
	"\xff\xfe\xc0\xaf",
	decoy,
	"x from " + decoy + " port 1",
	"\x1b[1A\x1b[2K" + strings.Repeat("\u200f", 50),
	"\r\x1b[31mfake prompt$ ",
}

// hostileMessages are sshd messages (no syslog header) with hostile user
// names: more than ssh-bf's threshold of failures from the attacker.
func hostileMessages() []string {
	var out []string
	for _, u := range hostileUsers {
		out = append(out, fmt.Sprintf("Failed password for invalid user %s from %s port 4000 ssh2", u, attacker))
	}
	return out
}

// rawLines puts a BSD syslog header before each message, as a log file has.
func rawLines(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = fmt.Sprintf("Nov 27 10:00:%02d web1 sshd[100]: %s", i, m)
	}
	return out
}

// oversized are lines at and beyond the limit a byte-stream source keeps:
// which of them must come out cut to source.MaxLine.
var oversized = []struct {
	line      string
	truncated bool
}{
	{strings.Repeat("A", source.MaxLine), false},
	{strings.Repeat("B", source.MaxLine+1), true},
	{strings.Repeat("\x00\x1b", 3<<19), true}, // 3 MiB of NUL and ESC
	{"Nov 27 10:01:00 web1 sshd[100]: Failed password for invalid user " + strings.Repeat("\xff", 2<<20) + " from 203.0.113.9 port 1 ssh2", true},
}

// pipeline checks what the lines of one source lead to: a decision on the
// attacker, none on anything else (the decoy in the user names, or the
// address at the end of the cut 2 MiB line).
func checkPipeline(t *testing.T, lines []source.Line) {
	t.Helper()
	engine, err := detect.New(detect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var decided []netip.Prefix
	p := ingest.New(parse.New(parse.Options{SSHDMode: sshd.Aggressive, Context: &logline.Context{Year: 2026}}), engine,
		func(d phalanx.Decision) { decided = append(decided, d.Value) })
	for _, l := range lines {
		if l.Structured() {
			h := logline.Header{Time: l.Time, Host: l.Host, Program: l.Program, PID: l.PID, Message: l.Text}
			if h.Program == "" {
				h.Program = "sshd"
			}
			p.Record(&h, l.Text)
		} else {
			p.Line(l.Text)
		}
	}
	if got := p.Stats().Lines; got != int64(len(lines)) {
		t.Errorf("pipeline counted %d lines, the source delivered %d", got, len(lines))
	}
	if len(decided) == 0 {
		t.Errorf("no decision on %s after %d hostile failures", attacker, len(hostileUsers))
	}
	for _, v := range decided {
		if v.Addr().String() != attacker {
			t.Errorf("decision on %s: an address the attacker wrote into a field", v)
		}
	}
}

// collect reads n lines from out, or fails after a deadline.
func collect(t *testing.T, out <-chan source.Line, n int) []source.Line {
	t.Helper()
	var got []source.Line
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case l := <-out:
			got = append(got, l)
		case <-deadline:
			t.Fatalf("%d of %d lines after 20 s", len(got), n)
		}
	}
	return got
}

// checkStream checks what a byte-stream source (file, standard input)
// delivered for rawLines(hostileMessages()) followed by oversized.
func checkStream(t *testing.T, got []source.Line, stats *source.Stats) {
	t.Helper()
	want := rawLines(hostileMessages())
	for i, w := range want {
		if got[i].Text != w || got[i].Truncated {
			t.Errorf("line %d changed in transit: %.80q → %.80q (truncated %v)", i, w, got[i].Text, got[i].Truncated)
		}
	}
	wantTrunc := 0
	for i, o := range oversized {
		l := got[len(want)+i]
		if l.Truncated != o.truncated || len(l.Text) > source.MaxLine || !strings.HasPrefix(o.line, l.Text) {
			t.Errorf("oversized line %d (%d bytes): delivered %d bytes, truncated %v, want %v", i, len(o.line), len(l.Text), l.Truncated, o.truncated)
		}
		if o.truncated {
			wantTrunc++
		}
	}
	if n := stats.Lines.Load(); n != uint64(len(got)) {
		t.Errorf("source counted %d lines, delivered %d", n, len(got))
	}
	if n := stats.Truncated.Load(); n != uint64(wantTrunc) {
		t.Errorf("source counted %d truncated lines, want %d", n, wantTrunc)
	}
	checkPipeline(t, got)
}

func streamBytes() []byte {
	var b bytes.Buffer
	for _, l := range rawLines(hostileMessages()) {
		b.WriteString(l + "\n")
	}
	for _, o := range oversized {
		b.WriteString(o.line + "\n")
	}
	return b.Bytes()
}

func TestHostileStdin(t *testing.T) {
	s, err := reader.New(bytes.NewReader(streamBytes()), reader.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan source.Line, 64)
	n := len(hostileUsers) + len(oversized)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(t.Context(), out) }()
	got := collect(t, out, n)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkStream(t, got, s.Stats())
}

func TestHostileFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(path, streamBytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := file.New(file.Config{Paths: []string{path}, FromStart: true, Poll: 10 * time.Millisecond}, filepath.Join(dir, "state"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan source.Line, 64)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, out) }()
	got := collect(t, out, len(hostileUsers)+len(oversized))
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkStream(t, got, s.Stats())
}

func startSyslog(t *testing.T, listen string) (*syslog.Source, <-chan source.Line) {
	t.Helper()
	s, err := syslog.New(syslog.Config{Listen: listen, Hint: "sshd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan source.Line, 64)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
		s.Close()
	})
	return s, out
}

// checkSyslog: syslog hands on the message, split from its header, with
// every hostile byte intact.
func checkSyslog(t *testing.T, got []source.Line) {
	t.Helper()
	raw := rawLines(hostileMessages())
	for i, m := range hostileMessages() {
		// A message the RFC 3164/5424 parser refuses (control characters
		// in it) is handed on raw, header and all, for the line parsers to
		// split: either way every byte arrives.
		structured := got[i].Text == m && got[i].Program == "sshd" && got[i].PID == 100
		unparsed := got[i].Text == raw[i] && !got[i].Structured()
		if !structured && !unparsed {
			t.Errorf("message %d changed in transit: %.80q → %.80q (program %q, pid %d)", i, m, got[i].Text, got[i].Program, got[i].PID)
		}
	}
	checkPipeline(t, got)
}

func TestHostileSyslogUDP(t *testing.T) {
	s, out := startSyslog(t, "udp://127.0.0.1:0")
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One at a time: a loopback socket buffer is large, but not infinite.
	var got []source.Line
	for _, l := range rawLines(hostileMessages()) {
		if _, err := io.WriteString(c, "<38>"+l); err != nil {
			t.Fatal(err)
		}
		got = append(got, collect(t, out, 1)...)
	}
	checkSyslog(t, got)
}

func TestHostileSyslogTCP(t *testing.T) {
	s, out := startSyslog(t, "tcp://127.0.0.1:0")
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, l := range rawLines(hostileMessages()) {
		m := "<38>" + l
		if i%2 == 0 || strings.ContainsAny(l, "\n") {
			fmt.Fprintf(c, "%d %s", len(m), m) // octet counting
		} else {
			fmt.Fprintf(c, "%s\n", m) // non-transparent framing
		}
	}
	checkSyslog(t, collect(t, out, len(hostileUsers)))

	// A 1 MiB line without a frame header is more than a syslog message
	// may be: the connection is closed and the record counted as dropped,
	// and the source keeps serving others.
	big, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	go big.Write([]byte("<38>Nov 27 10:00:00 web1 sshd[100]: " + strings.Repeat("\x1b", 1<<20) + "\n"))
	big.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := big.Read(make([]byte, 1)); err == nil {
		t.Fatal("a 1 MiB syslog line was answered instead of closing the connection")
	}
	if s.Stats().Dropped.Load() == 0 {
		t.Error("the oversized record was not counted as dropped")
	}
	fmt.Fprintf(c, "<38>%s\n", rawLines(hostileMessages())[0])
	if l := collect(t, out, 1)[0]; !strings.Contains(l.Text, hostileMessages()[0]) {
		t.Errorf("after the oversized sender: %.80q", l.Text)
	}
}

func TestHostileJournald(t *testing.T) {
	dir := t.TempDir()
	// journalctl --output=json gives a field that is not valid UTF-8 as
	// an array of bytes; the rest as strings.
	var b bytes.Buffer
	field := func(s string) any {
		if utf8.ValidString(s) {
			return s
		}
		arr := make([]int, len(s))
		for i := range len(s) {
			arr[i] = int(s[i])
		}
		return arr
	}
	msgs := append(hostileMessages(), "Failed password for invalid user "+strings.Repeat("\u202e", 600_000)+" from 203.0.113.9 port 1 ssh2")
	for i, m := range msgs {
		rec, err := json.Marshal(map[string]any{
			"__CURSOR": fmt.Sprintf("c%d", i), "__REALTIME_TIMESTAMP": fmt.Sprint(1795773600000000 + i*1000000),
			"_PID": "100", "_HOSTNAME": "web1", "SYSLOG_IDENTIFIER": "sshd", "MESSAGE": field(m),
		})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(rec, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, "out1.json"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hold1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nd=%q\nn=$(cat \"$d/count\" 2>/dev/null || echo 0)\nn=$((n+1))\necho \"$n\" > \"$d/count\"\ncat \"$d/out$n.json\" 2>/dev/null\nif [ -e \"$d/hold$n\" ]; then exec sleep 600; fi\nexit 1\n", dir)
	path := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := journald.New(journald.Config{Journalctl: path, Hint: "sshd"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan source.Line, 64)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, out) }()
	got := collect(t, out, len(msgs))
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, m := range hostileMessages() {
		if got[i].Text != m {
			t.Errorf("message %d changed in transit: %.80q → %.80q", i, m, got[i].Text)
		}
	}
	last := got[len(got)-1]
	if !last.Truncated || len(last.Text) > source.MaxLine {
		t.Errorf("a %d-byte message: delivered %d bytes, truncated %v", len(msgs[len(msgs)-1]), len(last.Text), last.Truncated)
	}
	if n := s.Stats().Truncated.Load(); n != 1 {
		t.Errorf("journald counted %d truncated messages, want 1", n)
	}
	checkPipeline(t, got)
}
