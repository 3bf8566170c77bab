package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

func needNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: real processes in network namespaces")
	}
	netnstest.Need(t, "enforcement end-to-end test", "ip", "nft")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestEnforcementInNetns: a client namespace reaches a TCP service in a
// server namespace where alliance member 1 runs `up --enforce nft`; its
// connections are dropped by decisions from another member and from its
// own detection, restored when they are lifted or expire, still dropped
// after member 1 is killed with SIGKILL, restored when member 1 restarts
// after a lift it missed; `phalanx down` removes only phalanx's table.
func TestEnforcementInNetns(t *testing.T) {
	needNetns(t)
	start := time.Now()
	server, client := netnstest.New(t, "phx-e2e-srv-"), netnstest.New(t, "phx-e2e-cli-")
	veth := "phx" + randHex(4)
	netnstest.Run(t, "ip", "link", "add", veth+"a", "netns", server, "type", "veth", "peer", "name", veth+"b", "netns", client)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	net3 := fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[1]&0xfc)
	serverIP, clientIP := net3+"1", net3+"2"
	netnstest.Run(t, "ip", "-n", server, "addr", "add", serverIP+"/30", "dev", veth+"a")
	netnstest.Run(t, "ip", "-n", client, "addr", "add", clientIP+"/30", "dev", veth+"b")
	netnstest.Run(t, "ip", "-n", server, "link", "set", veth+"a", "up")
	netnstest.Run(t, "ip", "-n", client, "link", "set", veth+"b", "up")
	// Another table, made before phalanx: `down` must leave it alone.
	netnstest.Run(t, "ip", "netns", "exec", server, "nft", "add", "table", "inet", "other")

	var ln net.Listener
	netnstest.Enter(t, server, func() {
		var err error
		if ln, err = net.Listen("tcp", serverIP+":0"); err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		var err error
		netnstest.Enter(t, client, func() {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond); err == nil {
				c.Close()
			}
		})
		return err
	}
	// Enforcement is asynchronous (ledger → member → kernel), and the veth
	// link comes up in its own time: poll the real connection.
	connects := func(what string) {
		t.Helper()
		Eventually(t, 15*time.Second, "client connects "+what, func() bool { return dial() == nil })
		t.Logf("%5.1fs client connects %s", time.Since(start).Seconds(), what)
	}
	blocked := func(what string) {
		t.Helper()
		Eventually(t, 15*time.Second, "client blocked "+what, func() bool { return dial() != nil })
		t.Logf("%5.1fs client blocked %s", time.Since(start).Seconds(), what)
	}
	connects("before phalanx runs")

	// Member 2 founds the alliance and keeps its embedded hub, so that it
	// can still publish while member 1 is down. Member 1 joins and
	// enforces. Both run inside the server namespace: loopback is its own.
	root := t.TempDir()
	m1, m2 := filepath.Join(root, "m1"), filepath.Join(root, "m2")
	log1 := filepath.Join(root, "auth1.log")
	appendLines(t, log1)
	RunIn(t, server, "alliance", "init", "--name", "e2e-enforce", "--data", m2, "--nats-listen", "127.0.0.1:4222", "--territory", "192.0.2.2")
	StartIn(t, server, "up", "--data", m2, "--log-level", "debug")
	Eventually(t, 20*time.Second, "member 2 answers", func() bool { return DecisionsIn(t, server, m2) != nil })
	token := strings.TrimSpace(RunIn(t, server, "alliance", "invite", "--data", m2))
	RunIn(t, server, "alliance", "join", token, "--data", m1, "--name", "m1", "--territory", serverIP)
	up1 := func() *Process {
		p := StartIn(t, server, "up", "--data", m1, "--enforce", "nft", "--source", log1, "--log-level", "debug")
		Eventually(t, 20*time.Second, "member 1 answers", func() bool { return DecisionsIn(t, server, m1) != nil })
		return p
	}
	p1 := up1()
	connects("with member 1 enforcing nothing yet")

	add := func(value, dur string) {
		RunIn(t, server, "decisions", "add", "--data", m2, "--value", value, "--duration", dur, "--reason", "e2e enforcement")
	}
	lift := func(value string) {
		RunIn(t, server, "decisions", "delete", "--data", m2, "--value", value)
	}

	// 1. A decision from another member is enforced by member 1; lifted, it is not.
	add(clientIP, "1h")
	blocked("after member 2's manual decision")
	lift(clientIP)
	connects("after the lift")

	// 2. Member 1's own detection: failed ssh logins from the client.
	appendLines(t, log1, sshFailures(clientIP, 8)...)
	blocked("after member 1 detected a brute force")
	lift(clientIP)
	connects("after lifting the detection")

	// 3. Killed with SIGKILL, member 1 leaves its table and elements in
	// the kernel: the ban holds.
	add(clientIP, "1h")
	blocked("before the kill")
	p1.Kill()
	for range 5 {
		if dial() == nil {
			t.Fatal("client connects once member 1 is killed: the kernel dropped the ban")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := netnstest.Run(t, "ip", "netns", "exec", server, "nft", "list", "table", "inet", "phalanx"); !strings.Contains(out, clientIP) {
		t.Fatalf("after kill -9 the table lacks %s:\n%s", clientIP, out)
	}
	t.Logf("%5.1fs client still blocked after kill -9", time.Since(start).Seconds())

	// 4. Lifted while member 1 is down: restarted, it reconciles the kernel.
	lift(clientIP)
	Eventually(t, 15*time.Second, "the lift at member 2", func() bool {
		ds := DecisionsIn(t, server, m2)
		return ds != nil && !Has(ds, clientIP)
	})
	if dial() == nil {
		t.Fatal("client connects before member 1 restarts: nothing should have changed the kernel")
	}
	p1 = up1()
	connects("after member 1 restarted and reconciled")

	// 5. A short decision expires by itself.
	add(clientIP, "5s")
	blocked("by a 5 s decision")
	connects("after the 5 s decision expired")

	// 6. `down` removes phalanx's table and nothing else.
	p1.Kill()
	out := RunIn(t, server, "down")
	if !strings.Contains(out, "inet phalanx") {
		t.Errorf("down said: %q", out)
	}
	tables := netnstest.Run(t, "ip", "netns", "exec", server, "nft", "list", "tables")
	if strings.Contains(tables, "inet phalanx") || !strings.Contains(tables, "inet other") {
		t.Errorf("after down, tables are:\n%s", tables)
	}
	t.Logf("%5.1fs done", time.Since(start).Seconds())
}
