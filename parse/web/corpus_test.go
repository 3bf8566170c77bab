package web

import (
	"bufio"
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

var f2bWebFiles = map[string]bool{
	"nginx-botsearch": true, "nginx-http-auth": true, "nginx-limit-req": true, "apache-auth": true,
	"apache-badbots": true, "apache-botsearch": true, "apache-noscript": true, "apache-overflows": true,
}

// f2bTested reports whether fail2ban tests the case in its default mode or
// its aggressive one (whose "fallback" part nginx-http-auth also tests on
// its own); logging/logtype options only change the line's header.
func f2bTested(opts []map[string]any) bool {
	for _, o := range opts {
		switch o["mode"] {
		case nil, "normal", "aggressive", "auth", "fallback":
			return true
		}
	}
	return false
}

// TestFail2banCorpus measures agreement with fail2ban's annotated samples
// for its nginx and Apache filters: match == (Parse && Hostile), and the
// same source address on every agreed match.
func TestFail2banCorpus(t *testing.T) {
	p := New(phalanx.ServiceHTTP, &logline.Context{Year: 2024, Loc: time.UTC})
	var total, agree int
	for _, c := range corpus.Fail2banCases(t) {
		if !f2bWebFiles[c.File] || !f2bTested(c.Options) {
			continue
		}
		total++
		var ev phalanx.Event
		ok := p.Parse(c.Line, &ev)
		got := ok && ev.Hostile()
		if got != c.Match {
			t.Logf("DISAGREE %s: want match=%v, got parsed=%v kind=%s src=%v\n\t%s", c.ID, c.Match, ok, ev.Kind, ev.Source, c.Line)
			continue
		}
		if got && c.Host != nil {
			want, err := netip.ParseAddr(*c.Host)
			if err == nil && want.Unmap() != ev.Source {
				t.Logf("DISAGREE %s: source %v, want %v\n\t%s", c.ID, ev.Source, want, c.Line)
				continue
			}
		}
		agree++
	}
	if total == 0 {
		t.Fatal("no web cases in the corpus")
	}
	pct := 100 * float64(agree) / float64(total)
	t.Logf("fail2ban web filters: %d/%d cases agree (%.1f%%)", agree, total, pct)
	if pct < 97 {
		t.Errorf("agreement %.1f%% < 97%%", pct)
	}
}

// hubSummary is the part of crowdsec-hub-tests/summary.json used here.
type hubSummary struct {
	LogFile    string `json:"log_file"`
	LogType    string `json:"log_type"`
	LineLabels []struct {
		N          int    `json:"n"`
		Line       string `json:"line"`
		Parsed     bool   `json:"parsed"`
		SourceIP   string `json:"source_ip"`
		HTTPPath   string `json:"http_path"`
		HTTPStatus string `json:"http_status"`
	} `json:"line_labels"`
}

func loadHub(t *testing.T) (string, map[string]hubSummary) {
	dir := corpus.Path(t, "crowdsec-hub-tests")
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Skipf("corpus: %v", err)
	}
	var m map[string]hubSummary
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	return dir, m
}

