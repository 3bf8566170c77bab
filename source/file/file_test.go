package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

const failAfter = 5 * time.Second

// run starts a Source and returns its lines, a function that waits for n
// complete polls, and a function that stops it (and checks Run's result).
type running struct {
	src   *Source
	lines chan source.Line
	polls chan struct{}
	stop  func()
}

func start(t *testing.T, cfg Config, stateDir string, setup ...func(*Source)) *running {
	t.Helper()
	cfg.Poll = 5 * time.Millisecond
	src, err := New(cfg, stateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(src)
	}
	r := &running{src: src, lines: make(chan source.Line, 16), polls: make(chan struct{}, 1)}
	src.onPoll = func() {
		select {
		case r.polls <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
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
		src.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// waitPolls waits until at least one whole poll has run after the call.
func (r *running) waitPolls(t *testing.T) {
	t.Helper()
	for range 2 { // the first signal may come from a poll already under way
		select {
		case <-r.polls:
		case <-time.After(failAfter):
			t.Fatal("source did not poll")
		}
	}
}

func (r *running) expect(t *testing.T, want ...string) []source.Line {
	t.Helper()
	var got []source.Line
	for _, w := range want {
		select {
		case l := <-r.lines:
			if l.Text != w {
				t.Fatalf("got line %q, want %q (after %d lines)", l.Text, w, len(got))
			}
			got = append(got, l)
		case <-time.After(failAfter):
			t.Fatalf("timed out waiting for %q (after %d lines)", w, len(got))
		}
	}
	return got
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFirstSeenStartsAtEnd(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	appendFile(t, log, "old1\nold2\n")
	r := start(t, Config{Paths: []string{log}, Hint: "sshd"}, t.TempDir())
	r.waitPolls(t)
	appendFile(t, log, "new1\n")
	l := r.expect(t, "new1")[0]
	if l.Hint != "sshd" || l.Origin != "file:"+log || l.Structured() {
		t.Errorf("line = %+v; want hint sshd, origin file:%s, unstructured", l, log)
	}
}

func TestFromStart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	appendFile(t, log, "old1\nold2\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, "")
	r.expect(t, "old1", "old2")
	appendFile(t, log, "new1\n")
	r.expect(t, "new1")
	if n := r.src.Stats().Lines.Load(); n != 3 {
		t.Errorf("Stats().Lines = %d, want 3", n)
	}
}

func TestRenameCreateRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "a1\na2\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, t.TempDir())
	r.expect(t, "a1", "a2")

	// The logger still holds the old file open across the rename.
	old, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.WriteString("a3\n")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	old.WriteString("a4\n")
	appendFile(t, log, "b1\n")
	r.expect(t, "a3", "a4", "b1")
	appendFile(t, log, "b2\n")
	r.expect(t, "b2")
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "first line\nsecond line\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, t.TempDir())
	r.expect(t, "first line", "second line")
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "b1\n")
	r.expect(t, "b1")
	appendFile(t, log, "b2\n")
	r.expect(t, "b2")
}

func TestSymlinkTargetChanges(t *testing.T) {
	dir := t.TempDir()
	t1, t2 := filepath.Join(dir, "t1.log"), filepath.Join(dir, "t2.log")
	link := filepath.Join(dir, "current.log")
	appendFile(t, t1, "one\n")
	if err := os.Symlink(t1, link); err != nil {
		t.Fatal(err)
	}
	r := start(t, Config{Paths: []string{link}, FromStart: true}, t.TempDir())
	if l := r.expect(t, "one")[0]; l.Origin != "file:"+link {
		t.Errorf("Origin = %q, want the configured path", l.Origin)
	}
	appendFile(t, t2, "two\n")
	tmp := link + ".tmp"
	if err := os.Symlink(t2, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "two")
	appendFile(t, t2, "three\n")
	r.expect(t, "three")
}

func TestGlobFindsNewFile(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, "a-old\n")
	appendFile(t, filepath.Join(dir, "ignored.txt"), "x\n")
	r := start(t, Config{Paths: []string{filepath.Join(dir, "*.log")}}, t.TempDir())
	r.waitPolls(t)
	// Appeared while running: read from its start.
	b := filepath.Join(dir, "b.log")
	appendFile(t, b, "b1\n")
	if l := r.expect(t, "b1")[0]; l.Origin != "file:"+b {
		t.Errorf("Origin = %q", l.Origin)
	}
	appendFile(t, a, "a-new\n")
	r.expect(t, "a-new")
	appendFile(t, filepath.Join(dir, "ignored.txt"), "y\n")
	appendFile(t, b, "b2\n")
	r.expect(t, "b2")
}

func TestMissingFileAppearsLater(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "later.log")
	r := start(t, Config{Paths: []string{log}}, t.TempDir())
	r.waitPolls(t)
	appendFile(t, log, "hello\n")
	r.expect(t, "hello")
}

func TestRestartResumesExactly(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "n1\nn2\nn3\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, state)
	r.expect(t, "n1", "n2", "n3")
	appendFile(t, log, "part") // incomplete: not delivered, not counted as read
	r.waitPolls(t)
	r.stop()

	appendFile(t, log, "ial\nm1\nm2\n")
	// FromStart must not matter: the file is known.
	r2 := start(t, Config{Paths: []string{log}, FromStart: true}, state)
	r2.expect(t, "partial", "m1", "m2")
	appendFile(t, log, "sentinel\n")
	r2.expect(t, "sentinel") // nothing duplicated before it
}

