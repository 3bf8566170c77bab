package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/source/file"
)

// decisionHandler is a slog.Handler that passes the value of every
// "decision" record to a channel.
type decisionHandler struct{ ch chan string }

func (h decisionHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h decisionHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h decisionHandler) WithGroup(string) slog.Handler            { return h }
func (h decisionHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "decision" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "value" {
			h.ch <- a.Value.String()
		}
		return true
	})
	return nil
}

func appendFailures(t *testing.T, path, ip string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	for i := range n {
		fmt.Fprintf(f, "%s web1 sshd[%d]: Failed password for root from %s port %d ssh2\n",
			now.Format(time.Stamp), 1000+i, ip, 40000+i)
	}
}

// TestUpFollowsAndResumes runs `phalanx up` on a file: a brute force
// written to it is decided; after a restart the old lines are not read
// again (no second decision for the first attacker) and new ones are.
func TestUpFollowsAndResumes(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	appendFailures(t, logPath, "203.0.113.5", 8)
	cfg := config.Config{
		DataDir:  filepath.Join(dir, "data"),
		SSHDMode: "aggressive",
		Files:    []file.Config{{Paths: []string{logPath}, FromStart: true, Poll: 20 * time.Millisecond}},
	}
	run := func() (chan string, context.CancelFunc, chan error) {
		ch := make(chan string, 16)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- runUp(ctx, cfg, nil, slog.New(decisionHandler{ch})) }()
		return ch, cancel, done
	}
	expect := func(ch chan string, want string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("decision against %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no decision against %s within 10s", want)
		}
	}
	ch, cancel, done := run()
	expect(ch, "203.0.113.5")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}

	appendFailures(t, logPath, "203.0.113.6", 8)
	ch, cancel, done = run()
	expect(ch, "203.0.113.6") // a re-read of the old lines would decide .5 first
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}
}

// TestUpStdin follows standard input (`--source -`).
func TestUpStdin(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "attack.log")
	appendFailures(t, logPath, "203.0.113.9", 8)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go pw.Write(data) // the pipe stays open, as a `tail -F` would
	ch := make(chan string, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	cfg := config.Config{DataDir: filepath.Join(dir, "data"), SSHDMode: "aggressive"}
	go func() { done <- runUp(ctx, cfg, pr, slog.New(decisionHandler{ch})) }()
	select {
	case got := <-ch:
		if got != "203.0.113.9" {
			t.Fatalf("decision against %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no decision from standard input within 10s")
	}
	cancel()
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}
}

// TestParseMemoryLimit: --memory-limit reads what GOMEMLIMIT takes, and
// refuses what would surprise: a unit Go does not take (GB), a fraction,
// and a bare small number (bytes, not gibibytes).
func TestParseMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // 0: an error
	}{
		{"2GiB", 2 << 30},
		{"512MiB", 512 << 20},
		{"1TiB", 1 << 40},
		{"4096KiB", 4 << 20},
		{"1048576", 1 << 20},
		{"1048576B", 1 << 20},
		{"off", math.MaxInt64},
		{"2", 0},
		{"1023KiB", 0},
		{"2GB", 0},
		{"2gib", 0},
		{"1.5GiB", 0},
		{"-1GiB", 0},
		{"GiB", 0},
		{"", 0},
		{"9000000TiB", 0},
	} {
		got, err := parseMemoryLimit(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("parseMemoryLimit(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestUpMemoryLimitFlag: phalanx up sets the runtime's memory limit from
// --memory-limit, and refuses one it cannot read before it starts
// anything, saying what to give instead.
func TestUpMemoryLimitFlag(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	// --enforce http without a member's data directory: up stops right
	// after reading its flags.
	if _, err := runCLI(t, "", "up", "--data", t.TempDir(), "--source", "-", "--enforce", "http", "--memory-limit", "3GiB"); err == nil {
		t.Fatal("up --enforce http without a member ran")
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("up --memory-limit 3GiB: the runtime's limit is %d, want %d", got, int64(3<<30))
	}
	_, err := runCLI(t, "", "up", "--data", t.TempDir(), "--source", "-", "--memory-limit", "2GB")
	if err == nil || !strings.Contains(err.Error(), "--memory-limit") || !strings.Contains(err.Error(), "2GiB") {
		t.Fatalf("up --memory-limit 2GB: %v, want an error naming the flag and a valid value", err)
	}
}

// TestUpDecisionsBounded: `phalanx up` without a member bounds its
// decisions as a member bounds its own. Bounded at 1,000 and given 5,000
// on distinct addresses — each new one expiring before all the others —
// the set keeps 1,000, and what went is the decision expiring first each
// time, not the oldest: the first 999 stay, with the last. A decision on
// a value held already lengthens it and evicts nothing.
func TestUpDecisionsBounded(t *testing.T) {
	const bound, n = 1000, 5000
	clock := phalanx.SystemClock{}
	b := &boundedSet{ds: decisions.New(clock), cap: bound}
	now := time.Now()
	decision := func(i int, d time.Duration) phalanx.Decision {
		return phalanx.Decision{Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32),
			Type: phalanx.Ban, Scenario: "ssh-bf", Origin: phalanx.OriginLocal, FirstSeen: now, LastSeen: now, Duration: d}
	}
	evicted := 0
	for i := range n {
		evicted += b.add(decision(i, time.Hour+time.Duration(n-i)*time.Second))
	}
	if evicted != n-bound || b.evicted != n-bound || b.ds.Len() != bound {
		t.Errorf("%d decisions on distinct values: %d evicted (counted %d), %d held; want %d, %d", n, evicted, b.evicted, b.ds.Len(), n-bound, bound)
	}
	for i := range n {
		d := decision(i, 0)
		if _, ok := b.ds.Get(d.Value); ok != (i < bound-1 || i == n-1) {
			t.Fatalf("held %s: %v, want %v", d.Value, ok, !ok)
		}
	}
	if got := b.add(decision(0, 3*time.Hour)); got != 0 {
		t.Errorf("lengthening a held decision evicted %d", got)
	}
	if d, _ := b.ds.Get(decision(0, 0).Value); !d.Until().Equal(now.Add(3 * time.Hour)) {
		t.Errorf("the lengthened decision ends %v, want %v", d.Until(), now.Add(3*time.Hour))
	}
}
