package member

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/source"
	"github.com/phalanx-defence/phalanx/source/file"
)

// refusedLines writes n sshd "refused connect" lines, one per address
// 198.51.100.(first+i): each is one ssh-refused-conn decision (a trigger
// the default charter lets one member decide).
func refusedLines(t *testing.T, path string, first, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now().Format(time.Stamp)
	for i := range n {
		a := fmt.Sprintf("198.51.100.%d", first+i)
		fmt.Fprintf(f, "%s host sshd[%d]: refused connect from %s (%s)\n", now, 100+i, a, a)
	}
}

// offsetsFile is the offsets file of the member's only source.
func offsetsFile(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, dirState, "files-*", "file-offsets.json"))
	if len(m) != 1 {
		return ""
	}
	return m[0]
}

func savedOffsets(t *testing.T, dir string) int64 {
	t.Helper()
	p := offsetsFile(t, dir)
	if p == "" {
		return -1
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	var sf struct {
		Files []struct {
			Offset int64 `json:"offset"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &sf); err != nil || len(sf.Files) != 1 {
		t.Fatalf("offsets file %s: %v %s", p, err, b)
	}
	return sf.Files[0].Offset
}

// waitOffsets waits until the saved offset is want: every line before it
// processed, and every report it led to in the ledger.
func waitOffsets(t *testing.T, dir string, want int64) {
	t.Helper()
	end := time.Now().Add(deadline)
	for savedOffsets(t, dir) != want {
		if time.Now().After(end) {
			t.Fatalf("saved offset %d, want %d", savedOffsets(t, dir), want)
		}
		time.Sleep(10 * time.Millisecond) // another goroutine's file, polled with a deadline
	}
}

// reportsByValue counts the accepted reports in the ledger by value.
func reportsByValue(t *testing.T, dir string) map[string]int {
	t.Helper()
	got := map[string]int{}
	if _, err := VerifyLedger(t.Context(), dir, nil, func(e VerifiedEntry) {
		if e.Accepted {
			for _, v := range reportedValues(e) {
				got[v]++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// reportedValues lists the values an entry reports, alone or in a batch,
// as its summary names them.
func reportedValues(e VerifiedEntry) []string {
	var out []string
	switch e.Kind {
	case ledger.KindReport:
		out = append(out, strings.Fields(e.Summary)[0])
	case ledger.KindReports:
		_, list, _ := strings.Cut(e.Summary, ": ")
		for _, one := range strings.Split(list, "; ") {
			out = append(out, strings.Fields(one)[0])
		}
	}
	return out
}

// TestLinesReadAgainAfterCrashReportOnce: the offsets of a crash that came
// before they were saved (rewound to the start of the log) make the member
// read every line again after a restart; the decisions it takes again are
// enforced but not reported twice, and the saved offset ends at the end of
// the log.
func TestLinesReadAgainAfterCrashReportOnce(t *testing.T) {
	const n = 20
	d := filepath.Join(t.TempDir(), "m")
	if _, err := Init(d, "crash", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "auth.log")
	refusedLines(t, log, 1, n)
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	src := file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true}
	r := start(t, d, func(m *Member) { m.AddSource(src) })
	waitOffsets(t, d, fi.Size())
	if got := len(reportsByValue(t, d)); got != n {
		t.Fatalf("%d addresses reported, want %d", got, n)
	}
	r.stop(t)

	// The crash: the offsets file as it was before the first save.
	b, err := os.ReadFile(offsetsFile(t, d))
	if err != nil {
		t.Fatal(err)
	}
	rewound := strings.Replace(string(b), fmt.Sprintf(`"offset": %d`, fi.Size()), `"offset": 0`, 1)
	if rewound == string(b) {
		t.Fatalf("offsets file does not hold offset %d:\n%s", fi.Size(), b)
	}
	if err := os.WriteFile(offsetsFile(t, d), []byte(rewound), 0o600); err != nil {
		t.Fatal(err)
	}
	r = start(t, d, func(m *Member) { m.AddSource(src) })
	refusedLines(t, log, 101, 1) // a new address after the lines read again
	fi, _ = os.Stat(log)
	waitOffsets(t, d, fi.Size())
	if l := r.m.ds.Len(); l != n+1 {
		t.Errorf("%d decisions in force after the restart, want %d", l, n+1)
	}
	got := reportsByValue(t, d)
	if len(got) != n+1 {
		t.Errorf("%d addresses reported, want %d: %v", len(got), n+1, got)
	}
	for v, c := range got {
		if c != 1 {
			t.Errorf("%s reported %d times, want once", v, c)
		}
	}
}

// fakeAcker records what it is acknowledged.
type fakeAcker struct{ got []source.Pos }

func (a *fakeAcker) Ack(p source.Pos) { a.got = append(a.got, p) }

// TestAckQueueHoldsLinesBehindAReport: lines after a decision are not
// acknowledged before its report is in the ledger, and then in order.
func TestAckQueueHoldsLinesBehindAReport(t *testing.T) {
	a := &fakeAcker{}
	line := func(end int64) source.Line { return source.Line{Acker: a, Pos: source.Pos{Stream: 1, End: end}} }
	var q ackQueue
	q.add(line(10))
	q.idle(false)
	if len(a.got) != 0 {
		t.Fatalf("acknowledged before the batch was full or the channel empty: %v", a.got)
	}
	q.add(line(20))
	done := make(chan published, 1)
	q.wait(done) // line 20 decided something
	q.add(line(30))
	q.idle(true)
	if len(a.got) != 0 || q.head() == nil {
		t.Fatalf("acknowledged while a report waits: %v", a.got)
	}
	done <- published{}
	<-q.head()
	q.release(true)
	if want := []source.Pos{{Stream: 1, End: 20}, {Stream: 1, End: 30}}; fmt.Sprint(a.got) != fmt.Sprint(want) {
		t.Fatalf("acknowledged %v, want %v", a.got, want)
	}
	if q.head() != nil {
		t.Fatal("a report still waits")
	}
}

// TestChainAheadOfLedgerResyncs: a kill -9 between saving chain.json and
// the stream's acknowledgement leaves the chain one envelope ahead of the
// ledger; the restarted member continues from the ledger's position, so
// its reports are accepted rather than refused as out-of-order.
func TestChainAheadOfLedgerResyncs(t *testing.T) {
	d := filepath.Join(t.TempDir(), "m")
	if _, err := Init(d, "chain", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := start(t, d)
	r.stop(t)
	c, err := loadChain(d)
	if err != nil {
		t.Fatal(err)
	}
	lost := c
	lost.Seq++
	lost.Last = strings.Repeat("ab", 32) // an envelope sealed, never published
	if err := saveChain(d, lost); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "auth.log")
	refusedLines(t, log, 1, 3)
	fi, _ := os.Stat(log)
	start(t, d, func(m *Member) { m.AddSource(file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true}) })
	waitOffsets(t, d, fi.Size())
	if got := reportsByValue(t, d); len(got) != 3 {
		t.Errorf("%d reports accepted, want 3: %v", len(got), got)
	}
	if c2, _ := loadChain(d); c2.Seq <= c.Seq || c2.Seq == lost.Seq && c2.Last == lost.Last {
		t.Errorf("chain after the restart: %+v (ledger's before: %+v)", c2, c)
	}
}

func TestReportBudget(t *testing.T) {
	var b reportBudget
	now := time.Now()
	for i := range 9 { // 10·0.9
		if !b.take(now, 10, 0) {
			t.Fatalf("take %d refused within the budget", i)
		}
	}
	if b.take(now, 10, 0) {
		t.Fatal("take beyond the budget allowed")
	}
	if b.take(now.Add(59*time.Second), 10, 0) {
		t.Fatal("budget renewed before a minute passed")
	}
	if !b.take(now.Add(61*time.Second), 10, 0) {
		t.Fatal("budget not renewed after a minute")
	}
	var s reportBudget
	for range 4 {
		s.take(now, 10, 5)
	}
	if s.take(now, 10, 5) {
		t.Fatal("a reserve of 5 of 9 let a fifth through")
	}
}

// TestFloodOfDecisionsStaysWithinCharterRate: more trigger decisions than
// the charter lets one member report in a minute are all enforced here;
// the reports stop short of the rate, so the fold refuses none of them
// and does not flag the member.
func TestFloodOfDecisionsStaysWithinCharterRate(t *testing.T) {
	const n = 700 // the default charter allows 600 a minute
	d := filepath.Join(t.TempDir(), "m")
	if _, err := Init(d, "flood", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "auth.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().Format(time.Stamp)
	for i := range n {
		a := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		fmt.Fprintf(f, "%s host sshd[1]: refused connect from %s (%s)\n", stamp, a, a)
	}
	f.Close()
	fi, _ := os.Stat(log)
	r := start(t, d, func(m *Member) {
		m.AddSource(file.Config{Paths: []string{log}, Hint: "sshd", FromStart: true})
	})
	waitOffsets(t, d, fi.Size())
	if got := r.m.ds.Len(); got != n {
		t.Errorf("%d decisions in force here, want %d", got, n)
	}
	var rejected int
	reports := 0
	if _, err := VerifyLedger(t.Context(), d, nil, func(e VerifiedEntry) {
		if !e.Accepted {
			rejected++
		} else {
			reports += len(reportedValues(e))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if rejected != 0 || reports == 0 || reports >= 600 {
		t.Errorf("%d reports accepted, %d entries rejected: want some reports, fewer than 600, none rejected", reports, rejected)
	}
	r.m.mu.Lock()
	for _, ms := range r.m.fold.Members() {
		if ms.Flagged != "" {
			t.Errorf("member %s flagged: %s", ms.ID, ms.Flagged)
		}
	}
	r.m.mu.Unlock()
}
