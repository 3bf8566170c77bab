package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LedgerEntry is the part of `phalanx ledger tail -o json` the fault tests
// read.
type LedgerEntry struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Author   string `json:"author"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason"`
	Summary  string `json:"summary"`
}

// LedgerIn reads the whole ledger through `phalanx ledger verify` (how
// many entries, and whether it is sound) and `ledger tail --from 1` (the
// entries), run inside namespace ns against the member in data.
func LedgerIn(t testing.TB, ns, data string) ([]LedgerEntry, bool) {
	t.Helper()
	var rep struct {
		Entries uint64 `json:"entries"`
		OK      bool   `json:"ok"`
	}
	if err := json.Unmarshal([]byte(RunIn(t, ns, "ledger", "verify", "--data", data, "-o", "json")), &rep); err != nil {
		t.Fatalf("ledger verify -o json: %v", err)
	}
	p := StartIn(t, ns, "ledger", "tail", "--data", data, "--from", "1", "-o", "json")
	defer p.Kill()
	var out []LedgerEntry
	Eventually(t, 30*time.Second, fmt.Sprintf("ledger tail prints %d entries", rep.Entries), func() bool {
		out = out[:0]
		sc := bufio.NewScanner(strings.NewReader(p.Output()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e LedgerEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Seq > 0 {
				out = append(out, e)
			}
		}
		return uint64(len(out)) >= rep.Entries
	})
	return out[:rep.Entries], rep.OK
}

// ReportsByValue counts accepted reports per value, alone (KindReport)
// or in a batch (KindReports), as their summaries name it
// ("198.18.0.1/32 ban ssh-refused-conn for ...", "2 reports: 198.18.0.1/32
// ban ...; 198.18.0.2/32 ban ...").
func ReportsByValue(es []LedgerEntry) map[string]int {
	out := map[string]int{}
	count := func(summary string) {
		if f := strings.Fields(summary); len(f) > 0 {
			out[strings.TrimSuffix(f[0], "/32")]++
		}
	}
	for _, e := range es {
		switch {
		case !e.Accepted:
		case e.Kind == "report":
			count(e.Summary)
		case e.Kind == "reports":
			_, list, _ := strings.Cut(e.Summary, ": ")
			for _, one := range strings.Split(list, "; ") {
				count(one)
			}
		}
	}
	return out
}

// PeakRSS is the process's peak resident set (VmHWM) in bytes, read from
// /proc while it runs; 0 if it cannot be read.
func (p *Process) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

var ipv4Re = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// NFTAddrs lists the IPv4 addresses in phalanx's addr-v4 set inside ns.
func NFTAddrs(t testing.TB, ns string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "phalanx", "addr-v4").CombinedOutput()
	if err != nil {
		return got // no table yet
	}
	_, elems, _ := strings.Cut(string(out), "elements =")
	for _, a := range ipv4Re.FindAllString(elems, -1) {
		got[a] = true
	}
	return got
}

// SavedOffset is the offset the member in data saved for its only file
// source (-1 when there is none yet).
func SavedOffset(t testing.TB, data string) int64 {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(data, "state", "files-*", "file-offsets.json"))
	if len(m) != 1 {
		return -1
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		return -1
	}
	var sf struct {
		Files []struct {
			Offset int64 `json:"offset"`
		} `json:"files"`
	}
	if json.Unmarshal(b, &sf) != nil || len(sf.Files) != 1 {
		return -1
	}
	return sf.Files[0].Offset
}

// Stop ends the process with SIGTERM, as an operator would, and waits for
// it to exit (SIGKILL after timeout).
func (p *Process) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		p.done <- nil
	case <-time.After(timeout):
		t.Errorf("no exit %v after SIGTERM", timeout)
		p.Kill()
	}
}
