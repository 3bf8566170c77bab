package journald

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

const failAfter = 5 * time.Second

// fakeJournalctl writes a journalctl stand-in into dir. Invocation n
// appends its arguments as one line to dir/args, prints dir/out<n>.json,
// then exits, or, if dir/hold<n> exists, keeps following (sleeps) until
// it is killed.
func fakeJournalctl(t *testing.T, dir string) string {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/sh
d=%q
n=$(cat "$d/count" 2>/dev/null || echo 0)
n=$((n+1))
echo "$n" > "$d/count"
echo "$*" >> "$d/args"
cat "$d/out$n.json" 2>/dev/null
if [ -e "$d/hold$n" ]; then exec sleep 600; fi
exit 1
`, dir)
	path := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func entry(cursor, msg string) string {
	return fmt.Sprintf(`{"__CURSOR":%q,"__REALTIME_TIMESTAMP":"1764259200000000","_PID":"812","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","MESSAGE":%q}`+"\n", cursor, msg)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func args(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

type running struct {
	lines chan source.Line
	stop  func()
}

func start(t *testing.T, cfg Config, stateDir string) (*Source, *running) {
	t.Helper()
	src, err := New(cfg, stateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{lines: make(chan source.Line, 16)}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, r.lines) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(failAfter):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(r.stop)
	return src, r
}

func (r *running) expect(t *testing.T, want ...string) []source.Line {
	t.Helper()
	var got []source.Line
	for _, w := range want {
		select {
		case l := <-r.lines:
			if l.Text != w {
				t.Fatalf("got %q, want %q", l.Text, w)
			}
			got = append(got, l)
		case <-time.After(failAfter):
			t.Fatalf("timed out waiting for %q", w)
		}
	}
	return got
}

func TestFollowAndRestartAfterExit(t *testing.T) {
	dir := t.TempDir()
	jc := fakeJournalctl(t, dir)
	write(t, filepath.Join(dir, "out1.json"), entry("c1", "one")+"not json\n"+`{"MESSAGE":[104,105,255],"_COMM":"app"}`+"\n"+entry("c2", "two"))
	write(t, filepath.Join(dir, "out2.json"), entry("c3", "three"))
	write(t, filepath.Join(dir, "hold2"), "")

	src, r := start(t, Config{Journalctl: jc, Matches: []string{"_SYSTEMD_UNIT=ssh.service"}, Hint: "sshd", Backoff: time.Millisecond}, "")
	got := r.expect(t, "one", "hi\xff", "two", "three")
	l := got[0]
	want := source.Line{Text: "one", Time: time.UnixMicro(1764259200000000).UTC(), Host: "web1", Program: "sshd", PID: 812, Hint: "sshd", Origin: "journald"}
	if l != want {
		t.Errorf("line = %+v\nwant   %+v", l, want)
	}
	if !l.Structured() {
		t.Error("journald line not structured")
	}
	if got[1].Program != "app" {
		t.Errorf("Program = %q, want _COMM when no identifier", got[1].Program)
	}
	a := args(t, dir)
	if len(a) < 2 {
		t.Fatalf("journalctl ran %d times, want 2", len(a))
	}
	if !strings.Contains(a[0], "--since=now") || strings.Contains(a[0], "--after-cursor") {
		t.Errorf("first run args %q: want --since=now", a[0])
	}
	if !strings.Contains(a[1], "--after-cursor=c2") || !strings.HasSuffix(a[1], "_SYSTEMD_UNIT=ssh.service") {
		t.Errorf("restart args %q: want --after-cursor=c2 and the match", a[1])
	}
	if !strings.Contains(a[0], "-o json") || !strings.Contains(a[0], "--follow") {
		t.Errorf("args %q: want -o json --follow", a[0])
	}
	if n := src.Stats().Dropped.Load(); n != 1 {
		t.Errorf("Dropped = %d, want 1", n)
	}
}

func TestCursorPersistsAcrossRestart(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	jc := fakeJournalctl(t, dir)
	write(t, filepath.Join(dir, "out1.json"), entry("s=abc;i=1", "one"))
	write(t, filepath.Join(dir, "hold1"), "")
	write(t, filepath.Join(dir, "out2.json"), entry("s=abc;i=2", "two"))
	write(t, filepath.Join(dir, "hold2"), "")

	_, r := start(t, Config{Journalctl: jc}, state)
	ack(r.expect(t, "one")...)
	r.stop()
	b, err := os.ReadFile(filepath.Join(state, cursorName))
	if err != nil || strings.TrimSpace(string(b)) != "s=abc;i=1" {
		t.Fatalf("saved cursor %q, %v", b, err)
	}

	src2, r2 := start(t, Config{Journalctl: jc}, state)
	got := r2.expect(t, "two")
	if a := args(t, dir); len(a) != 2 || !strings.Contains(a[1], "--after-cursor=s=abc;i=1") {
		t.Errorf("args after restart %q: want --after-cursor=s=abc;i=1", a)
	}
	ack(got...)
	r2.stop()
	if c := src2.Cursor(); c != "s=abc;i=2" {
		t.Errorf("Cursor() = %q", c)
	}
	if c := savedCursor(t, state); c != "s=abc;i=2" {
		t.Errorf("saved cursor %q after the acknowledged line, want s=abc;i=2", c)
	}
}

// ack acknowledges ls as a consumer does once they are processed.
func ack(ls ...source.Line) {
	var a source.Acks
	for _, l := range ls {
		a.Add(l)
	}
	a.Flush()
}

// savedCursor reads the cursor file in state ("" if there is none).
func savedCursor(t *testing.T, state string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, cursorName))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitSavedCursor waits for the running source's periodic save (every
// saveEvery) to write want.
func waitSavedCursor(t *testing.T, state, want string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for savedCursor(t, state) != want {
		if time.Now().After(deadline) {
			t.Fatalf("saved cursor is %q, want %q", savedCursor(t, state), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A line counts as read only once acknowledged: the cursor on disk while
// the source runs (what a kill -9 leaves) and after it stops never covers
// a line the consumer received but did not finish, and a restart has
// journalctl resume right after the last acknowledged entry.
func TestOnlyAcknowledgedEntriesAreSaved(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	jc := fakeJournalctl(t, dir)
	noMessage := `{"__CURSOR":"s=x;i=2","_PID":"1"}` + "\n"
	write(t, filepath.Join(dir, "out1.json"), entry("s=x;i=1", "one")+noMessage+entry("s=x;i=3", "three")+entry("s=x;i=4", "four"))
	write(t, filepath.Join(dir, "hold1"), "")
	write(t, filepath.Join(dir, "out2.json"), entry("s=x;i=3", "three")+entry("s=x;i=4", "four"))
	write(t, filepath.Join(dir, "hold2"), "")

	src, r := start(t, Config{Journalctl: jc}, state)
	got := r.expect(t, "one", "three", "four")
	for i, l := range got {
		if l.Acker == nil || l.Pos != (source.Pos{Stream: ackStream, End: int64(i + 1)}) {
			t.Fatalf("line %q: acknowledgement %v at %+v, want the source at line %d", l.Text, l.Acker, l.Pos, i+1)
		}
	}
	if c := src.Cursor(); c != "s=x;i=4" {
		t.Errorf("read cursor %q, want s=x;i=4", c)
	}
	if c := src.Acked(); c != "" {
		t.Fatalf("cursor %q counts as processed before any acknowledgement", c)
	}
	// "one" done: the entry without a message after it is done too.
	ack(got[0])
	waitSavedCursor(t, state, "s=x;i=2") // saved while running, not only at the end
	r.stop()
	if c := savedCursor(t, state); c != "s=x;i=2" {
		t.Fatalf("after a stop with three and four unacknowledged, saved cursor %q, want s=x;i=2", c)
	}

	_, r2 := start(t, Config{Journalctl: jc}, state)
	again := r2.expect(t, "three", "four")
	if a := args(t, dir); len(a) != 2 || !strings.Contains(a[1], "--after-cursor=s=x;i=2") {
		t.Fatalf("args after restart %q: want --after-cursor=s=x;i=2", a)
	}
	ack(again...)
	r2.stop()
	if c := savedCursor(t, state); c != "s=x;i=4" {
		t.Errorf("saved cursor %q after every line is acknowledged, want s=x;i=4", c)
	}
}

// The marks kept for unacknowledged lines are bounded; once thinned, an
// acknowledgement resolves to a cursor at or before its line (entries
// repeat after a restart, none is skipped), and acknowledging the last
// line still saves the last cursor.
func TestUnacknowledgedMarksAreBounded(t *testing.T) {
	src, err := New(Config{Journalctl: fakeJournalctl(t, t.TempDir())}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*maxMarks + 7
	for i := 1; i <= n; i++ {
		src.read1(fmt.Sprintf("i=%d", i), true)
	}
	if len(src.marks) > maxMarks {
		t.Fatalf("%d marks kept for %d unacknowledged lines, want at most %d", len(src.marks), n, maxMarks)
	}
	for _, at := range []int64{5, maxMarks + 1, 2 * maxMarks, n - 1, n} {
		src.Ack(source.Pos{Stream: ackStream, End: at})
		var got int64
		if _, err := fmt.Sscanf(src.Acked(), "i=%d", &got); err != nil && at > 5 {
			t.Fatalf("acknowledged up to %d: saved cursor %q", at, src.Acked())
		}
		if got > at {
			t.Fatalf("acknowledged up to %d: cursor of line %d would be saved, skipping lines", at, got)
		}
		if at == n && got != n {
			t.Errorf("every line acknowledged: cursor of line %d, want %d", got, n)
		}
	}
	if len(src.marks) != 0 {
		t.Errorf("%d marks left after the last line was acknowledged", len(src.marks))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{Journalctl: filepath.Join(t.TempDir(), "nope")}, "", nil); err == nil {
		t.Error("missing journalctl accepted")
	}
	jc := fakeJournalctl(t, t.TempDir())
	if _, err := New(Config{Journalctl: jc, Matches: []string{"--file=/etc/shadow"}}, "", nil); err == nil {
		t.Error("option smuggled as a match accepted")
	}
	if _, err := New(Config{Journalctl: jc, Matches: []string{"_SYSTEMD_UNIT=ssh.service", "+", "SYSLOG_IDENTIFIER=sshd"}}, "", nil); err != nil {
		t.Errorf("valid matches rejected: %v", err)
	}
}
