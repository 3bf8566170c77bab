package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

// attackAddr is the address of the i-th attack line: one distinct source
// per line, so that each line is one decision and the ledger says which
// lines were consumed.
func attackAddr(i int) string { return fmt.Sprintf("198.18.%d.%d", i/250, i%250+1) }

// processed counts the lines a member's process consumed, from its log:
// every attack line ends in a decision, reported or (read again after a
// crash) recognised as reported already.
func processed(out string) (decided, suppressed int) {
	return strings.Count(out, "msg=decision "), strings.Count(out, "not reported twice")
}

// TestKillDuringIngest: a member follows a log that a bounded writer keeps
// appending attack lines to (each line from its own address, each one an
// ssh-refused-conn decision the charter lets one member take). It is
// killed with SIGKILL at a random moment in the middle of ingesting,
// several times, and restarted each time. At the end every line has been
// consumed (one accepted report per address in the ledger: none lost),
// no decision was reported twice, no envelope was refused (the chain
// survived the kills), the lines consumed again after each kill are
// counted, the ledger verifies, and the kernel's nftables set (in a
// namespace) holds exactly the member's decisions.
func TestKillDuringIngest(t *testing.T) {
	needNetns(t)
	const (
		total  = 300 // attack lines; well under the charter's 600 reports a minute
		burst  = 3
		rounds = 3
	)
	ns := netnstest.New(t, "phx-e2e-kill-")
	root := t.TempDir()
	hub, ing := filepath.Join(root, "hub"), filepath.Join(root, "ingest")
	logPath := filepath.Join(root, "auth.log")
	appendLines(t, logPath)
	RunIn(t, ns, "alliance", "init", "--name", "e2e-kill", "--data", hub, "--nats-listen", "127.0.0.1:4222", "--territory", "192.0.2.1")
	StartIn(t, ns, "up", "--data", hub)
	Eventually(t, 20*time.Second, "the hub answers", func() bool { return DecisionsIn(t, ns, hub) != nil })
	token := strings.TrimSpace(RunIn(t, ns, "alliance", "invite", "--data", hub))
	RunIn(t, ns, "alliance", "join", token, "--data", ing, "--name", "ingest", "--territory", "192.0.2.2")

	var restarts []time.Duration
	up := func() *Process {
		began := time.Now()
		p := StartIn(t, ns, "up", "--data", ing, "--source", logPath, "--from-start", "--enforce", "nft")
		Eventually(t, 20*time.Second, "the ingesting member answers", func() bool { return DecisionsIn(t, ns, ing) != nil })
		restarts = append(restarts, time.Since(began))
		return p
	}
	p := up()

	// The writer: total lines in bursts, a few milliseconds apart, so that
	// the kills land while lines are in flight.
	writerDone := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			writerDone <- err
			return
		}
		defer f.Close()
		stamp := time.Now().Format(time.Stamp)
		for i := 0; i < total; i += burst {
			var b strings.Builder
			for j := i; j < min(i+burst, total); j++ {
				a := attackAddr(j)
				fmt.Fprintf(&b, "%s web1 sshd[%d]: refused connect from %s (%s)\n", stamp, 1000+j, a, a)
			}
			if _, err := f.WriteString(b.String()); err != nil {
				writerDone <- err
				return
			}
			time.Sleep(30 * time.Millisecond) // pacing the attack, not waiting for anything
		}
		writerDone <- nil
	}()

	var decided, suppressed int
	var peak int64
	for round := range rounds {
		Eventually(t, 20*time.Second, "the member consumes lines before the kill", func() bool {
			d, s := processed(p.Output())
			return d+s > 5
		})
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond) // a random moment mid-ingest
		peak = max(peak, p.PeakRSS())
		p.Kill()
		d, s := processed(p.Output())
		decided, suppressed = decided+d, suppressed+s
		t.Logf("round %d: killed after %d decisions (%d suppressed); saved offset %d", round+1, d, s, SavedOffset(t, ing))
		p = up()
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets cover only lines whose reports are in the ledger: once the
	// saved offset is the log's size, everything has been consumed.
	Eventually(t, 30*time.Second, "the saved offset reaches the end of the log", func() bool { return SavedOffset(t, ing) == fi.Size() })
	peak = max(peak, p.PeakRSS())
	ds := DecisionsIn(t, ns, ing)
	p.Kill()
	d, s := processed(p.Output())
	decided, suppressed = decided+d, suppressed+s

	entries, ok := LedgerIn(t, ns, hub)
	if !ok {
		t.Error("ledger verify: not ok")
	}
	reports := ReportsByValue(entries)
	lost, dup, rejected := 0, 0, 0
	for i := range total {
		switch n := reports[attackAddr(i)]; {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	for _, e := range entries {
		if !e.Accepted {
			rejected++
			t.Errorf("ledger entry %d (%s by %s) rejected: %s", e.Seq, e.Kind, e.Author, e.Reason)
		}
	}
	// Lines consumed by more than one process: those whose report was
	// already in the ledger (recognised, not reported again) and those
	// whose report was not yet (in the outbox at the kill: decided again
	// and reported once, which is what reading them again is for).
	again := decided + suppressed - total
	t.Logf("kill -9 x%d during %d lines: lost %d; consumed again %d (report already in the ledger, suppressed: %d; report still in flight: %d); duplicate reports %d; rejected entries %d; restart→API %v; peak RSS %.1f MB",
		rounds, total, lost, again, suppressed, again-suppressed, dup, rejected, restarts, float64(peak)/(1<<20))
	if lost != 0 || dup != 0 {
		t.Errorf("%d lines lost, %d addresses reported more than once", lost, dup)
	}
	if len(reports) != total {
		t.Errorf("%d addresses reported, want %d", len(reports), total)
	}
	if again < 0 || suppressed > again {
		t.Errorf("%d decisions and %d suppressed over %d lines: a line was not consumed", decided, suppressed, total)
	}

	// The kernel holds what the member enforces: the set restored after
	// each kill, nothing missing, nothing extra.
	want := map[string]bool{}
	for _, d := range ds {
		want[d.Value] = true
	}
	got := NFTAddrs(t, ns)
	var missing, extra []string
	for v := range want {
		if !got[v] {
			missing = append(missing, v)
		}
	}
	for v := range got {
		if !want[v] {
			extra = append(extra, v)
		}
	}
	if len(want) != total || len(missing)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		t.Errorf("%d decisions (want %d); nft set lacks %v and has extra %v", len(want), total, missing, extra)
	}
}
