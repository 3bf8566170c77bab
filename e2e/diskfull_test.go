package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

// attackLines are sshd lines refusing attackAddr(first) … attackAddr(first+n-1).
func attackLines(first, n int) []string {
	stamp := time.Now().Format(time.Stamp)
	out := make([]string, n)
	for i := range out {
		a := attackAddr(first + i)
		out[i] = fmt.Sprintf("%s web1 sshd[%d]: refused connect from %s (%s)", stamp, 1000+i, a, a)
	}
	return out
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 64<<10)
	for range 1 << 14 { // bounded: 1 GiB
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			return
		}
	}
	t.Fatalf("%s never filled up", path)
}

// smallDisk mounts a tmpfs of size (mount's -o size, e.g. "4m") at a new
// directory of root, unmounted when the test ends, and returns it.
func smallDisk(t *testing.T, root, size, name string) string {
	t.Helper()
	small := filepath.Join(root, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	netnstest.Run(t, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", name, small)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	return small
}

// ingestOnSmallDisk is what the member disk-full tests share: in a new
// namespace, a hub on the ordinary disk, running, and a member ("ingest")
// joined with its data directory ing on a 4 MB tmpfs (small), not started;
// logPath holds the attack it is to read.
func ingestOnSmallDisk(t *testing.T, name string) (ns, hub, ing, small, logPath string) {
	t.Helper()
	needNetns(t)
	netnstest.Need(t, "disk-full test", "mount", "umount")
	ns = netnstest.New(t, "phx-e2e-"+name+"-")
	root := t.TempDir()
	small = smallDisk(t, root, "4m", "phalanx-e2e-"+name)

	hub, ing = filepath.Join(root, "hub"), filepath.Join(small, "ingest")
	logPath = filepath.Join(root, "auth.log")
	appendLines(t, logPath)
	RunIn(t, ns, "alliance", "init", "--name", "e2e-"+name, "--data", hub, "--nats-listen", "127.0.0.1:4222", "--territory", "192.0.2.1")
	StartIn(t, ns, "up", "--data", hub)
	Eventually(t, 20*time.Second, "the hub answers", func() bool { return DecisionsIn(t, ns, hub) != nil })
	token := strings.TrimSpace(RunIn(t, ns, "alliance", "invite", "--data", hub))
	RunIn(t, ns, "alliance", "join", token, "--data", ing, "--name", "ingest", "--territory", "192.0.2.2")
	return ns, hub, ing, small, logPath
}

// decidedEverywhere waits until attackAddr(0 … n-1) are enforced by the
// member in ing (its set and the kernel's) and decided by the alliance
// (the set of the hub in hub: the reports were published).
func decidedEverywhere(t *testing.T, ns, hub, ing string, n int, when string) {
	t.Helper()
	Eventually(t, 20*time.Second, fmt.Sprintf("%d decisions everywhere %s", n, when), func() bool {
		local, fold, kernel := DecisionsIn(t, ns, ing), DecisionsIn(t, ns, hub), NFTAddrs(t, ns)
		for i := range n {
			a := attackAddr(i)
			if !Has(local, a) || !Has(fold, a) || !kernel[a] {
				return false
			}
		}
		return true
	})
}

// TestDiskFull: the data directory of a member (not the hub: its ledger
// store is elsewhere) is on a 4 MB tmpfs that fills up while the member
// detects an attack. Detection, enforcement (nft, in a namespace) and
// publishing go on; the log says what cannot be saved, where, and what to
// do; the files that could not be rewritten keep their previous content
// (offsets, chain, fold snapshot); once space returns, the state is saved
// again without a restart, and a restart finds the snapshot usable.
func TestDiskFull(t *testing.T) {
	ns, hub, ing, small, logPath := ingestOnSmallDisk(t, "full")
	up := func() *Process {
		p := StartIn(t, ns, "up", "--data", ing, "--source", logPath, "--from-start", "--enforce", "nft")
		Eventually(t, 20*time.Second, "the member answers", func() bool { return DecisionsIn(t, ns, ing) != nil })
		return p
	}
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	decided := func(n int, when string) { t.Helper(); decidedEverywhere(t, ns, hub, ing, n, when) }
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(ing, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := func(name string) []byte {
		t.Helper()
		b := read(name)
		if !json.Valid(b) {
			t.Fatalf("%s is not valid JSON after a full disk:\n%s", name, b)
		}
		return b
	}

	p := up()
	appendLines(t, logPath, attackLines(0, 10)...)
	decided(10, "before the disk fills")
	Eventually(t, 10*time.Second, "offsets saved", func() bool { return SavedOffset(t, ing) == size() })
	p.Stop(t, 20*time.Second) // writes fold.snap
	p = up()

	// The disk fills up.
	filler := filepath.Join(small, "filler")
	fill(t, filler)
	offBefore, chainBefore := SavedOffset(t, ing), valid("chain.json")
	full := time.Now()
	appendLines(t, logPath, attackLines(10, 10)...)
	decided(20, "with the disk full")
	Eventually(t, 10*time.Second, "errors about the full disk in the log", func() bool {
		out := p.Output()
		return strings.Contains(out, "cannot save read offsets") && strings.Contains(out, "cannot save the chain position")
	})
	t.Logf("disk full: 10 more decisions enforced and published %.1fs after the lines were written", time.Since(full).Seconds())
	for _, l := range strings.Split(p.Output(), "\n") {
		if strings.Contains(l, "cannot save") {
			t.Logf("log: %s", l)
			if !strings.Contains(l, "no space left on device") || !strings.Contains(l, small) {
				t.Errorf("the error does not say what and where: %s", l)
			}
		}
	}
	if off := SavedOffset(t, ing); off != offBefore {
		t.Errorf("offsets file changed to %d on a full disk (was %d)", off, offBefore)
	}
	if c := valid("chain.json"); !bytes.Equal(c, chainBefore) {
		t.Errorf("chain.json changed on a full disk: %s → %s", chainBefore, c)
	}
	if tmp, _ := filepath.Glob(filepath.Join(ing, "state", "*", ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}

	// Space returns: the state is saved again, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	appendLines(t, logPath, attackLines(20, 10)...)
	decided(30, "after space returned")
	Eventually(t, 10*time.Second, "offsets and chain saved again", func() bool {
		out := p.Output()
		return SavedOffset(t, ing) == size() && strings.Contains(out, "read offsets saved again") &&
			strings.Contains(out, "chain position saved again")
	})
	t.Logf("space returned: offsets and chain saved again %.2fs later", time.Since(freed).Seconds())
	if c := valid("chain.json"); bytes.Equal(c, chainBefore) {
		t.Error("chain.json not saved again after space returned")
	}

	// A stop on a full disk cannot write the snapshot; the previous one
	// stays, and serves the next start.
	fill(t, filler)
	snapBefore := read("fold.snap")
	p.Stop(t, 20*time.Second)
	for _, l := range strings.Split(p.Output(), "\n") {
		if strings.Contains(l, "snapshot on exit") {
			t.Logf("log: %s", l)
		}
	}
	if !strings.Contains(p.Output(), "snapshot on exit") || !strings.Contains(p.Output(), "fold.snap") {
		t.Errorf("no word about the snapshot that could not be saved:\n%s", p.Output())
	}
	if !bytes.Equal(read("fold.snap"), snapBefore) {
		t.Error("fold.snap changed although the disk was full")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = up()
	decided(30, "after a restart")
	if out := p.Output(); !strings.Contains(out, "restored from snapshot") || strings.Contains(out, "snapshot unusable") {
		t.Errorf("the snapshot kept through the full disk was not used:\n%s", out)
	}
	t.Logf("peak RSS of the member %.1f MB", float64(p.PeakRSS())/(1<<20))
}

// TestDiskFullHub: the founder's data directory, and with it the embedded
// JetStream store of the ledger, is on a tmpfs that fills up. JetStream
// marks the stream with a critical write error and refuses every publish
// from then on — and (nats-server v2.15) keeps refusing after space
// returns, until the hub restarts. Meanwhile a member on another disk
// goes on detecting and enforcing locally, its reports waiting in its
// outbox; once the hub restarts they are published, the alliance decides,
// and the ledger verifies.
func TestDiskFullHub(t *testing.T) {
	needNetns(t)
	netnstest.Need(t, "disk-full test", "mount", "umount")
	ns := netnstest.New(t, "phx-e2e-hubfull-")
	root := t.TempDir()
	small := smallDisk(t, root, "8m", "phalanx-e2e-hubfull")

	hub, ing := filepath.Join(small, "hub"), filepath.Join(root, "ingest")
	logPath := filepath.Join(root, "auth.log")
	appendLines(t, logPath)
	RunIn(t, ns, "alliance", "init", "--name", "e2e-hubfull", "--data", hub, "--nats-listen", "127.0.0.1:4222", "--territory", "192.0.2.1")
	hubUp := func() *Process {
		p := StartIn(t, ns, "up", "--data", hub)
		Eventually(t, 20*time.Second, "the hub answers", func() bool { return DecisionsIn(t, ns, hub) != nil })
		return p
	}
	h := hubUp()
	token := strings.TrimSpace(RunIn(t, ns, "alliance", "invite", "--data", hub))
	RunIn(t, ns, "alliance", "join", token, "--data", ing, "--name", "ingest", "--territory", "192.0.2.2")
	StartIn(t, ns, "up", "--data", ing, "--source", logPath, "--from-start", "--enforce", "nft")
	Eventually(t, 20*time.Second, "the member answers", func() bool { return DecisionsIn(t, ns, ing) != nil })
	have := func(ds []Decision, from, to int) bool {
		for i := from; i < to; i++ {
			if !Has(ds, attackAddr(i)) {
				return false
			}
		}
		return true
	}
	appendLines(t, logPath, attackLines(0, 5)...)
	Eventually(t, 20*time.Second, "the alliance decides before the disk fills", func() bool { return have(DecisionsIn(t, ns, hub), 0, 5) })

	fill(t, filepath.Join(small, "filler"))
	appendLines(t, logPath, attackLines(5, 5)...)
	Eventually(t, 20*time.Second, "local detection and enforcement with the hub's disk full", func() bool {
		k := NFTAddrs(t, ns)
		for i := 5; i < 10; i++ {
			if !k[attackAddr(i)] {
				return false
			}
		}
		return have(DecisionsIn(t, ns, ing), 5, 10)
	})
	Eventually(t, 20*time.Second, "JetStream's write error in the hub's log", func() bool {
		return strings.Contains(h.Output(), "no space left on device")
	})
	if have(DecisionsIn(t, ns, hub), 5, 10) {
		t.Log("the alliance decided with the hub's disk full (JetStream buffered the writes)")
	}

	if err := os.Remove(filepath.Join(small, "filler")); err != nil {
		t.Fatal(err)
	}
	h.Stop(t, 20*time.Second)
	restarted := time.Now()
	hubUp()
	Eventually(t, 30*time.Second, "the reports held during the outage decided after the hub restarted", func() bool {
		return have(DecisionsIn(t, ns, hub), 0, 10)
	})
	t.Logf("hub restarted: the held reports decided %.1fs later", time.Since(restarted).Seconds())
	entries, ok := LedgerIn(t, ns, hub)
	if !ok {
		t.Error("ledger verify: not ok")
	}
	for _, e := range entries {
		if !e.Accepted {
			t.Errorf("ledger entry %d (%s by %s) rejected: %s", e.Seq, e.Kind, e.Author, e.Reason)
		}
	}
	if r := ReportsByValue(entries); len(r) != 10 {
		t.Errorf("%d addresses reported, want 10: %v", len(r), r)
	}
}
