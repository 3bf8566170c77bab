package e2e

import (
	"slices"
	"testing"
	"time"
)

// TestHubKilled: the founder's process, which embeds the alliance's NATS
// hub, is killed with SIGKILL while members 2 and 3 are attacked. Each
// enforces its own detection at once; when the founder restarts, their
// reports (held and retried by their publishers) reach the ledger, every
// member holds every decision, the three sets are equal, and the ledger
// verifies with no entry refused and no report published twice.
func TestHubKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: three processes")
	}
	Binary(t) // built before any command's timeout starts: a build on a loaded machine takes its time
	ms := newAlliance(t, 3)
	const before, at2, at3 = "203.0.113.91", "203.0.113.92", "203.0.113.93"
	appendLines(t, ms[0].log, sshFailures(before, 8)...)
	for _, m := range ms {
		Eventually(t, 15*time.Second, "decision against "+before+" at "+m.data, func() bool { return Has(Decisions(t, m.data), before) })
	}

	ms[0].proc.Kill()
	killed := time.Now()
	appendLines(t, ms[1].log, sshFailures(at2, 8)...)
	appendLines(t, ms[2].log, sshFailures(at3, 8)...)
	Eventually(t, 15*time.Second, "members 2 and 3 enforce their own detections with the hub down", func() bool {
		return Has(Decisions(t, ms[1].data), at2) && Has(Decisions(t, ms[2].data), at3)
	})
	local := time.Since(killed)
	if Has(Decisions(t, ms[1].data), at3) || Has(Decisions(t, ms[2].data), at2) {
		t.Fatal("a decision crossed between members 2 and 3 with the hub down")
	}

	ms[0].up(t)
	up := time.Now()
	all := []string{before, at2, at3}
	var sets [][]string
	Eventually(t, 60*time.Second, "every member holds every decision after the hub restarted", func() bool {
		sets = sets[:0]
		for _, m := range ms {
			ds := Decisions(t, m.data)
			for _, v := range all {
				if !Has(ds, v) {
					return false
				}
			}
			sets = append(sets, decisionSet(ds))
		}
		return slices.Equal(sets[0], sets[1]) && slices.Equal(sets[0], sets[2])
	})
	back := time.Since(up)
	entries, ok := LedgerIn(t, "", ms[0].data)
	if !ok {
		t.Error("the ledger does not verify after the hub was killed")
	}
	for _, e := range entries {
		if !e.Accepted {
			t.Errorf("ledger entry %d (%s by %s) refused: %s", e.Seq, e.Kind, e.Author, e.Reason)
		}
	}
	for v, n := range ReportsByValue(entries) {
		if n > 1 {
			t.Errorf("%s reported %d times", v, n)
		}
	}
	t.Logf("hub killed: members enforced their own detections %v after the kill; all %d decisions everywhere %v after the founder restarted; ledger %d entries",
		local.Round(time.Millisecond), len(sets[0]), back.Round(time.Millisecond), len(entries))
}
