package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// TestLedgerVerifyCLI checks verify's summary and exit status on a healthy
// ledger and on one with an entry nobody signed.
func TestLedgerVerifyCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "founder")
	initOut, err := runCLI(t, "", "alliance", "init", "--name", "cli", "--data", dir, "--nats-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, initOut)
	}
	if out, err := runCLI(t, "", "ledger", "verify", "--data", dir); err == nil || !strings.Contains(err.Error(), "start phalanx up --data") {
		t.Fatalf("verify with the founder down: %v\n%s", err, out)
	}

	_, c := runTestMember(t, dir)
	h, err := c.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "", "ledger", "verify", "--data", dir, "-o", "table")
	if err != nil || !strings.Contains(out, "OK: every signature") {
		t.Fatalf("verify, healthy: %v\n%s", err, out)
	}

	bus, err := natsbus.Open(t.Context(), natsbus.Config{URLs: []string{"nats://" + hubOf(t, initOut)}}, h.Alliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if _, _, err := bus.Publish(t.Context(), "garbage", []byte("\x1b]0;owned\x07")); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "", "ledger", "verify", "--data", dir, "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "tampered") {
		t.Fatalf("verify, tampered: want an error, got %v\n%s", err, out)
	}
	var rep struct {
		OK       bool                   `json:"ok"`
		Tampered int                    `json:"tampered"`
		List     []member.VerifiedEntry `json:"rejected_entries"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify -o json: %v\n%s", err, out)
	}
	if rep.OK || rep.Tampered != 1 || len(rep.List) != 1 || rep.List[0].Reason != member.ReasonUndecodable {
		t.Fatalf("verify -o json: %s", out)
	}
	out, _ = runCLI(t, "", "ledger", "verify", "--data", dir, "-o", "table")
	if strings.Contains(out, "\x1b") || !strings.Contains(out, "TAMPERED") {
		t.Fatalf("verify table: %q", out)
	}
}

// waitForAPI polls until the member behind dir answers: it runs its own
// listener, which has no other way to say it is up.
// runTestMember runs the member in dir in this process until the test
// ends, and returns it with a client of its API once that answers.
func runTestMember(t *testing.T, dir string) (*member.Member, *member.APIClient) {
	t.Helper()
	m, err := member.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// The member runs in this process but tells nothing of its readiness
	// outside its package: ask its API, as the CLI would.
	return m, waitForAPI(t, dir)
}

func waitForAPI(t *testing.T, dir string) *member.APIClient {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := member.Client(dir); err == nil {
			if _, err := c.Health(t.Context()); err == nil {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("member API not up within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hubOf is the embedded hub's address as init printed it.
func hubOf(t *testing.T, initOut string) string {
	t.Helper()
	_, rest, ok := strings.Cut(initOut, "will listen on ")
	hub, _, ok2 := strings.Cut(rest, ".\n")
	if !ok || !ok2 {
		t.Fatalf("init output names no hub: %q", initOut)
	}
	return hub
}
