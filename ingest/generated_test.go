package ingest_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/loggen"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

// classResult tallies one actor class of a generated day.
type classResult struct {
	expect        loggen.Expect
	actors, hit   int
	lateExploit   int // exploit senders decided after their first payload
	falseDecision []string
}

// TestGeneratedDay replays a generated day of sshd and of nginx traffic
// with the default scenarios and checks the outcome against the
// generator's ground truth: every attacker that must be banned is, at least
// 80% of the low-and-slow ones are, exploit senders are banned on their
// first payload, and no legitimate client is — allowing at most 10% of the
// addresses of a shared office NAT or of a job with a rejected key.
func TestGeneratedDay(t *testing.T) {
	for _, kind := range []loggen.Kind{loggen.SSHD, loggen.Nginx} {
		for _, seed := range []uint64{1, 7} {
			t.Run(fmt.Sprintf("%s/seed%d", kind, seed), func(t *testing.T) {
				checkGenerated(t, kind, seed)
			})
		}
	}
}

func checkGenerated(t *testing.T, kind loggen.Kind, seed uint64) {
	var buf bytes.Buffer
	lines := 150_000
	if v, err := strconv.Atoi(os.Getenv("PHALANX_GEN_LINES")); err == nil {
		lines = v // e.g. 1000000 for a full day at benchmark volume
	}
	truth, err := loggen.Generate(&buf, loggen.Config{Kind: kind, Seed: seed, Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := detect.New(detect.Config{Scenarios: detect.DefaultScenarios(), BuiltinAllowlist: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []phalanx.Decision
	typ := parse.SSHD
	if kind == loggen.Nginx {
		typ = parse.Nginx
	}
	p := ingest.New(parse.New(parse.Options{Type: typ, SSHDMode: sshd.Aggressive, Context: &logline.Context{Year: truth.Start.Year()}}), engine,
		func(d phalanx.Decision) { got = append(got, d) })
	if _, err := ingest.ScanLines(&buf, func(l string) { p.Line(l) }); err != nil {
		t.Fatal(err)
	}

	// Which decision first covered each address.
	covered := func(a netip.Addr) (phalanx.Decision, bool) {
		for _, d := range got {
			if d.Value.Contains(a) {
				return d, true
			}
		}
		return phalanx.Decision{}, false
	}
	known := map[netip.Addr]bool{}
	classes := map[string]*classResult{}
	for _, a := range truth.Actors {
		c := classes[a.Class]
		if c == nil {
			c = &classResult{expect: a.Expect}
			classes[a.Class] = c
		}
		for _, addr := range a.Addrs {
			known[addr] = true
		}
		if a.Expect.Bans() {
			c.actors++
			hit := false
			for _, addr := range a.Addrs {
				if d, ok := covered(addr); ok {
					hit = true
					if strings.Contains(a.Class, "exploit") && d.LastSeen.After(a.FirstHostile) {
						c.lateExploit++
					}
					break
				}
			}
			if hit {
				c.hit++
			}
			continue
		}
		// Legitimate: count addresses, not actors, for the NAT and job.
		for _, addr := range a.Addrs {
			c.actors++
			if d, ok := covered(addr); ok {
				c.hit++
				c.falseDecision = append(c.falseDecision, fmt.Sprintf("%s by %s (%d events)", addr, d.Scenario, d.Events))
			}
		}
	}
	var background []string
	for _, d := range got {
		if !known[d.Value.Addr()] && !d.Value.IsSingleIP() {
			continue // a range decision is judged through the actors it covers
		}
		if !known[d.Value.Addr()] {
			background = append(background, d.ValueString()+" by "+d.Scenario)
		}
	}

	names := make([]string, 0, len(classes))
	for n := range classes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := classes[n]
		pct := 100 * float64(c.hit) / float64(max(c.actors, 1))
		t.Logf("%-24s %-8s decided %d/%d (%.0f%%)", n, c.expect, c.hit, c.actors, pct)
		switch {
		case c.expect == loggen.ExpectBan && c.hit < c.actors:
			t.Errorf("%s: only %d of %d attackers decided", n, c.hit, c.actors)
		case c.expect == loggen.ExpectBan80 && pct < 80:
			t.Errorf("%s: %.0f%% of low-and-slow attackers decided, want at least 80%%", n, pct)
		case c.expect == loggen.ExpectNoBan:
			tolerance := 0.0
			if strings.Contains(n, "nat") || strings.Contains(n, "misconfigured") || strings.Contains(n, "rejected") {
				tolerance = 10
			}
			if pct > tolerance {
				t.Errorf("%s: legitimate addresses decided (%.0f%%, tolerance %.0f%%): %v", n, pct, tolerance, c.falseDecision)
			}
		}
		if c.lateExploit > 0 {
			t.Errorf("%s: %d exploit senders decided only after their first payload", n, c.lateExploit)
		}
	}
	if len(background) > 0 {
		t.Errorf("%d background (legitimate) addresses decided: %v", len(background), background[:min(len(background), 10)])
	}
	t.Logf("%d lines, %d decisions", truth.Lines, len(got))
}
