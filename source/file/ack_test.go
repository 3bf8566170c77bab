package file

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

// savedOffset reads the offset saved for the only file in state.
func savedOffset(t *testing.T, state string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, stateName))
	if err != nil {
		return -1
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		t.Fatalf("offsets file: %v", err)
	}
	if len(sf.Files) != 1 {
		return -1
	}
	return sf.Files[0].Offset
}

func waitSaved(t *testing.T, state string, want int64) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for savedOffset(t, state) != want {
		if time.Now().After(deadline) {
			t.Fatalf("saved offset is %d, want %d", savedOffset(t, state), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With Config.Ack, a line counts as read only once acknowledged: what the
// consumer received but did not finish is read again after a restart, and
// what it acknowledged is not.
func TestAckedLinesOnlyAreSaved(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "auth.log")
	appendFile(t, log, "l1\nl2\nl3\nl4\nl5\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true, Ack: true}, state)
	got := r.expect(t, "l1", "l2", "l3", "l4", "l5")
	for _, l := range got {
		if l.Acker == nil || l.Pos.Stream == 0 {
			t.Fatalf("line %q carries no position to acknowledge: %+v", l.Text, l)
		}
	}
	if got[2].Pos.End != int64(len("l1\nl2\nl3\n")) {
		t.Fatalf("l3 ends at %d, want %d", got[2].Pos.End, len("l1\nl2\nl3\n"))
	}
	r.waitPolls(t)
	if off := savedOffset(t, state); off != 0 {
		t.Fatalf("offset %d saved before any acknowledgement, want 0", off)
	}
	var acks source.Acks
	for _, l := range got[:3] {
		acks.Add(l)
	}
	acks.Flush()
	waitSaved(t, state, got[2].Pos.End) // saved while running, not only at the end
	r.stop()

	r2 := start(t, Config{Paths: []string{log}, FromStart: true, Ack: true}, state)
	again := r2.expect(t, "l4", "l5")
	appendFile(t, log, "sentinel\n")
	r2.expect(t, "sentinel")
	acks.Add(again[1])
	acks.Flush()
	r2.stop()
	if off := savedOffset(t, state); off != again[1].Pos.End {
		t.Errorf("after a stop, saved offset %d, want %d (the last acknowledged line)", off, again[1].Pos.End)
	}
}

// An acknowledgement that arrives after the file was truncated speaks of
// lines that are gone: it must not mark the new content as read.
func TestAckFromBeforeTruncationIsIgnored(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "a long first line\nanother long line\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true, Ack: true}, state)
	old := r.expect(t, "a long first line", "another long line")
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "x1\nx2\nx3\n")
	fresh := r.expect(t, "x1", "x2", "x3")
	if fresh[0].Pos.Stream == old[0].Pos.Stream {
		t.Fatal("a truncated file kept its stream number")
	}
	var acks source.Acks
	acks.Add(old[1])
	acks.Flush()
	r.waitPolls(t)
	r.stop()
	r2 := start(t, Config{Paths: []string{log}, FromStart: true, Ack: true}, state)
	r2.expect(t, "x1", "x2", "x3")
}

// Without Config.Ack nothing changes for a consumer that does not know
// about acknowledgements.
func TestNoAckLinesCarryNoAcker(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "one\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true}, t.TempDir())
	if l := r.expect(t, "one")[0]; l.Acker != nil {
		t.Errorf("line carries an Acker without Config.Ack: %+v", l)
	}
}

// A rotated file whose last lines are acknowledged after it was released
// still has them saved: a restart does not read them again.
func TestAckAfterRotatedFileReleased(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "r1\nr2\n")
	r := start(t, Config{Paths: []string{log}, FromStart: true, Ack: true}, state, func(s *Source) { s.retireGrace = 0 })
	got := r.expect(t, "r1", "r2")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	r.waitPolls(t)
	r.waitPolls(t) // released: its path is gone and the grace is zero
	var acks source.Acks
	acks.Add(got[1])
	acks.Flush()
	r.waitPolls(t)
	r.stop()
	// The rotated file under its new name is the same inode: nothing to read.
	r2 := start(t, Config{Paths: []string{log + "*"}, FromStart: true, Ack: true}, state)
	appendFile(t, log+".1", "r3\n")
	r2.expect(t, "r3")
}

func BenchmarkAcks(b *testing.B) {
	var src Source
	src.acked = map[uint32]int64{}
	src.ackWake = make(chan struct{}, 1)
	l := source.Line{Acker: &src}
	var acks source.Acks
	for i := 0; b.Loop(); i++ {
		l.Pos = source.Pos{Stream: 1, End: int64(i)}
		acks.Add(l)
		if i%1024 == 0 {
			acks.Flush()
		}
	}
}
