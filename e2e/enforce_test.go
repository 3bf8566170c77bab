package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// The helpers below copy enforce/nft's test approach: throwaway network
// namespaces joined by a veth pair, and goroutines on locked OS threads
// that enter one of them. Nothing here touches the host's namespace or
// firewall: every phalanx process and every nft call runs through
// `ip netns exec`.

func needNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: real processes in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("enforcement end-to-end test needs root: it creates network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("enforcement end-to-end test needs %s: %v", tool, err)
		}
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNetns creates a namespace with its loopback up, deleted when the test
// ends.
func newNetns(t *testing.T, role string) string {
	t.Helper()
	name := "phx-e2e-" + role + "-" + randHex(4)
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// enterNetns runs f on a thread that enters ns and dies with its
// goroutine, so no other goroutine ever runs in ns by accident.
func enterNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// nsRun runs a phalanx command inside ns to completion.
func nsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, Binary(t)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("phalanx %s (in %s): %v\n%s", strings.Join(args, " "), ns, err, stderr.String())
	}
	return stdout.String()
}

// nsStart starts a phalanx command inside ns. `ip netns exec` execs the
// command in its own place, so Kill's SIGKILL reaches phalanx itself.
func nsStart(t *testing.T, ns string, args ...string) *Process {
	t.Helper()
	p := &Process{done: make(chan error, 1), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, Binary(t)}, args...)...)
	p.cmd.Stdout = lockedWriter{p.mu, p.log}
	p.cmd.Stderr = lockedWriter{p.mu, p.log}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("phalanx %s output:\n%s", strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// nsDecisions lists a member's decisions through its local API inside
// ns, or nil if it does not answer yet.
func nsDecisions(t *testing.T, ns, data string) []Decision {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, Binary(t), "decisions", "list", "--data", data, "-o", "json").Output()
	if err != nil {
		return nil
	}
	var ds []Decision
	if err := json.Unmarshal(out, &ds); err != nil {
		t.Fatalf("decisions list -o json: %v\n%s", err, out)
	}
	return ds
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
	server, client := newNetns(t, "srv"), newNetns(t, "cli")
	veth := "phx" + randHex(4)
	sh(t, "ip", "link", "add", veth+"a", "netns", server, "type", "veth", "peer", "name", veth+"b", "netns", client)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	net3 := fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[1]&0xfc)
	serverIP, clientIP := net3+"1", net3+"2"
	sh(t, "ip", "-n", server, "addr", "add", serverIP+"/30", "dev", veth+"a")
	sh(t, "ip", "-n", client, "addr", "add", clientIP+"/30", "dev", veth+"b")
	sh(t, "ip", "-n", server, "link", "set", veth+"a", "up")
	sh(t, "ip", "-n", client, "link", "set", veth+"b", "up")
	// Another table, made before phalanx: `down` must leave it alone.
	sh(t, "ip", "netns", "exec", server, "nft", "add", "table", "inet", "other")

	var ln net.Listener
	enterNetns(t, server, func() {
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
		enterNetns(t, client, func() {
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
	nsRun(t, server, "alliance", "init", "--name", "e2e-enforce", "--data", m2, "--nats-listen", "127.0.0.1:4222", "--territory", "192.0.2.2")
	nsStart(t, server, "up", "--data", m2, "--log-level", "debug")
	Eventually(t, 20*time.Second, "member 2 answers", func() bool { return nsDecisions(t, server, m2) != nil })
	token := strings.TrimSpace(nsRun(t, server, "alliance", "invite", "--data", m2))
	nsRun(t, server, "alliance", "join", token, "--data", m1, "--name", "m1", "--territory", serverIP)
	up1 := func() *Process {
		p := nsStart(t, server, "up", "--data", m1, "--enforce", "nft", "--source", log1, "--log-level", "debug")
		Eventually(t, 20*time.Second, "member 1 answers", func() bool { return nsDecisions(t, server, m1) != nil })
		return p
	}
	p1 := up1()
	connects("with member 1 enforcing nothing yet")

	add := func(value, dur string) {
		nsRun(t, server, "decisions", "add", "--data", m2, "--value", value, "--duration", dur, "--reason", "e2e enforcement")
	}
	lift := func(value string) {
		nsRun(t, server, "decisions", "delete", "--data", m2, "--value", value)
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
	if out := sh(t, "ip", "netns", "exec", server, "nft", "list", "table", "inet", "phalanx"); !strings.Contains(out, clientIP) {
		t.Fatalf("after kill -9 the table lacks %s:\n%s", clientIP, out)
	}
	t.Logf("%5.1fs client still blocked after kill -9", time.Since(start).Seconds())

	// 4. Lifted while member 1 is down: restarted, it reconciles the kernel.
	lift(clientIP)
	Eventually(t, 15*time.Second, "the lift at member 2", func() bool {
		ds := nsDecisions(t, server, m2)
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
	out := nsRun(t, server, "down")
	if !strings.Contains(out, "inet phalanx") {
		t.Errorf("down said: %q", out)
	}
	tables := sh(t, "ip", "netns", "exec", server, "nft", "list", "tables")
	if strings.Contains(tables, "inet phalanx") || !strings.Contains(tables, "inet other") {
		t.Errorf("after down, tables are:\n%s", tables)
	}
	t.Logf("%5.1fs done", time.Since(start).Seconds())
}
