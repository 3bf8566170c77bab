package fail2ban

import (
	"regexp"
	"strings"
	"testing"
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
