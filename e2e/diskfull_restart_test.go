package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

// TestRestartDiskFull: a member whose data directory is on a full 4 MB
// tmpfs is restarted. It starts: its local API answers the CLI at the
// address api.addr still names (the file cannot be rewritten; the log
// says so and what to do), it restores its snapshot, detects, enforces
// and publishes. Restarted again on a full disk with that address taken
// by another program, it removes the stale api.addr (the CLI would send
// its token there), serves on another port, and writes api.addr once
// space returns, without a restart.
func TestRestartDiskFull(t *testing.T) {
	ns, hub, ing, small, logPath := ingestOnSmallDisk(t, "refull")
	up := func() *Process {
		return StartIn(t, ns, "up", "--data", ing, "--source", logPath, "--from-start", "--enforce", "nft")
	}
	decided := func(n int, when string) { t.Helper(); decidedEverywhere(t, ns, hub, ing, n, when) }
	apiAddr := func() string {
		b, err := os.ReadFile(filepath.Join(ing, "api.addr"))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}

	p := up()
	Eventually(t, 20*time.Second, "the member answers", func() bool { return DecisionsIn(t, ns, ing) != nil })
	appendLines(t, logPath, attackLines(0, 10)...)
	decided(10, "before the disk fills")
	p.Stop(t, 20*time.Second) // writes fold.snap
	before := apiAddr()

	filler := filepath.Join(small, "filler")
	fill(t, filler)
	started := time.Now()
	p = up()
	Eventually(t, 20*time.Second, "the member restarted on a full disk answers the CLI", func() bool {
		return DecisionsIn(t, ns, ing) != nil
	})
	t.Logf("restarted on a full disk: the CLI reached the API %.2fs after the start", time.Since(started).Seconds())
	out := p.Output()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "api.addr") {
			t.Logf("log: %s", l)
		}
	}
	if !strings.Contains(out, "api.addr") || !strings.Contains(out, "no space left on device") {
		t.Errorf("no word in the log about api.addr and the full disk:\n%s", out)
	}
	if !strings.Contains(out, "restored from snapshot") {
		t.Errorf("the snapshot was not restored on a full disk:\n%s", out)
	}
	if a := apiAddr(); a != before {
		t.Logf("api.addr %q → %q", before, a)
	}
	appendLines(t, logPath, attackLines(10, 10)...)
	decided(20, "after a restart on a full disk")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	Eventually(t, 20*time.Second, "state saved again once space returned", func() bool {
		o := p.Output()
		return strings.Contains(o, "read offsets saved again") && strings.Contains(o, "chain position saved again")
	})
	t.Logf("space returned: state saved again %.2fs later", time.Since(freed).Seconds())
	if DecisionsIn(t, ns, ing) == nil {
		t.Error("the CLI does not reach the member once space returned")
	}

	// The address api.addr names is taken while the member is down.
	p.Stop(t, 20*time.Second)
	old := apiAddr()
	if old == "" {
		t.Fatal("no api.addr after space returned")
	}
	netnstest.Enter(t, ns, func() {
		l, err := net.Listen("tcp", old)
		if err != nil {
			t.Fatalf("take %s: %v", old, err)
		}
		t.Cleanup(func() { l.Close() })
	})
	fill(t, filler)
	p = up()
	Eventually(t, 20*time.Second, "a warning that the CLI cannot find the API", func() bool {
		return strings.Contains(p.Output(), "cannot write api.addr, so the CLI cannot find")
	})
	for _, l := range strings.Split(p.Output(), "\n") {
		if strings.Contains(l, "api.addr") {
			t.Logf("log: %s", l)
		}
	}
	if a := apiAddr(); a != "" {
		t.Errorf("api.addr still names %q, taken by another program", a)
	}
	appendLines(t, logPath, attackLines(20, 5)...)
	Eventually(t, 20*time.Second, "decisions enforced and published", func() bool {
		fold, kernel := DecisionsIn(t, ns, hub), NFTAddrs(t, ns)
		for i := 20; i < 25; i++ {
			if !Has(fold, attackAddr(i)) || !kernel[attackAddr(i)] {
				return false
			}
		}
		return true
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed = time.Now()
	Eventually(t, 10*time.Second, "api.addr written again", func() bool { a := apiAddr(); return a != "" && a != old })
	t.Logf("space returned: api.addr written again %.2fs later", time.Since(freed).Seconds())
	if ds := DecisionsIn(t, ns, ing); !Has(ds, attackAddr(24)) {
		t.Errorf("the CLI does not reach the member through the new api.addr: %v", ds)
	}
	if tmp, _ := filepath.Glob(filepath.Join(ing, ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left in the data directory: %v", tmp)
	}
}
