package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx/config"
)

func TestInit(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"var/log/secure", "var/log/nginx/access.log", "var/log/maillog"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "etc", "phalanx.yaml")
	msg, err := runCLI(t, "", "init", "--root", root, "--out", out)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, msg)
	}
	if !strings.Contains(msg, "found /var/log/nginx/access.log: following it with the nginx parser") ||
		!strings.Contains(msg, "found /var/log/secure") {
		t.Errorf("init does not say why:\n%s", msg)
	}
	c, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 3 || c.Files[0].Paths[0] != "/var/log/secure" || c.Files[0].Hint != "sshd" || len(c.Journald) != 0 {
		t.Errorf("config: %+v", c)
	}
	if msg, err := runCLI(t, "", "init", "--root", root, "--out", out); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("init over an existing file: %v\n%s", err, msg)
	}
	if msg, err := runCLI(t, "", "init", "--root", root, "--out", out, "--force"); err != nil {
		t.Fatalf("init --force: %v\n%s", err, msg)
	}
}

func TestInitJournald(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run/systemd/journal/socket"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	choices := inspectMachine(root, true)
	c, err := config.Parse(renderInit(choices), "init")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Journald) != 1 || c.Journald[0].Hint != "sshd" || len(c.Files) != 0 {
		t.Errorf("journald machine: %+v", c)
	}
	if ch := inspectMachine(root, false); len(ch) != 1 || !strings.Contains(ch[0].why, "by hand") {
		t.Errorf("no journalctl: %+v", ch)
	}
}
