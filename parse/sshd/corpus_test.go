package sshd

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/internal/corpus"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

type f2bCase = corpus.Fail2banCase

func modes(c *f2bCase) []Mode {
	var ms []Mode
	for _, o := range c.Options {
		name, _ := o["mode"].(string)
		m, err := ParseMode(name)
		if err == nil {
			ms = append(ms, m)
		}
	}
	return ms
}

func loadCases(t *testing.T) map[string]map[int]*f2bCase {
	t.Helper()
	byFile := map[string]map[int]*f2bCase{}
	for _, c := range corpus.Fail2banCases(t, "sshd", "sshd-journal") {
		if byFile[c.File] == nil {
			byFile[c.File] = map[int]*f2bCase{}
		}
		byFile[c.File][c.Lineno] = &c
	}
	return byFile
}

// outcome is what one mode's parser said about one line.
type outcome struct {
	ok bool
	ev phalanx.Event
}

// TestFail2banCorpus replays fail2ban's sshd and sshd-journal sample logs
// through one parser per mode, line by line in file order (so multi-line
// state works), feeding each line only to the modes fail2ban tests it in
// (its test harness skips a line whose constraint excludes the mode, and
// that matters for state), and compares with the annotations.
func TestFail2banCorpus(t *testing.T) {
	cases := loadCases(t)
	type tally struct{ n, agree, strictAgree, hostnames int }
	total := map[Mode]*tally{}
	for _, m := range []Mode{Normal, DDoS, Extra, Aggressive} {
		total[m] = &tally{}
	}
	for _, file := range []string{"sshd", "sshd-journal"} {
		fc := cases[file]
		if len(fc) == 0 {
			t.Fatalf("no cases for %s in fail2ban-cases.jsonl", file)
		}
		data, err := os.ReadFile(corpus.Path(t, "fail2ban-logs", file))
		if err != nil {
			t.Fatalf("corpus: %v", err)
		}
		ctx := &logline.Context{Year: 2005, Loc: time.UTC}
		parsers := map[Mode]*Parser{}
		for m := range total {
			parsers[m] = New(m, ctx)
		}
		results := map[Mode]map[int]outcome{}
		for m := range total {
			results[m] = map[int]outcome{}
		}
		lines := strings.Split(string(data), "\n")
		seen := 0
		for i, line := range lines {
			line = strings.TrimSuffix(line, "\r")
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			c := fc[i+1]
			if c == nil {
				t.Fatalf("%s:%d has no case in fail2ban-cases.jsonl", file, i+1)
			}
			seen++
			for _, m := range modes(c) {
				var ev phalanx.Event
				ok := parsers[m].Parse(line, &ev)
				results[m][i+1] = outcome{ok, ev}
			}
		}
		if seen != len(fc) {
			t.Errorf("%s: %d lines fed, %d cases", file, seen, len(fc))
		}
		for _, m := range []Mode{Normal, DDoS, Extra, Aggressive} {
			var ft tally
			for lineno, r := range results[m] {
				c := fc[lineno]
				got := r.ok && r.ev.Hostile()
				ft.n++
				hostname := false
				var want netip.Addr
				if c.Host == nil && c.Extra.IP4+c.Extra.IP6 != "" {
					h := c.Extra.IP4 + c.Extra.IP6
					c.Host = &h
				}
				if c.Host != nil {
					a, err := netip.ParseAddr(*c.Host)
					if err != nil {
						hostname = true
					} else {
						want = a.Unmap()
					}
				}
				reason := ""
				switch {
				case c.Match && hostname:
					// fail2ban resolves a host name; we never do DNS on a name
					// an attacker chose. Agreement means: the failure is
					// recognised and no address is made up.
					ft.hostnames++
					if !(r.ok && r.ev.Failure() && !r.ev.Source.IsValid()) {
						reason = "host-name line: want a failure kind with no address"
					} else {
						ft.agree++
						if r.ev.SourceName == *c.Host {
							ft.strictAgree++ // the same host, as written
						}
					}
					if reason == "" {
						continue
					}
				case got != c.Match:
					reason = "match differs"
				case got && c.Host != nil && r.ev.Source != want:
					reason = "source differs"
				}
				if reason == "" {
					ft.agree++
					ft.strictAgree++
					continue
				}
				desc := ""
				if c.Desc != nil {
					desc = " (" + *c.Desc + ")"
				}
				host := "-"
				if c.Host != nil {
					host = *c.Host
				}
				t.Logf("DISAGREE %s %s:%d: %s: want match=%v host=%s, got ok=%v kind=%q source=%v method=%q user=%q%s\n\t%s",
					m, file, lineno, reason, c.Match, host, r.ok, r.ev.Kind, r.ev.Source, r.ev.Method, r.ev.User, desc, c.Line)
			}
			if ft.n == 0 {
				continue
			}
			t.Logf("%s %s: %d cases, %d agree (%.1f%%), strictly %d (%.1f%%), %d host-name cases",
				file, m, ft.n, ft.agree, pct(ft.agree, ft.n), ft.strictAgree, pct(ft.strictAgree, ft.n), ft.hostnames)
			tt := total[m]
			tt.n += ft.n
			tt.agree += ft.agree
			tt.strictAgree += ft.strictAgree
			tt.hostnames += ft.hostnames
		}
	}
	for _, m := range []Mode{Normal, DDoS, Extra, Aggressive} {
		tt := total[m]
		t.Logf("TOTAL %s: %d cases, %d agree (%.1f%%); with the same source as written (host names included) %d (%.1f%%); %d host-name cases",
			m, tt.n, tt.agree, pct(tt.agree, tt.n), tt.strictAgree, pct(tt.strictAgree, tt.n), tt.hostnames)
	}
	for _, m := range []Mode{Normal, Aggressive} {
		if tt := total[m]; tt.n == 0 || pct(tt.strictAgree, tt.n) < 97 {
			t.Errorf("%s mode: agreement %.1f%% (%d/%d), want at least 97%%", m, pct(tt.strictAgree, tt.n), tt.strictAgree, tt.n)
		}
	}
}

