package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/member"
)

// TestUpMemberWithConfig runs an alliance member with a config file, as
// `phalanx up --data DIR --config FILE --source -` does: the config's
// file source, its custom rule and its scenario (what `phalanx import
// fail2ban` writes) and standard input all feed the member's detection.
// Before, --config with --data ran phalanx alone and ignored the member.
func TestUpMemberWithConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "member")
	if _, err := member.Init(data, "config-test", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	appLog := filepath.Join(dir, "app.log")
	var lines string
	for i := range 3 {
		lines += fmt.Sprintf("%s app[7]: login failed for user%d from 198.51.100.33\n", time.Now().Format(time.RFC3339), i)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("app.log", lines)
	write("rules.yaml", `rules:
  - name: app-login
    contains: ["login failed"]
    regex: 'login failed for (?P<user>\S+) from (?P<source>\S+)'
    kind: auth_failed
scenarios:
  - name: app-bf
    type: leaky
    filter: {services: [app-login], kinds: [auth_failed]}
    capacity: 2
    window: 1m
    decision: {type: ban, duration: 1h}
`)
	cfg := write("phalanx.yaml", fmt.Sprintf("rules: rules.yaml\nfiles:\n  - paths: [%s]\n    from_start: true\n", appLog))

	// Standard input: an sshd brute force.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for i := range 8 {
			fmt.Fprintf(pw, "%s web1 sshd[%d]: Failed password for root from 203.0.113.44 port %d ssh2\n",
				time.Now().Format(time.Stamp), 1000+i, 40000+i)
		}
	}()
	done := make(chan error, 1)
	f := &upFlags{data: data, config: cfg, sources: []string{"-"}, api: "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- runMember(ctx, f, pr, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("member: %v", err)
		}
	}()

	want := map[string]string{"198.51.100.33": "app-bf", "203.0.113.44": "ssh-bf"}
	end := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("member stopped: %v", err)
		default:
		}
		got := map[string]string{}
		if c, err := member.Client(data); err == nil {
			if ds, err := c.Decisions(t.Context()); err == nil {
				for _, d := range ds {
					got[d.Value] = d.Scenario
				}
			}
		}
		missing := false
		for v, s := range want {
			if got[v] != s {
				missing = true
			}
		}
		if !missing {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("decisions %v, want %v (the config's rule and scenario, and stdin, in member mode)", got, want)
		}
		time.Sleep(50 * time.Millisecond) // the member decides in its own goroutines: poll with a deadline
	}
}
