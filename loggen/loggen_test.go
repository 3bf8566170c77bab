package loggen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/parse/logline"
)

func generate(t testing.TB, cfg Config) ([]byte, Truth) {
	t.Helper()
	var buf bytes.Buffer
	tr, err := Generate(&buf, cfg)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return buf.Bytes(), tr
}

var kinds = []Kind{SSHD, Nginx}

func TestDeterministic(t *testing.T) {
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			a, _ := generate(t, Config{Kind: k, Lines: 20000, Seed: 7})
			b, _ := generate(t, Config{Kind: k, Lines: 20000, Seed: 7})
			c, _ := generate(t, Config{Kind: k, Lines: 20000, Seed: 8})
			ha, hb, hc := sha256.Sum256(a), sha256.Sum256(b), sha256.Sum256(c)
			if ha != hb {
				t.Errorf("same seed, different bytes: %x != %x", ha, hb)
			}
			if ha == hc {
				t.Errorf("seeds 7 and 8 gave the same bytes")
			}
		})
	}
}

func TestLineCount(t *testing.T) {
	for _, k := range kinds {
		for _, n := range []int{30000, 200000} {
			out, tr := generate(t, Config{Kind: k, Lines: n, Seed: 1})
			got := bytes.Count(out, []byte{'\n'})
			if got != tr.Lines {
				t.Errorf("%s: truth says %d lines, log has %d", k, tr.Lines, got)
			}
			if lo, hi := n*95/100, n*105/100; got < lo || got > hi {
				t.Errorf("%s: asked for %d lines, got %d (want within 5%%)", k, n, got)
			}
			sum := tr.BackgroundLines
			for _, a := range tr.Actors {
				sum += a.Lines
			}
			if sum != got {
				t.Errorf("%s: actor and background lines add up to %d, log has %d", k, sum, got)
			}
			// The background dominates; attackers are a few percent.
			hostile := 0
			for _, a := range tr.Actors {
				if a.Expect.Bans() {
					hostile += a.Lines
				}
			}
			if n >= 200000 && (hostile*100 < got/200 || hostile*100 > got*10) {
				t.Errorf("%s: attackers wrote %d of %d lines, want between 0.5%% and 10%%", k, hostile, got)
			}
		}
	}
}

// Every class the package promises is present, with sane truth.
func TestTruth(t *testing.T) {
	want := map[Kind][]string{
		SSHD: {"ssh-brute-fast", "ssh-brute-medium", "ssh-brute-slow", "ssh-user-enum", "ssh-probe", "ssh-ipv6-subnet",
			"ssh-mistype", "ssh-office-nat", "ssh-deploy", "ssh-deploy-badkey", "ssh-monitoring"},
		Nginx: {"http-scan-fast", "http-scan-slow", "http-exploit", "http-auth-brute", "http-bad-agent",
			"http-crawler", "http-uptime", "http-api-client", "http-office-nat"},
	}
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			out, tr := generate(t, Config{Kind: k, Lines: 30000, Seed: 3})
			classes := map[string]bool{}
			names := map[string]bool{}
			addrs := map[netip.Addr]string{}
			text := string(out)
			for _, a := range tr.Actors {
				classes[a.Class] = true
				if names[a.Name] {
					t.Errorf("actor name %s twice", a.Name)
				}
				names[a.Name] = true
				if a.Lines == 0 {
					t.Errorf("%s wrote no line", a.Name)
				}
				for _, ad := range a.Addrs {
					if prev, ok := addrs[ad]; ok {
						t.Errorf("%s shared by %s and %s", ad, prev, a.Name)
					}
					addrs[ad] = a.Name
					if !containsAddr(text, ad.String()) {
						t.Errorf("%s: address %s not in the log", a.Name, ad)
					}
					if a.Prefix.IsValid() && !a.Prefix.Contains(ad) {
						t.Errorf("%s: %s not in its prefix %s", a.Name, ad, a.Prefix)
					}
				}
				if a.Expect.Bans() {
					if a.FirstHostile.Before(tr.Start) || !a.FirstHostile.Before(tr.End) {
						t.Errorf("%s: first hostile line at %v, outside the log", a.Name, a.FirstHostile)
					}
					if a.HostileLines == 0 {
						t.Errorf("%s should be banned but wrote nothing hostile", a.Name)
					}
				} else if !a.FirstHostile.IsZero() {
					t.Errorf("%s is legitimate but has a first hostile time", a.Name)
				}
			}
			for _, c := range want[k] {
				if !classes[c] {
					t.Errorf("class %s missing", c)
				}
			}
		})
	}
}

