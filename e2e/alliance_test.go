package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// member is one alliance member in the test: its data directory and the
// log file its `up` follows.
type node struct {
	data, log string
	proc      *Process
}

func (m *node) up(t *testing.T) {
	m.proc = Start(t, "up", "--data", m.data, "--source", m.log, "--log-level", "debug")
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

func sshFailures(ip string, n int) []string {
	now := time.Now()
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s web1 sshd[%d]: Failed password for root from %s port %d ssh2", now.Format(time.Stamp), 2000+i, ip, 40000+i)
	}
	return out
}

// newAlliance founds an alliance with n members, each running `phalanx up`
// on its own log file, and returns them with the founder first.
func newAlliance(t *testing.T, n int) []*node {
	t.Helper()
	root := t.TempDir()
	hub := FreePort(t)
	ms := make([]*node, n)
	for i := range ms {
		ms[i] = &node{data: filepath.Join(root, fmt.Sprintf("m%d", i+1)), log: filepath.Join(root, fmt.Sprintf("auth%d.log", i+1))}
		appendLines(t, ms[i].log) // exists, empty: followed from its start
	}
	Run(t, "alliance", "init", "--name", "e2e", "--data", ms[0].data, "--nats-listen", hub, "--territory", "192.0.2.1")
	ms[0].up(t)
	for i, m := range ms[1:] {
		token := strings.TrimSpace(Run(t, "alliance", "invite", "--data", ms[0].data))
		Run(t, "alliance", "join", token, "--data", m.data, "--name", fmt.Sprintf("m%d", i+2), "--territory", fmt.Sprintf("192.0.2.%d", i+2))
		m.up(t)
	}
	for _, m := range ms {
		Eventually(t, 20*time.Second, m.data+" answers", func() bool { return Decisions(t, m.data) != nil })
	}
	return ms
}

// TestAllianceSpreadsAndCatchesUp: a brute force in member 1's log becomes
// a decision at members 2 and 3; member 3 killed, restarted after more
// decisions, catches up and ends with the same set.
func TestAllianceSpreadsAndCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: three processes")
	}
	ms := newAlliance(t, 3)
	appendLines(t, ms[0].log, sshFailures("203.0.113.50", 8)...)
	for _, m := range ms {
		Eventually(t, 15*time.Second, "decision against 203.0.113.50 at "+m.data, func() bool { return Has(Decisions(t, m.data), "203.0.113.50") })
	}

	ms[2].proc.Kill()
	appendLines(t, ms[1].log, sshFailures("203.0.113.51", 8)...)
	Eventually(t, 15*time.Second, "decision against 203.0.113.51 at m1", func() bool { return Has(Decisions(t, ms[0].data), "203.0.113.51") })
	ms[2].up(t)
	Eventually(t, 20*time.Second, "m3 catches up", func() bool {
		ds := Decisions(t, ms[2].data)
		return Has(ds, "203.0.113.50") && Has(ds, "203.0.113.51")
	})
}

// TestCollectiveDetection: three members each see two failed logins from
// one address — under every member's own threshold — and the alliance
// decides against it.
func TestCollectiveDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: three processes")
	}
	ms := newAlliance(t, 3)
	for _, m := range ms {
		appendLines(t, m.log, sshFailures("203.0.113.77", 2)...)
	}
	for _, m := range ms {
		Eventually(t, 30*time.Second, "collective decision against 203.0.113.77 at "+m.data, func() bool { return Has(Decisions(t, m.data), "203.0.113.77") })
	}
}
