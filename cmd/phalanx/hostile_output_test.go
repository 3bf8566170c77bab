package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// hostileText is what an attacker writes into the fields phalanx shows:
// a terminal title change, a screen clear, a fake prompt after a carriage
// return, a bidi override, NUL and invalid UTF-8.
const hostileText = "\x1b]0;owned\x07\x1b[2J\r\x1b[31mroot# \u202etxt.exe\u202c\x00\xff"

// terminalSafe fails t if out could drive a terminal or disguise text:
// control characters other than newline and tab, format characters (bidi
// overrides), or invalid UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8: %q", what, out)
	}
	for i, r := range out {
		if r == '\n' || r == '\t' {
			continue
		}
		// U+FFFD itself is harmless (a visible glyph; JSON decoding puts
		// it where invalid bytes were); invalid bytes are caught above.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s: %U at byte %d reaches the terminal: %q", what, r, i, out[max(0, i-40):min(len(out), i+40)])
			return
		}
	}
}

func hostileLog() string {
	var b strings.Builder
	for i := range 8 {
		b.WriteString("Jun  2 10:00:0" + string(rune('0'+i)) + " web1 sshd[100]: Failed password for invalid user " + hostileText + " from 198.51.100.7 port 4000 ssh2\n")
	}
	b.WriteString(hostileText + "\n")
	b.WriteString("Jun  2 10:00:09 web1 " + hostileText + "[1]: " + hostileText + "\n")
	return b.String()
}

// TestHostileReplayAndParseOutput: `phalanx replay` and `phalanx parse`
// print what they found in an attacker's log; none of the attacker's
// bytes may reach the terminal as control sequences.
func TestHostileReplayAndParseOutput(t *testing.T) {
	log := hostileLog()
	for _, args := range [][]string{
		{"replay", "-o", "table", "-"},
		{"parse", "-"},
	} {
		out, err := runCLI(t, log, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		terminalSafe(t, strings.Join(args, " "), out)
		if args[0] == "replay" && !strings.Contains(out, "198.51.100.7") {
			t.Errorf("replay did not decide on the attacker:\n%s", out)
		}
	}
}

// TestHostileMemberOutput: a manual decision whose reason an operator
// pasted from an attacker's log, and a non-member's garbage on the ledger,
// shown by the commands that read a running member.
func TestHostileMemberOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "founder")
	initOut, err := runCLI(t, "", "alliance", "init", "--name", "hostile", "--data", dir, "--nats-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, initOut)
	}
	_, c := runTestMember(t, dir)
	h, err := c.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddDecision(t.Context(), member.DecisionRequest{Value: "198.51.100.9", Reason: "pasted: " + hostileText}); err != nil {
		t.Fatal(err)
	}
	bus, err := natsbus.Open(t.Context(), natsbus.Config{URLs: []string{"nats://" + hubOf(t, initOut)}}, h.Alliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if _, _, err := bus.Publish(t.Context(), "garbage-1", []byte(hostileText)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bus.Publish(t.Context(), "garbage-2", []byte(`{"kind":"`+hostileText+`","author":"`+hostileText+`"}`)); err != nil {
		t.Fatal(err)
	}
	// Wait until the member has folded everything published.
	last, err := bus.LastSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := c.Health(t.Context())
		if err == nil && h.Applied >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member folded %d of %d after 20 s (%v)", h.Applied, last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"decisions", "list", "--data", dir, "-o", "table"},
		{"ledger", "verify", "--data", dir, "-o", "table"},
		{"status", "--data", dir, "-o", "table"},
		{"alliance", "members", "--data", dir, "-o", "table"},
	} {
		out, _ := runCLI(t, "", args...) // verify fails (tampered): its output is what matters
		if out == "" {
			t.Errorf("%v printed nothing", args)
		}
		terminalSafe(t, strings.Join(args, " "), out)
	}

	// `ledger tail` follows the ledger until stopped: read what it printed
	// of the entries already there, then stop it.
	tctx, tcancel := context.WithCancel(t.Context())
	defer tcancel()
	cmd := newRootCmd()
	var out syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"ledger", "tail", "--data", dir, "--from", "1", "-o", "table"})
	tailDone := make(chan error, 1)
	go func() { tailDone <- cmd.ExecuteContext(tctx) }()
	deadline = time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), "\n") < int(last) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	tcancel()
	if err := <-tailDone; err != nil {
		t.Errorf("ledger tail: %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n < int(last) {
		t.Errorf("ledger tail printed %d lines of %d entries:\n%s", n, last, out.String())
	}
	terminalSafe(t, "ledger tail", out.String())
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