func pct(a, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(a) / float64(n)
}

// hubLabel is one line label of the CrowdSec hub parser tests (the corpus's
// summary.json).
type hubLabel struct {
	N        int    `json:"n"`
	Line     string `json:"line"`
	Parsed   bool   `json:"parsed"`
	LogType  string `json:"log_type"`
	SourceIP string `json:"source_ip"`
}

// TestCrowdSecHub checks the CrowdSec hub's sshd parser labels in
// aggressive mode (CrowdSec counts preauth closes and negotiation failures
// as fail2ban does only there): failures CrowdSec parses are hostile with
// its source, sshd-logs-fp lines are not hostile, success lines are
// auth_success. One deliberate divergence is allowed and counted: a
// pam_unix authentication failure does not count by itself (as in fail2ban),
// because sshd logs a "Failed password" line for the same attempt and
// counting both would double every password failure.
func TestCrowdSecHub(t *testing.T) {
	data, err := os.ReadFile(corpus.Path(t, "crowdsec-hub-tests", "summary.json"))
	if err != nil {
		t.Skipf("corpus: %v", err)
	}
	var sum map[string]struct {
		LineLabels []hubLabel `json:"line_labels"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	ctx := &logline.Context{Year: 2024, Loc: time.UTC}
	var n, agree, divergent int
	for _, test := range []string{"sshd-logs", "sshd-logs-fp", "sshd-success-logs"} {
		labels := sum[test].LineLabels
		if len(labels) == 0 {
			t.Fatalf("summary.json: no line labels for %s", test)
		}
		p := New(Aggressive, ctx)
		for _, l := range labels {
			var ev phalanx.Event
			ok := p.Parse(l.Line, &ev)
			n++
			var problem string
			switch {
			case test == "sshd-logs-fp" || !l.Parsed:
				if ok && ev.Hostile() {
					problem = "CrowdSec does not parse it, we count it"
				}
			case test == "sshd-success-logs":
				if !ok || ev.Kind != phalanx.KindAuthSuccess || ev.Source.String() != l.SourceIP {
					problem = "want auth_success from " + l.SourceIP
				}
			default:
				want, err := netip.ParseAddr(l.SourceIP)
				if err != nil {
					t.Fatalf("%s line %d: source_ip %q: %v", test, l.N, l.SourceIP, err)
				}
				if !ok || !ev.Hostile() || ev.Source != want.Unmap() {
					problem = "want a hostile event from " + l.SourceIP
					if ok && strings.Contains(l.Line, "(sshd:auth): authentication failure;") && ev.Source == want.Unmap() {
						divergent++
						t.Logf("deliberate divergence (pam_unix failure does not count alone): %s", l.Line)
						continue
					}
				}
			}
			if problem != "" {
				t.Errorf("%s line %d: %s; got ok=%v kind=%q source=%v\n\t%s", test, l.N, problem, ok, ev.Kind, ev.Source, l.Line)
				continue
			}
			agree++
		}
	}
	t.Logf("CrowdSec hub sshd labels: %d lines, %d agree, %d deliberate pam_unix divergences", n, agree, divergent)
	if divergent > 2 {
		t.Errorf("%d pam_unix divergences, the hub has 2 such lines", divergent)
	}
}

// TestCrowdSecHubLogs feeds the other SSH hub tests' logs (real sshd lines)
// through the parser: every line must be recognised, and the hostile ones
// must carry an address.
func TestCrowdSecHubLogs(t *testing.T) {
	dir := corpus.Path(t, "crowdsec-hub-tests")
	ctx := &logline.Context{Year: 2024, Loc: time.UTC}
	for _, test := range []string{"ssh-bf", "ssh-slow-bf", "ssh-time-based-bf", "ssh-timeout", "ssh-generic-test",
		"sshd-bad-keyexchange-bf", "sshd-invalid-bf", "sshd-refused-conn", "sshd_banner_exchange", "opnsense-sshd"} {
		matches, _ := filepath.Glob(filepath.Join(dir, test, "*.log"))
		if len(matches) == 0 {
			t.Errorf("%s: no log", test)
			continue
		}
		data, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		p := New(Aggressive, ctx)
		var n, hostile int
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			n++
			var ev phalanx.Event
			if !p.Parse(line, &ev) {
				t.Errorf("%s: not recognised: %s", test, line)
				continue
			}
			if ev.Kind.Hostile() {
				hostile++
				if !ev.Source.IsValid() && !strings.Contains(line, "kex_exchange_identification") {
					t.Errorf("%s: hostile without address: %s", test, line)
				}
			}
		}
		t.Logf("%s: %d lines, %d hostile", test, n, hostile)
		if hostile == 0 {
			t.Errorf("%s: no hostile line", test)
		}
	}
}
