package fail2ban

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"
	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/rules"
)

func TestTranslate(t *testing.T) {
	tests := []struct {
		py, re2 string // re2 "": not RE2
		problem string // substring of the reason when not RE2
	}{
		{`^a{,3}b\Z`, `^a{0,3}b\z`, ""},
		{`(?P<x>\d+) \(?P<`, `(?P<x>\d+) \(?P<`, ""},
		{`[]a-][^]x]`, `[\]a-][^\]x]`, ""},
		{`x(?#note)y`, `xy`, ""},
		{`(?iu:abc)`, `(?i:abc)`, ""},
		{`\u00e9\x41\0`, `\x{e9}\x41\x{0}`, ""},
		{`a\_b`, `a_b`, ""},
		{`a(?=b)`, "", "lookahead"},
		{`(?<!a)b`, "", "lookbehind"},
		{`(?P<x>a)(?P=x)`, `(?:(?P<x>a)a)`, ""},
		{`(?P<q>"?)\S+(?P=q)`, `(?:(?P<q>")\S+"|(?P<q>)\S+)`, ""},
		{`(?P<x>\w+) (?P=x)`, "", "backreference"},
		{`(a)\1`, "", "backreference"},
		{`(?(x)a|b)`, "", "conditional"},
		{`a*+`, "", "possessive"},
		{`(?x) a b`, "", "verbose"},
		{`{,3}`, "", "nothing to repeat"},
	}
	for _, tt := range tests {
		got := translate(tt.py, dialectRE2)
		if tt.re2 == "" {
			if len(got.problems) == 0 || !strings.Contains(strings.Join(got.problems, ";"), tt.problem) {
				t.Errorf("translate(%q) = %q %v, want a problem about %s", tt.py, got.expr, got.problems, tt.problem)
			}
			continue
		}
		if len(got.problems) > 0 || got.expr != tt.re2 {
			t.Errorf("translate(%q) = %q %v, want %q", tt.py, got.expr, got.problems, tt.re2)
			continue
		}
		if _, err := regexp.Compile(got.expr); err != nil {
			t.Errorf("translate(%q) = %q does not compile: %v", tt.py, got.expr, err)
		}
	}
	// The .NET dialect keeps what RE2 lacks, in .NET spelling.
	if got := translate(`(?P<x>a)(?P=x)(?=b)(?(x)c|d)`, dialectNET); len(got.problems) > 0 || got.expr != `(?<x>a)\k<x>(?=b)(?(x)c|d)` {
		t.Errorf("NET: %q %v", got.expr, got.problems)
	}
}

// The rewritten IPv6 expression matches what fail2ban's (with its
// lookbehind) matches: the expectations are Python's.
func TestIPv6Rewrite(t *testing.T) {
	re := regexp.MustCompile(`^` + reIP6 + `$`)
	for s, want := range map[string]bool{
		"2001:db8::1": true, "::1": true, "fe80::": true, "2001:db8:0:0:0:0:0:1": true,
		"::": false, "1::": true, "2001:db8:1": true, "12345::1": false, ":1": false,
		"::ffff:1.2.3.4": false, "a:::": true,
	} {
		if re.MatchString(s) != want {
			t.Errorf("%s: %v, want %v", s, !want, want)
		}
	}
}

func TestExpandTags(t *testing.T) {
	got := expandTags(`^<F-USER>\S+</F-USER> from <HOST> id <F-ID/> <F-ALT_USER>x</F-ALT_USER> <F-X>`, "warn")
	for _, want := range []string{`(?P<user>\S+)`, `(?P<ip4>`, `(?P<dns>`, `(?P<fid>\S+)`, `(?P<alt_user>x)`, `(?P<x>`} {
		if !strings.Contains(got, want) {
			t.Errorf("expandTags: %q lacks %q", got, want)
		}
	}
	if got := expandTags(`<HOST>`, "no"); strings.Contains(got, "dns") {
		t.Errorf("usedns=no keeps DNS names: %q", got)
	}
}

// Numbered references keep Python's meaning on regexp2, which numbers the
// named groups after the unnamed ones. The expected matches are Python's
// (re.search(pattern, input).group(0), python3 3.x).
func TestNumberedBackrefs(t *testing.T) {
	tests := []struct{ py, in, want string }{
		{`(?P<a>x)(y)\2`, "xyx xyy", "xyy"},
		{`(?P<a>x)(y)\1`, "xyy xyx", "xyx"},
		{`(y)(?P<a>x)\1`, "yxx yxy", "yxy"},
		{`(?P<a>x)(?P<b>y)(z)\3\2`, "xyzyz xyzzy", "xyzzy"},
		{`(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)\128`, "abcdefghijklk8 abcdefghijkll8", "abcdefghijkll8"},
		{`(?P<a>x)?(y)(?(2)z|w)`, "yw yz", "yz"},
		{`(?P<a>x)?(y)(?(1)z|w)`, "yz yw", "yw"},
		{`(x)\101`, "x1 xA", "xA"},
		{`(?P<a>x)(?P<b>y)(?P=a)`, "xyy xyx", "xyx"},
		{`(['"])(?P<u>\w+)\1`, `'bob" "bob"`, `"bob"`},
	}
	for _, tt := range tests {
		tr := translate(tt.py, dialectNET)
		if len(tr.problems) > 0 {
			t.Errorf("translate(%q): %v", tt.py, tr.problems)
			continue
		}
		re, err := regexp2.Compile(tr.expr, regexp2.None)
		if err != nil {
			t.Errorf("translate(%q) = %q: %v", tt.py, tr.expr, err)
			continue
		}
		m, err := re.FindStringMatch(tt.in)
		got := "<no match>"
		if err == nil && m != nil {
			got = m.String()
		}
		if got != tt.want {
			t.Errorf("%q (regexp2 %q) on %q: %q, Python %q", tt.py, tr.expr, tt.in, got, tt.want)
		}
	}
}

