package bouncerapi

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

const firewallBouncer = "/usr/bin/crowdsec-firewall-bouncer"

// syncBuffer collects the bouncer's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRealFirewallBouncer runs Debian's crowdsec-firewall-bouncer against
// this API inside a throwaway network namespace (so the host's firewall is
// never touched) and checks that a ban reaches its nftables set and that a
// lift takes it out again.
func TestRealFirewallBouncer(t *testing.T) {
	if _, err := os.Stat(firewallBouncer); err != nil {
		t.Skipf("%s not installed (apt-get install crowdsec-firewall-bouncer): %v", firewallBouncer, err)
	}
	netnstest.Need(t, "the real firewall bouncer test", "ip", "nft")

	// Names unique to this run: a namespace and a veth pair to the host,
	// with a /30 in 10.x chosen from the pid.
	tag := fmt.Sprintf("%05d", os.Getpid()%100000)
	hostIf, nsIf := "phxh"+tag, "phxn"+tag
	net3 := byte(os.Getpid() % 250)
	hostIP := fmt.Sprintf("10.231.%d.1", net3)
	nsIP := fmt.Sprintf("10.231.%d.2", net3)
	ns := netnstest.New(t, "phxb")
	netnstest.Run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", hostIf).Run() })
	netnstest.Run(t, "ip", "link", "set", nsIf, "netns", ns)
	netnstest.Run(t, "ip", "addr", "add", hostIP+"/30", "dev", hostIf)
	netnstest.Run(t, "ip", "link", "set", hostIf, "up")
	netnstest.Run(t, "ip", "netns", "exec", ns, "ip", "addr", "add", nsIP+"/30", "dev", nsIf)
	netnstest.Run(t, "ip", "netns", "exec", ns, "ip", "link", "set", nsIf, "up")

	ds := decisions.New(phalanx.SystemClock{})
	dir := t.TempDir()
	keys, err := OpenKeys(filepath.Join(dir, "bouncers.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Add("firewall")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", hostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: New(ds, keys, nil).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	cfg := fmt.Sprintf(`mode: nftables
pid_dir: %[1]s
update_frequency: 1s
daemonize: false
log_mode: stdout
log_level: debug
api_url: http://%[2]s/
api_key: %[3]s
insecure_skip_verify: false
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: phalanx-test-blacklist
blacklists_ipv6: phalanx-test-blacklist6
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: phalanx-test
    chain: phalanx-test-chain
  ipv6:
    enabled: true
    set-only: false
    table: phalanx-test6
    chain: phalanx-test6-chain
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
`, dir, ln.Addr(), key)
	cfgPath := filepath.Join(dir, "bouncer.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, firewallBouncer, "-c", cfgPath)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel() // kills the bouncer
		<-exited
	})

	ruleset := func() string {
		b, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
		return string(b)
	}
	// waitFor polls the namespace's ruleset, an event in another process,
	// until cond holds or the deadline passes.
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			rs := ruleset()
			if cond(rs) {
				return
			}
			select {
			case <-exited:
				t.Fatalf("%s: the bouncer exited.\nbouncer output:\n%s", what, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen within 20s.\nruleset:\n%s\nbouncer output:\n%s", what, rs, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	waitFor("the bouncer's table", func(rs string) bool { return strings.Contains(rs, "phalanx-test-blacklist") })
	now := time.Now()
	ban := func(v string) {
		ds.Add(phalanx.Decision{Value: netip.MustParsePrefix(v), Type: phalanx.Ban, Scenario: "ssh-bf",
			Origin: phalanx.OriginLocal, Duration: time.Hour, LastSeen: now, FirstSeen: now, Events: 5})
	}
	ban("192.0.2.77/32")
	ban("2001:db8::77/128")
	start := time.Now()
	waitFor("ban of 192.0.2.77", func(rs string) bool {
		return strings.Contains(rs, "192.0.2.77") && strings.Contains(rs, "2001:db8::77")
	})
	t.Logf("ban enforced by the real bouncer in %v", time.Since(start).Round(10*time.Millisecond))

	ds.Delete(netip.MustParsePrefix("192.0.2.77/32"))
	start = time.Now()
	waitFor("lift of 192.0.2.77", func(rs string) bool {
		return !strings.Contains(rs, "192.0.2.77") && strings.Contains(rs, "2001:db8::77")
	})
	t.Logf("lift enforced in %v", time.Since(start).Round(10*time.Millisecond))
	if b := keys.List(); len(b) != 1 || b[0].LastPull.IsZero() || b[0].LastIP != netip.MustParseAddr(nsIP) {
		t.Errorf("bouncer not recorded as pulling from %s: %+v", nsIP, b)
	}
}