// containsAddr finds an address as a whole token.
func containsAddr(text, a string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], a)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(a)
		before := j == 0 || text[j-1] == ' ' || text[j-1] == '=' || text[j-1] == '\n'
		after := end == len(text) || text[end] == ' '
		if before && after {
			return true
		}
		i = j + 1
	}
}

func TestSSHDFormat(t *testing.T) {
	out, tr := generate(t, Config{Kind: SSHD, Lines: 50000, Seed: 5})
	ctx := &logline.Context{Year: 2025, Loc: time.UTC}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var last time.Time
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		h, ok := logline.Parse(line, ctx)
		if !ok {
			t.Fatalf("line %d does not parse: %q", n, line)
		}
		if h.Program != "sshd" || h.PID <= 0 || h.Host != "bastion" || h.Message == "" {
			t.Fatalf("line %d: bad header %+v: %q", n, h, line)
		}
		if h.Time.Before(last) || h.Time.Before(tr.Start) || !h.Time.Before(tr.End) {
			t.Fatalf("line %d: time %v out of order or range (last %v): %q", n, h.Time, last, line)
		}
		last = h.Time
	}
	if n != tr.Lines {
		t.Errorf("scanned %d lines, truth says %d", n, tr.Lines)
	}
}

var combined = regexp.MustCompile(`^(\S+) - (\S+) \[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000)\] "([A-Z]+) (\S+) (HTTP/1\.[01])" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$`)

func TestNginxFormat(t *testing.T) {
	out, tr := generate(t, Config{Kind: Nginx, Lines: 50000, Seed: 5})
	sc := bufio.NewScanner(bytes.NewReader(out))
	var last time.Time
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		m := combined.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is not in the combined format: %q", n, line)
		}
		if _, err := netip.ParseAddr(m[1]); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[3])
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if ts.Before(last) || ts.Before(tr.Start) || !ts.After(tr.Start.Add(-time.Second)) || !ts.Before(tr.End) {
			t.Fatalf("line %d: time %v out of order or range: %q", n, ts, line)
		}
		last = ts
	}
	if n != tr.Lines {
		t.Errorf("scanned %d lines, truth says %d", n, tr.Lines)
	}
}

// The office behind a NAT mistypes now and then, but never in a burst
// that would look like an attack: at most 4 failures in any 10 minutes.
func TestOfficeMistakesSpreadOut(t *testing.T) {
	out, tr := generate(t, Config{Kind: SSHD, Lines: 50000, Seed: 9})
	i := slices.IndexFunc(tr.Actors, func(a Actor) bool { return a.Class == "ssh-office-nat" })
	if i < 0 {
		t.Fatal("no office")
	}
	office := tr.Actors[i]
	needle := " from " + office.Addrs[0].String() + " port "
	ctx := &logline.Context{Year: 2025, Loc: time.UTC}
	var fails []time.Time
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Failed password") && strings.Contains(line, needle) {
			h, _ := logline.Parse(line, ctx)
			fails = append(fails, h.Time)
		}
	}
	if len(fails) < 10 {
		t.Fatalf("the office made only %d mistakes in a day", len(fails))
	}
	for j := range fails {
		k := j
		for k < len(fails) && fails[k].Sub(fails[j]) < 10*time.Minute {
			k++
		}
		if k-j > 4 {
			t.Fatalf("%d office failures within 10 minutes from %v", k-j, fails[j])
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Kind: "apache"}, {Kind: SSHD, Lines: -1}, {Kind: SSHD, Duration: time.Minute}} {
		if _, err := Generate(io.Discard, cfg); err == nil {
			t.Errorf("Generate(%+v) succeeded", cfg)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, k := range kinds {
		b.Run(string(k), func(b *testing.B) {
			const lines = 200000
			for b.Loop() {
				if _, err := Generate(io.Discard, Config{Kind: k, Lines: lines, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
