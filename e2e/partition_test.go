package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

// partitionFor is how long the member stays cut off: 20 s by default (CI),
// PHALANX_PARTITION=1m for the full minute.
func partitionFor(t *testing.T) time.Duration {
	s := os.Getenv("PHALANX_PARTITION")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		t.Fatalf("PHALANX_PARTITION=%q: want a Go duration of a second or more, such as 1m", s)
	}
	return d
}

// decisionSet is a member's decision values, sorted, "" entries never.
func decisionSet(ds []Decision) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Value)
	}
	slices.Sort(out)
	return out
}

// TestPartition: three `phalanx up` processes, the founder (embedded hub)
// and member 2 in one network namespace, member 3 in another joined to it
// by a veth pair and enforcing with nftables. Member 3's link goes down
// for PHALANX_PARTITION while both sides are attacked: member 3 detects
// and enforces its own attack in its kernel at once, the others decide
// theirs without it. When the link returns, member 3's report reaches the
// alliance, it catches up with what it missed, and the three decision
// sets are the same.
//
//	PHALANX_PARTITION=1m go test -run TestPartition -v ./e2e
func TestPartition(t *testing.T) {
	needNetns(t)
	Binary(t) // built before any command's timeout starts: a build on a loaded machine takes its time
	cut := partitionFor(t)
	hubNS, cutNS := netnstest.New(t, "phx-part-hub-"), netnstest.New(t, "phx-part-cut-")
	veth := "phx" + randHex(4)
	netnstest.Run(t, "ip", "link", "add", veth+"a", "netns", hubNS, "type", "veth", "peer", "name", veth+"b", "netns", cutNS)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	net3 := fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[1]&0xfc)
	hubIP, cutIP := net3+"1", net3+"2"
	netnstest.Run(t, "ip", "-n", hubNS, "addr", "add", hubIP+"/30", "dev", veth+"a")
	netnstest.Run(t, "ip", "-n", cutNS, "addr", "add", cutIP+"/30", "dev", veth+"b")
	netnstest.Run(t, "ip", "-n", hubNS, "link", "set", veth+"a", "up")
	netnstest.Run(t, "ip", "-n", cutNS, "link", "set", veth+"b", "up")

	root := t.TempDir()
	type member struct {
		ns, data, log string
	}
	ms := []member{{ns: hubNS}, {ns: hubNS}, {ns: cutNS}}
	for i := range ms {
		ms[i].data = filepath.Join(root, fmt.Sprintf("m%d", i+1))
		ms[i].log = filepath.Join(root, fmt.Sprintf("auth%d.log", i+1))
		appendLines(t, ms[i].log)
	}
	up := func(i int, extra ...string) {
		args := append([]string{"up", "--data", ms[i].data, "--source", ms[i].log, "--log-level", "debug"}, extra...)
		StartIn(t, ms[i].ns, args...)
		Eventually(t, 30*time.Second, fmt.Sprintf("member %d answers", i+1), func() bool { return DecisionsIn(t, ms[i].ns, ms[i].data) != nil })
	}
	RunIn(t, hubNS, "alliance", "init", "--name", "e2e-partition", "--data", ms[0].data, "--nats-listen", hubIP+":4222", "--territory", "192.0.2.1")
	up(0)
	for i := 1; i < 3; i++ {
		token := strings.TrimSpace(RunIn(t, hubNS, "alliance", "invite", "--data", ms[0].data))
		RunIn(t, ms[i].ns, "alliance", "join", token, "--data", ms[i].data, "--name", fmt.Sprintf("m%d", i+1), "--territory", fmt.Sprintf("192.0.2.%d", i+1))
	}
	up(1)
	up(2, "--enforce", "nft")
	sets := func() [][]string {
		out := make([][]string, len(ms))
		for i, m := range ms {
			out[i] = decisionSet(DecisionsIn(t, m.ns, m.data))
		}
		return out
	}
	holds := func(i int, vs ...string) bool {
		ds := DecisionsIn(t, ms[i].ns, ms[i].data)
		for _, v := range vs {
			if !Has(ds, v) {
				return false
			}
		}
		return true
	}

	// Before: an attack at the founder reaches member 3's kernel.
	const before, during3, during1 = "203.0.113.81", "203.0.113.82", "203.0.113.83"
	appendLines(t, ms[0].log, sshFailures(before, 8)...)
	Eventually(t, 20*time.Second, "member 3 enforces the founder's decision", func() bool { return NFTAddrs(t, cutNS)[before] })

	// Cut member 3 off.
	netnstest.Run(t, "ip", "-n", cutNS, "link", "set", veth+"b", "down")
	down := time.Now()
	appendLines(t, ms[2].log, sshFailures(during3, 8)...)
	appendLines(t, ms[0].log, sshFailures(during1, 8)...)
	Eventually(t, 15*time.Second, "member 3 enforces its own detection while cut off", func() bool { return NFTAddrs(t, cutNS)[during3] })
	local := time.Since(down)
	Eventually(t, 15*time.Second, "the founder's side decides without member 3", func() bool { return holds(0, during1) && holds(1, during1) })
	for i := range 2 {
		if holds(i, during3) {
			t.Fatalf("member %d has member 3's decision while member 3 is cut off: the link is not down", i+1)
		}
	}
	if holds(2, during1) {
		t.Fatal("member 3 has the founder's decision while cut off: the link is not down")
	}
	if ds := DecisionsIn(t, cutNS, ms[2].data); !Has(ds, during3) {
		t.Fatal("member 3 lost its own decision")
	} else {
		for _, d := range ds {
			if d.Value == during3 && d.Origin != "local" {
				t.Errorf("member 3's own decision while cut off has origin %q, want local", d.Origin)
			}
		}
	}
	// Member 3 says it is cut off (its NATS client pings every 5 s).
	connected := func() bool {
		var st struct {
			Connected bool `json:"connected"`
		}
		out := RunIn(t, cutNS, "status", "--data", ms[2].data, "-o", "json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, out)
		}
		return st.Connected
	}
	if cut >= 20*time.Second {
		Eventually(t, cut-time.Since(down), "member 3's status says it is disconnected", func() bool { return !connected() })
		t.Logf("member 3's status said disconnected %v after the cut", time.Since(down).Round(time.Millisecond))
	}
	if wait := cut - time.Since(down); wait > 0 {
		// The partition is the condition under test: nothing to await.
		time.Sleep(wait)
	}

	netnstest.Run(t, "ip", "-n", cutNS, "link", "set", veth+"b", "up")
	back := time.Now()
	all := []string{before, during1, during3}
	var got [][]string
	Eventually(t, 3*time.Minute, "every member holds every decision and the same set", func() bool {
		got = sets()
		for i := range ms {
			if !holds(i, all...) || !slices.Equal(got[i], got[0]) {
				return false
			}
		}
		return NFTAddrs(t, cutNS)[during1]
	})
	converged := time.Since(back)
	// Member 3's report made an alliance decision at the others.
	for i := range 2 {
		for _, d := range DecisionsIn(t, ms[i].ns, ms[i].data) {
			if d.Value == during3 && (d.Origin != "alliance" || len(d.Reporters) == 0) {
				t.Errorf("member %d: member 3's decision is %+v, want an alliance decision with its reporter", i+1, d)
			}
		}
	}
	entries, ok := LedgerIn(t, hubNS, ms[0].data)
	if !ok {
		t.Error("the ledger does not verify after the partition")
	}
	refused := 0
	for _, e := range entries {
		if !e.Accepted {
			refused++
			t.Errorf("ledger entry %d (%s by %s) refused: %s", e.Seq, e.Kind, e.Author, e.Reason)
		}
	}
	t.Logf("partition of %v: member 3 enforced its own detection in its kernel %v after the cut; after the link came back every member held the same %d decisions within %v; ledger %d entries, %d refused",
		cut, local.Round(time.Millisecond), len(got[0]), converged.Round(time.Millisecond), len(entries), refused)
}
