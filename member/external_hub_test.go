package member

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// natsServerBinary is a nats-server binary: the one on the PATH, else one
// built from the module cache (the version go.mod requires) into dir.
func natsServerBinary(t *testing.T, dir string) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(dir, "nats-server")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("no nats-server on the PATH and building one failed: %v\n%s", err, out)
	}
	return bin
}

// natsServer runs an external nats-server with JetStream on port, storing
// in store, until kill or the test's end.
type natsServer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startNATSServer(t *testing.T, bin, store string, port int) *natsServer {
	t.Helper()
	s := &natsServer{cmd: exec.Command(bin, "-js", "-sd", store, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-n", "ext-hub"),
		done: make(chan struct{})}
	logf, err := os.CreateTemp(t.TempDir(), "nats-server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("nats-server's log:\n%s", b)
		}
	})
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.kill)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for end := time.Now().Add(deadline); ; {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(end) {
			t.Fatalf("nats-server does not answer on %s", addr)
		}
		time.Sleep(20 * time.Millisecond) // polling another process, with a deadline
	}
}

// kill stops the server with SIGKILL, as a crash would.
func (s *natsServer) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// TestExternalHubKilled: the alliance's ledger is on an external
// nats-server (JetStream, file store), killed with SIGKILL while both
// members publish, and restarted on the same store: the members reconnect,
// what they published meanwhile is delivered, nothing is lost or doubled.
func TestExternalHubKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs (and may build) an external nats-server")
	}
	ctx := t.Context()
	root := t.TempDir()
	bin := natsServerBinary(t, root)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	store := filepath.Join(root, "js")
	srv := startNATSServer(t, bin, store, port)

	d1, d2 := filepath.Join(root, "m1"), filepath.Join(root, "m2")
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if _, err := InitCluster(d1, "external hub", natsbus.Config{URLs: []string{url}}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	r1 := start(t, d1)
	tok, err := Invite(d1, ledger.RoleMember, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(tok, d2, "m2", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, d2)
	ms := []*Member{r1.m, r2.m}
	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Client(d2)
	if err != nil {
		t.Fatal(err)
	}
	before := netip.MustParsePrefix("203.0.113.101/32")
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: before.Addr().String(), Duration: "1h", Reason: "before"}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, ms, []netip.Prefix{before}, deadline)

	srv.kill()
	killed := time.Now()
	during := []netip.Prefix{netip.MustParsePrefix("203.0.113.102/32"), netip.MustParsePrefix("203.0.113.103/32")}
	for i, c := range []*APIClient{c1, c2} {
		// The API stops waiting after a few seconds; the publisher does not.
		if _, err := c.AddDecision(ctx, DecisionRequest{Value: during[i].Addr().String(), Duration: "1h", Reason: "during"}); err == nil {
			t.Logf("member %d's decision acknowledged with the server down?", i+1)
		}
	}
	startNATSServer(t, bin, store, port)
	up := time.Now()
	all := append([]netip.Prefix{before}, during...)
	back := waitHeld(t, ms, all, 2*deadline)
	waitApplied(t, ms, lastSeq(t, ms[0]), deadline)
	sameFold(t, ms, time.Now())
	rep, err := VerifyLedger(ctx, d1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Accepted != rep.Entries {
		t.Errorf("ledger after the external hub was killed: %+v", rep)
	}
	t.Logf("external nats-server killed for %v: both decisions published meanwhile everywhere %v after it restarted; ledger %d entries, all accepted",
		up.Sub(killed).Round(time.Millisecond), back.Sub(up).Round(time.Millisecond), rep.Entries)
}