// TestCrowdSecParsers checks every web line CrowdSec's parsers parse:
// same source_ip, http_path and http_status.
func TestCrowdSecParsers(t *testing.T) {
	_, hub := loadHub(t)
	p := New(phalanx.ServiceHTTP, &logline.Context{Year: 2024, Loc: time.UTC})
	n := 0
	for name, s := range hub {
		if s.LogType != "nginx" && s.LogType != "apache2" {
			continue
		}
		for _, l := range s.LineLabels {
			if !l.Parsed {
				continue
			}
			n++
			var ev phalanx.Event
			if !p.Parse(l.Line, &ev) {
				t.Errorf("%s line %d: not parsed: %s", name, l.N, l.Line)
				continue
			}
			if want, err := netip.ParseAddr(l.SourceIP); err != nil || ev.Source != want.Unmap() {
				t.Errorf("%s line %d: source %v, want %s", name, l.N, ev.Source, l.SourceIP)
			}
			// CrowdSec's grok pattern for nginx error logs drops the scheme
			// of an absolute URI ("https://h/" becomes "//h/"); phalanx
			// keeps the target as requested.
			path := ev.Path
			if i := strings.Index(path, "://"); i > 0 && !strings.HasPrefix(l.HTTPPath, path[:i]) {
				path = path[i+1:]
			}
			if path != l.HTTPPath {
				t.Errorf("%s line %d: path %q, want %q", name, l.N, ev.Path, l.HTTPPath)
			}
			status := ""
			if ev.Status != 0 {
				status = itoa(ev.Status)
			}
			if status != l.HTTPStatus {
				t.Errorf("%s line %d: status %q, want %q", name, l.N, status, l.HTTPStatus)
			}
		}
	}
	if n == 0 {
		t.Fatal("no labelled web lines")
	}
	t.Logf("%d labelled web lines checked", n)
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// TestCrowdSecScenarios replays the logs of CrowdSec's web scenario tests
// and counts, for the source the expected alert names, the lines put into
// the kind a phalanx scenario would count. distinct asks for distinct
// paths (probing).
func TestCrowdSecScenarios(t *testing.T) {
	dir, hub := loadHub(t)
	tests := []struct {
		name     string
		source   string
		kind     phalanx.EventKind
		min      int
		distinct bool
	}{
		{"nginx-http-sqli-probing", "127.0.0.1", phalanx.KindHTTPExploit, 11, false},
		{"nginx-http-xss-probing", "127.0.0.1", phalanx.KindHTTPExploit, 6, false},
		{"nginx-http-path-traversal", "127.0.0.1", phalanx.KindHTTPExploit, 5, false},
		{"nginx-http-sensitive-files", "127.0.0.1", phalanx.KindHTTPSensitive, 5, false},
		{"apache2-http-sensitive-files", "172.17.0.1", phalanx.KindHTTPSensitive, 5, false},
		{"nginx-bad-user-agent", "127.0.0.1", phalanx.KindHTTPBadAgent, 2, false},
		{"ipv6-postoverflow", "2001:db8:85a3::8a2e:370:7334", phalanx.KindHTTPBadAgent, 2, false},
		{"nginx-cve-2021-41773", "23.94.26.138", phalanx.KindHTTPExploit, 1, false},
		{"nginx-cve-2021-41773", "163.172.173.238", phalanx.KindHTTPExploit, 1, false},
		{"apache-cve-2021-41773", "88.168.206.87", phalanx.KindHTTPExploit, 1, false},
		{"apache-cve-2021-41773", "172.17.0.1", phalanx.KindHTTPExploit, 1, false},
		{"apache-cve-2021-41773", "172.17.0.2", phalanx.KindHTTPExploit, 1, false},
		{"cve-2021-42013", "172.17.0.1", phalanx.KindHTTPExploit, 1, false},
		{"CVE-2025-0108", "127.0.0.1", phalanx.KindHTTPExploit, 1, false},
		{"http-cve-probing", "127.0.0.1", phalanx.KindHTTPExploit, 1, false},
		{"nginx-http-backdoor", "127.0.0.1", phalanx.KindHTTPExploit, 2, false},
		{"nginx-http-open-proxy", "127.0.0.1", phalanx.KindHTTPOpenProxy, 1, false},
		{"nginx-http-open-proxy", "127.0.0.2", phalanx.KindHTTPOpenProxy, 1, false},
		{"http-admin-interface-probing", "157.230.234.189", phalanx.KindHTTPSensitive, 3, false},
		{"nginx-http-generic-bf", "127.0.0.1", phalanx.KindHTTPAuthFailed, 6, false},
		{"nginx_req_limit_exceeded", "::1", phalanx.KindHTTPRateLimited, 6, false},
		{"apache-http-probing", "172.17.0.1", phalanx.KindHTTPNotFound, 11, true},
		{"nginx-http-malformed", "1.2.3.4", phalanx.KindHTTPMalformed, 11, false},
		{"apache2-malformed", "1.2.3.4", phalanx.KindHTTPMalformed, 11, false},
	}
	var short []string
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.source, func(t *testing.T) {
			s, ok := hub[tt.name]
			if !ok {
				t.Fatalf("%s not in summary.json", tt.name)
			}
			f, err := os.Open(filepath.Join(dir, tt.name, s.LogFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := netip.MustParseAddr(tt.source)
			p := New(phalanx.ServiceHTTP, &logline.Context{Year: 2024, Loc: time.UTC})
			count := 0
			seen := map[string]bool{}
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if strings.TrimSpace(line) == "" {
					continue
				}
				var ev phalanx.Event
				if !p.Parse(line, &ev) {
					t.Logf("not parsed: %s", line)
					continue
				}
				if ev.Source != want {
					continue
				}
				if ev.Kind != tt.kind {
					t.Logf("kind %s: %s", ev.Kind, line)
					continue
				}
				if tt.distinct {
					if seen[ev.Path] {
						continue
					}
					seen[ev.Path] = true
				}
				count++
			}
			t.Logf("%d %s events from %s (need %d)", count, tt.kind, tt.source, tt.min)
			if count < tt.min {
				short = append(short, tt.name)
				t.Errorf("%d %s events from %s, want >= %d", count, tt.kind, tt.source, tt.min)
			}
		})
	}
	if len(short) > 0 {
		t.Logf("short: %v", short)
	}
}
