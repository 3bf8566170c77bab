// Package netnstest gives tests throwaway Linux network namespaces: made
// with `ip netns add`, deleted when the test ends, entered only by a
// goroutine on a locked OS thread that dies with it. Tests that program
// nftables or send traffic do it inside them, never in the host's
// namespace or firewall.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Need skips the test, saying why, unless it runs as root with the given
// tools (e.g. "ip", "nft") on the PATH.
func Need(tb testing.TB, what string, tools ...string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("%s needs root: it creates network namespaces", what)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s needs %s: %v", what, tool, err)
		}
	}
}

// Run runs a command to completion and returns its combined output,
// failing the test if it fails.
func Run(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// New creates a namespace named prefix plus a random suffix, with its
// loopback up, deleted when the test ends.
func New(tb testing.TB, prefix string) string {
	tb.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	Run(tb, "ip", "netns", "add", name)
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(tb, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// Enter runs f on a thread that enters ns and exits with its goroutine,
// so that no other goroutine ever runs in ns by accident.
func Enter(tb testing.TB, ns string, f func()) {
	tb.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatal(err)
	}
}