func TestRestartWithoutFromStartDoesNotSkip(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "before\n")
	r := start(t, Config{Paths: []string{log}}, state)
	r.waitPolls(t) // recorded at its end, although no line was read
	r.stop()
	appendFile(t, log, "while-stopped\n")
	r2 := start(t, Config{Paths: []string{log}}, state)
	r2.expect(t, "while-stopped")
}

func TestRotatedWhileStopped(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "old\n")
	r := start(t, Config{Paths: []string{log}}, state)
	r.waitPolls(t)
	r.stop()
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "fresh\n")
	r2 := start(t, Config{Paths: []string{log}}, state)
	r2.expect(t, "fresh")
}

func TestLongLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "big.log")
	big := bytes.Repeat([]byte("A"), source.MaxLine+source.MaxLine/2)
	appendFile(t, log, string(big)+"\nshort \x00\xff\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, "")
	select {
	case l := <-r.lines:
		if len(l.Text) != source.MaxLine || !l.Truncated || strings.Trim(l.Text, "A") != "" {
			t.Fatalf("long line: len %d, truncated %v", len(l.Text), l.Truncated)
		}
	case <-time.After(failAfter):
		t.Fatal("timed out waiting for the long line")
	}
	if l := r.expect(t, "short \x00\xff")[0]; l.Truncated {
		t.Error("short line marked truncated")
	}
	if n := r.src.Stats().Truncated.Load(); n != 1 {
		t.Errorf("Stats().Truncated = %d, want 1", n)
	}
}

func TestReusedInodeIsNewFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "2026-11-27 first file\n")
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	id, _ := idOf(fi)
	s, err := New(Config{Paths: []string{log}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.state[id] = &entry{Dev: id.Dev, Ino: id.Ino, Path: log, Offset: 5, Head: []byte("2026-11-27 ")}
	if got := s.startOffset(f, id, log, fi.Size(), true); got != 5 {
		t.Errorf("matching fingerprint: start %d, want 5", got)
	}
	s.state[id] = &entry{Dev: id.Dev, Ino: id.Ino, Path: log, Offset: 5, Head: []byte("1999-01-01 ")}
	if got := s.startOffset(f, id, log, fi.Size(), true); got != 0 {
		t.Errorf("other fingerprint (reused inode): start %d, want 0", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}, "", nil); err == nil {
		t.Error("no paths accepted")
	}
	if _, err := New(Config{Paths: []string{"/var/log/[.log"}}, "", nil); err == nil {
		t.Error("bad glob accepted")
	}
}

// A glob that matches the rotated name too must not read the rotated file
// again: it is the file we were reading, under a new name.
func TestRotationMatchedByGlobIsNotReread(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "a1\n")
	r := start(t, Config{Paths: []string{filepath.Join(dir, "app.log*")}, FromStart: true}, t.TempDir())
	r.expect(t, "a1")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	r.waitPolls(t)
	appendFile(t, log+".1", "a2\n") // the logger has not reopened yet
	appendFile(t, log, "b1\n")
	r.expectSet(t, "a2", "b1")
	r.waitPolls(t)
	appendFile(t, log+".1", "a3\n")
	r.expect(t, "a3")
	appendFile(t, log, "sentinel\n")
	r.expect(t, "sentinel") // nothing read twice before it
}

// expectSet receives len(want) lines in any order.
func (r *running) expectSet(t *testing.T, want ...string) {
	t.Helper()
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	for range want {
		select {
		case l := <-r.lines:
			if left[l.Text] == 0 {
				t.Fatalf("unexpected line %q; still waiting for %v", l.Text, left)
			}
			left[l.Text]--
		case <-time.After(failAfter):
			t.Fatalf("timed out; still waiting for %v", left)
		}
	}
}

// The last line of a rotated file that never gets its "\n" is delivered
// once the old file has been quiet for the grace period.
func TestRotatedPartialLineDeliveredAfterGrace(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "a1\nunfinished")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, t.TempDir(),
		func(s *Source) { s.retireGrace = 50 * time.Millisecond })
	r.expect(t, "a1")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "b1\n")
	r.expect(t, "b1", "unfinished")
}

func TestDeletedFileIsReleased(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "a1\nlast")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, t.TempDir(),
		func(s *Source) { s.retireGrace = 50 * time.Millisecond })
	r.expect(t, "a1")
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "last")
	appendFile(t, log, "again\n") // recreated: a new file, read from its start
	r.expect(t, "again")
}

// TestInotifyWakes: with polling effectively off, a new line still arrives
// at once, because the kernel says when the directory changes.
func TestInotifyWakes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendFile(t, path, "")
	r := start(t, Config{Paths: []string{path}, FromStart: true}, "", func(s *Source) { s.cfg.Poll = time.Hour })
	select { // the initial poll, which opens the file; no other comes
	case <-r.polls:
	case <-time.After(failAfter):
		t.Fatal("source did not poll")
	}
	appendFile(t, path, "a line\n")
	r.expect(t, "a line")
}