// A reference Python refuses, or one to a name several groups share, is
// refused in both dialects rather than passed on to mean something else.
func TestRefusedReferences(t *testing.T) {
	for _, tt := range []struct{ py, problem string }{
		{`\2(a)(b)`, "invalid group reference"},
		{`(a)\2`, "invalid group reference"},
		{`(a\1)`, "not closed"},
		{`(?P=a)(?P<a>x)`, "unknown group name"},
		{`(?P<a>x(?P=a))`, "open group"},
		{`(?(a)x|y)(?P<a>z)`, "unknown group name"},
		{`(?(3)x|y)(a)`, "no group 3"},
		{`(?P<3>x)`, "group name"},
		{`(x)\400`, "above"},
		// What a rule's renaming makes of <ADDR>(?!)\2 and <ADDR>(?P=ip6).
		{`(?P<source_name>\d+)|(?P<source_name>[a-f:]+)\2`, "more than one group"},
		{`(?P<source_name>\d+)|(?P<source_name>[a-f:]+)(?P=source_name)`, "more than one group"},
		{`(?P<source_name>\d+)|(?P<source_name>[a-f:]+)(?(source_name)x)`, "more than one group"},
	} {
		for _, d := range []dialect{dialectRE2, dialectNET} {
			got := translate(tt.py, d)
			if !strings.Contains(strings.Join(got.problems, ";"), tt.problem) {
				t.Errorf("translate(%q, %d) = %q %v, want a problem about %s", tt.py, d, got.expr, got.problems, tt.problem)
			}
		}
	}
}

// A filter with a numbered backreference runs as fail2ban runs it, both
// as a filter and written out as a rule; one whose backreference names a
// group a rule merges (fuzzer's <ADDR>(?!)\2: \2 is ip6, which a rule
// makes one source_name with ip4) is written out as no rule, with the
// reason, instead of a rule that does not load.
func TestNumberedBackrefsInFilter(t *testing.T) {
	f, err := LoadFilterBytes([]byte("[Definition]\nfailregex = user (['\"])<F-USER>\\w+</F-USER>\\1 from <HOST>$\n"), "quote", nil, LoadOptions{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	set := filterRules(t, f, 1)
	for line, want := range map[string]bool{
		`2024-03-01 10:00:00 user "bob" from 192.0.2.7`: true,
		`2024-03-01 10:00:00 user 'bob' from 192.0.2.7`: true,
		`2024-03-01 10:00:00 user "bob' from 192.0.2.7`: false,
	} {
		rs := f.NewMatcher().Line(line)
		if got := len(rs) == 1 && rs[0].User == "bob" && rs[0].Host == "192.0.2.7"; got != want {
			t.Errorf("filter on %q: %+v, want a failure: %v", line, rs, want)
		}
		var ev phalanx.Event
		if got := set.Parse(line, &ev) && ev.Source.String() == "192.0.2.7" && ev.User == "bob"; got != want {
			t.Errorf("rule on %q: %+v, want a match: %v", line, ev, want)
		}
	}

	f, err = LoadFilterBytes([]byte("[Definition]\nfailregex = <ADDR>(?!)\\2\n"), "merged", nil, LoadOptions{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if e := f.Failregex[0]; e.Engine != EngineBacktracking || !strings.Contains(e.bt.String(), `\k<ip6>`) {
		t.Errorf("filter: %s %s, want \\2 as \\k<ip6> on the backtracking engine", e.Engine, e.bt)
	}
	filterRules(t, f, 0)
	_, problems := f.Rules()
	if p := problems[len(problems)-1]; !strings.Contains(p.Reason, `"source_name", a name more than one group`) {
		t.Errorf("no rule, but not said why: %v", problems)
	}
}

// filterRules writes f's rules out as a rules file, loads it, and checks
// that n rules were written.
func filterRules(t *testing.T, f *Filter, n int) *rules.Set {
	t.Helper()
	rs, problems := f.Rules()
	if len(rs) != n {
		t.Fatalf("%d rules, want %d: %v", len(rs), n, problems)
	}
	y, err := yaml.Marshal(struct {
		Rules []rules.Rule `yaml:"rules"`
	}{rs})
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse(y, f.Name+".yaml")
	if err != nil {
		t.Fatalf("the rules do not load: %v\n%s", err, y)
	}
	return set
}
