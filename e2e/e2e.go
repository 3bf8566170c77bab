// Package e2e holds end-to-end tests that run the real phalanx binary as
// separate processes on loopback: an alliance of members, each with its
// own data directory, log files and embedded or shared NATS, driven only
// through the command line a user has. It has no non-test code but this
// doc and the helpers the tests share.
package e2e

import (
	"bytes"
	"context"
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
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/phalanx once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "phalanx-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "phalanx")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/phalanx")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Run runs a phalanx command to completion and returns its standard output.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	return RunIn(t, "", args...)
}

// RunIn is Run inside network namespace ns ("" for the test's own).
func RunIn(t testing.TB, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := command(ctx, t, ns, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("phalanx %s (netns %q): %v\n%s", strings.Join(args, " "), ns, err, stderr.String())
	}
	return stdout.String()
}

// command is the phalanx binary with args, run through `ip netns exec ns`
// when ns is not "". `ip netns exec` execs the command in its own place,
// so a SIGKILL reaches phalanx itself.
func command(ctx context.Context, t testing.TB, ns string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.CommandContext(ctx, Binary(t), args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, Binary(t)}, args...)...)
}

// Process is a long-running phalanx command (`up`).
type Process struct {
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
	mu   *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start starts a phalanx command and stops it (SIGKILL) when the test ends.
func Start(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartIn(t, "", args...)
}

// StartIn is Start inside network namespace ns ("" for the test's own).
func StartIn(t testing.TB, ns string, args ...string) *Process {
	t.Helper()
	p := &Process{done: make(chan error, 1), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd = command(context.Background(), t, ns, args...)
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

// Kill stops the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	p.done <- nil // later Kill calls return at once
}

// Output is what the process wrote so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// FreePort returns a loopback address with a port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Eventually polls cond until it holds or the deadline passes: the events
// it waits for happen in other processes, which a test cannot be told of.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Decision is the part of `phalanx decisions list -o json` the tests read.
type Decision struct {
	Value     string   `json:"value"`
	Scenario  string   `json:"scenario"`
	Origin    string   `json:"origin"`
	Reporters []string `json:"reporters"`
}

// Decisions lists a running member's decisions, or nil if it does not
// answer yet.
func Decisions(t testing.TB, data string) []Decision {
	t.Helper()
	return DecisionsIn(t, "", data)
}

// DecisionsIn is Decisions for a member inside network namespace ns.
func DecisionsIn(t testing.TB, ns, data string) []Decision {
	t.Helper()
	cmd := command(context.Background(), t, ns, "decisions", "list", "--data", data, "-o", "json")
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var ds []Decision
	if err := json.Unmarshal(out, &ds); err != nil {
		t.Fatalf("decisions list -o json: %v\n%s", err, out)
	}
	return ds
}

// Has reports whether ds holds a decision against value.
func Has(ds []Decision, value string) bool {
	for _, d := range ds {
		if d.Value == value {
			return true
		}
	}
	return false
}
