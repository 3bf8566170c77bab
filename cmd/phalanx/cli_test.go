package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

const bruteForce = `Jun  2 10:00:00 web1 sshd[100]: Failed password for root from 198.51.100.7 port 4000 ssh2
Jun  2 10:00:02 web1 sshd[101]: Failed password for root from 198.51.100.7 port 4001 ssh2
Jun  2 10:00:04 web1 sshd[102]: Invalid user admin from 198.51.100.7 port 4002
Jun  2 10:00:06 web1 sshd[103]: Failed password for invalid user admin from 198.51.100.7 port 4003 ssh2
Jun  2 10:00:08 web1 sshd[104]: Failed password for root from 198.51.100.7 port 4004 ssh2
Jun  2 10:00:10 web1 sshd[105]: Failed password for root from 198.51.100.7 port 4005 ssh2
Jun  2 10:00:12 web1 sshd[106]: Failed password for root from 198.51.100.7 port 4006 ssh2
Jun  2 10:01:00 web1 sshd[107]: Accepted publickey for alice from 192.0.2.10 port 5000 ssh2: ED25519 SHA256:x
`

func TestReplayJSON(t *testing.T) {
	out, err := runCLI(t, bruteForce, "replay", "-o", "json", "-")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var d map[string]any
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		n++
		for _, k := range []string{"value", "scope", "type", "scenario", "duration", "first_seen", "last_seen", "events", "origin"} {
			if _, ok := d[k]; !ok {
				t.Errorf("decision lacks %q: %s", k, sc.Text())
			}
		}
		if d["value"] != "198.51.100.7" || d["scope"] != "ip" || d["origin"] != "local" {
			t.Errorf("unexpected decision %s", sc.Text())
		}
		if _, err := time.ParseDuration(d["duration"].(string)); err != nil {
			t.Errorf("duration %v is not a Go duration", d["duration"])
		}
	}
	if n == 0 {
		t.Fatal("no decision for an obvious brute force")
	}
}

func TestParseJSONOneObjectPerLine(t *testing.T) {
	hostile := bruteForce + "\x00\xff garbage \x1b[31m\n" + strings.Repeat("x", 2<<20) + "\n\n"
	path := filepath.Join(t.TempDir(), "in.log")
	if err := os.WriteFile(path, []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "parse", "-o", "json", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if want := strings.Count(hostile, "\n"); len(lines) != want {
		t.Fatalf("%d JSON objects for %d input lines", len(lines), want)
	}
	for i, l := range lines {
		var p parsedLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if p.Line != i+1 {
			t.Fatalf("object %d has line %d", i+1, p.Line)
		}
	}
	var first, last parsedLine
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[7]), &last)
	if !first.Match || first.Source != "198.51.100.7" || first.Service != "sshd" || first.Event != "auth_failed" || first.User != "root" {
		t.Errorf("line 1 = %+v", first)
	}
	if last.Match || last.Event != "auth_success" {
		t.Errorf("line 8 = %+v", last)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--type", "iis", "-"}, "use one of"},
		{[]string{"replay", "-o", "yaml", "-"}, "use json or table"},
		{[]string{"replay", "/nonexistent/auth.log"}, "no such file"},
		{[]string{"parse", "--sshd-mode", "paranoid", "-"}, "aggressive"},
	} {
		_, err := runCLI(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestRulesTest(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rulesPath, []byte(`rules:
  - name: gitea-login
    kind: auth_failed
    contains: ["Failed authentication attempt"]
    regex: 'Failed authentication attempt for (?P<user>\S+) from (?P<source>\S+):'
scenarios:
  - name: gitea-bf
    type: leaky
    filter: {services: [gitea-login], kinds: [auth_failed]}
    capacity: 2
    leak: 1m
    decision: {type: ban, duration: 4h}
`), 0o644)
	sample := filepath.Join(dir, "gitea.log")
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "2025/06/02 10:00:0%d ...routers/web/auth/auth.go:170:SignInPost() [I] Failed authentication attempt for bob from 192.0.2.50:4%d:\n", i, i)
	}
	os.WriteFile(sample, []byte(b.String()), 0o644)
	out, err := runCLI(t, "", "rules", "test", rulesPath, "--sample", sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 rules, 1 scenarios", "gitea-login", "192.0.2.50", "gitea-bf"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: x\n    regex: 'no source here'\n"), 0o644)
	if _, err := runCLI(t, "", "rules", "test", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml:") {
		t.Errorf("a rule without a source capture must fail with file:line, got %v", err)
	}
}

func TestParseEnforce(t *testing.T) {
	e, err := parseEnforce([]string{"nft", "http"}) // --enforce nft,http, split by the flag
	if err != nil || !e.nft || !e.http {
		t.Errorf("nft,http: %+v, %v", e, err)
	}
	if _, err := parseEnforce([]string{"iptables"}); err == nil || !strings.Contains(err.Error(), "nft") {
		t.Errorf("iptables: %v", err)
	}
	if _, err := runCLI(t, "", "up", "--enforce", "http", "--source", "-"); err == nil || !strings.Contains(err.Error(), "alliance member") {
		t.Errorf("--enforce http without a member: %v", err)
	}
}
