package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	for _, tc := range []struct {
		read, total, lines int64
		elapsed            time.Duration
		want               string
	}{
		{0, 120e6, 0, 0, "0 B / 120.0 MB (0%)  - lines/s  ETA -"},
		{30e6, 120e6, 200000, 2 * time.Second, "30.0 MB / 120.0 MB (25%)  100000 lines/s  ETA 6s"},
		{1e9, 4e9, 5e6, 90 * time.Second, "1.0 GB / 4.0 GB (25%)  55556 lines/s  ETA 4m30s"},
		{1e9, 9e9, 1e6, 10 * time.Minute, "1.0 GB / 9.0 GB (11%)  1667 lines/s  ETA 1h20m"},
		{60e6, 60e6, 1000, time.Second, "60.0 MB / 60.0 MB (100%)  1000 lines/s  ETA 0s"},
		{1500, 2e6, 10, time.Second, "1.5 kB / 2.0 MB (0%)  10 lines/s  ETA 22m12s"},
	} {
		if got := formatProgress(tc.read, tc.total, tc.lines, tc.elapsed); got != tc.want {
			t.Errorf("formatProgress(%d, %d, %d, %s) = %q, want %q", tc.read, tc.total, tc.lines, tc.elapsed, got, tc.want)
		}
	}
}

// setProgress lowers the size threshold (so that a small file counts as
// large), updates on every read, and sets whether stderr is a terminal.
func setProgress(t *testing.T, terminal bool) {
	t.Helper()
	minSize, every, isTerm := progressMin, progressEvery, isTerminal
	t.Cleanup(func() { progressMin, progressEvery, isTerminal = minSize, every, isTerm })
	progressMin, progressEvery = 1, 0
	if terminal {
		isTerminal = func(io.Writer) bool { return true }
	}
}

func runSplit(t *testing.T, stderr io.Writer, args ...string) string {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(stderr)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestProgressNeverOnNonTerminal(t *testing.T) {
	setProgress(t, false)
	log := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(log, []byte(strings.Repeat(bruteForce, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, args := range [][]string{
		{"replay", "-o", "table", log},
		{"replay", "-o", "json", log},
		{"parse", log},
	} {
		var buf bytes.Buffer
		runSplit(t, &buf, args...)
		if buf.Len() != 0 {
			t.Errorf("%v wrote %q to a non-terminal stderr", args, buf.String())
		}
		runSplit(t, f, args...)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Errorf("stderr file: %v %v", fi, err)
	}
}

func TestProgressOnTerminal(t *testing.T) {
	setProgress(t, true)
	log := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(log, []byte(strings.Repeat(bruteForce, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"replay", "-o", "table", log}, {"parse", log}} {
		var stderr bytes.Buffer
		out := runSplit(t, &stderr, args...)
		e := stderr.String()
		if !strings.Contains(e, "lines/s") || !strings.HasSuffix(e, "\r\x1b[K") {
			t.Errorf("%v: progress on stderr %q, want a line, then cleared", args, e)
		}
		if strings.ContainsAny(out, "\r\x1b") {
			t.Errorf("%v: progress on stdout: %q", args, out)
		}
	}
	// -o json from parse is for a pipe: never a progress line.
	var stderr bytes.Buffer
	runSplit(t, &stderr, "parse", "-o", "json", log)
	if stderr.Len() != 0 {
		t.Errorf("parse -o json: stderr %q", stderr.String())
	}
	// Smaller than the threshold: nothing.
	progressMin = 1 << 40
	stderr.Reset()
	runSplit(t, &stderr, "replay", "-o", "table", log)
	if stderr.Len() != 0 {
		t.Errorf("small input: stderr %q", stderr.String())
	}
}
