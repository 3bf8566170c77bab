package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/member"
)

// TestAllianceExpelRotateCLI drives expel and rotate-key as an operator
// would: help with examples, the errors that say what to do, a rotation
// and an expulsion that `alliance members` then shows.
func TestAllianceExpelRotateCLI(t *testing.T) {
	root := t.TempDir()
	d1, d2 := filepath.Join(root, "m1"), filepath.Join(root, "m2")
	for _, cmd := range []string{"expel", "rotate-key"} {
		out, err := runCLI(t, "", "alliance", cmd, "--help")
		if err != nil || !strings.Contains(out, "Examples:") || !strings.Contains(out, "phalanx alliance "+cmd) {
			t.Errorf("alliance %s --help: %v\n%s", cmd, err, out)
		}
	}
	if out, err := runCLI(t, "", "alliance", "init", "--name", "cli-admin", "--data", d1, "--nats-listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "alliance", "rotate-key", "--data", d1); err == nil || !strings.Contains(err.Error(), "phalanx up") {
		t.Errorf("rotate-key with no member running: %v, want it to say to start phalanx up", err)
	}
	_, c1 := runTestMember(t, d1)
	tok, err := runCLI(t, "", "alliance", "invite", "--data", d1)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", "alliance", "join", strings.TrimSpace(tok), "--data", d2, "--name", "m2"); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	_, c2 := runTestMember(t, d2)
	h1, err := c1.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c2.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "", "alliance", "rotate-key", "--data", d2, "-o", "json")
	if err != nil {
		t.Fatalf("rotate-key: %v\n%s", err, out)
	}
	var rot member.KeyRotated
	if err := json.Unmarshal([]byte(out), &rot); err != nil || rot.Member != h2.Member || len(rot.PublicKey) != 32 || rot.Seq == 0 {
		t.Fatalf("rotate-key -o json: %v %+v\n%s", err, rot, out)
	}

	if _, err := runCLI(t, "", "alliance", "expel", string(h1.Member), "--data", d2, "--reason", "test"); err == nil || !strings.Contains(err.Error(), "only a council member") {
		t.Errorf("expel from a member not on the council: %v", err)
	}
	if _, err := runCLI(t, "", "alliance", "expel", string(h2.Member), "--data", d1); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("expel without --reason: %v", err)
	}
	out, err = runCLI(t, "", "alliance", "expel", string(h2.Member), "--data", d1, "--reason", "key leaked")
	if err != nil || !strings.Contains(out, "Expelled "+string(h2.Member)) {
		t.Fatalf("expel: %v\n%s", err, out)
	}
	end := time.Now().Add(20 * time.Second)
	for {
		out, err := runCLI(t, "", "alliance", "members", "--data", d1, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			ID       string `json:"id"`
			Expelled bool   `json:"expelled"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("members -o json: %v\n%s", err, out)
		}
		expelled := false
		for _, r := range rows {
			expelled = expelled || (r.ID == string(h2.Member) && r.Expelled)
		}
		if expelled {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("members never shows %s expelled:\n%s", h2.Member, out)
		}
		time.Sleep(20 * time.Millisecond) // polling the member's fold through its API, with a deadline
	}
}
