package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

const good = `# rules for apps phalanx does not know
rules:
  - name: gitea-login
    service: gitea
    kind: auth_failed
    contains: ["Failed authentication attempt"]
    regex: 'Failed authentication attempt for (?P<user>\S+) from (?P<source>[0-9a-fA-F.:]+)'
    time_layout: "2006/01/02 15:04:05"
  - name: appx
    regex: '^(?P<time>\S+) appx: bad token from \[(?P<source>[^\]]+)\]'
  - name: appx-ok
    benign: true
    kind: auth_success
    contains: [" ok login "]
    regex: 'ok login (?P<user>\w+) from (?P<source>\S+)$'
  - name: stamp
    regex: 'stamped denial for (?P<source>\S+) at (?P<time>\d\d:\d\d:\d\d on \d\d\.\d\d\.\d{4})'
    time_layout: "15:04:05 on 02.01.2006"
scenarios:
  - name: something detect owns
    anything: [goes, here]
`

func mustParse(t testing.TB, src string) *Set {
	t.Helper()
	s, err := Parse([]byte(src), "rules.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestGoodFile(t *testing.T) {
	s := mustParse(t, good)
	rs := s.Rules()
	if len(rs) != 4 {
		t.Fatalf("%d rules, want 4", len(rs))
	}
	if rs[0].Name != "gitea-login" || rs[0].Line != 3 || rs[1].Line != 9 {
		t.Errorf("rules = %+v", rs)
	}
	s.SetContext(&logline.Context{Year: 2024, Loc: time.UTC})

	tests := []struct {
		line                   string
		ok                     bool
		service, kind, src, us string
		time                   string
	}{
		{"2024/03/01 10:11:12 ...routers/web/user/auth.go:200:SignInPost() [E] Failed authentication attempt for admin from 192.0.2.7:0: invalid", true, "gitea", "auth_failed", "192.0.2.7", "admin", "2024-03-01T10:11:12Z"},
		{"2024-03-01T10:11:12Z appx: bad token from [2001:db8::ffff:1]", true, "appx", "rule_match", "2001:db8::ffff:1", "", "2024-03-01T10:11:12Z"},
		{"2024-03-01T10:11:12Z appx: bad token from [192.0.2.8]:4242", true, "appx", "rule_match", "192.0.2.8", "", "2024-03-01T10:11:12Z"},
		{"2024-03-01T10:11:12Z appx: bad token from [::ffff:192.0.2.9]", true, "appx", "rule_match", "192.0.2.9", "", "2024-03-01T10:11:12Z"},
		{"Mar  1 10:11:12 host appx: ok login bob from 192.0.2.10", true, "appx-ok", "auth_success", "192.0.2.10", "bob", "2024-03-01T10:11:12Z"},
		{"stamped denial for 192.0.2.11 at 10:11:12 on 01.03.2024", true, "stamp", "rule_match", "192.0.2.11", "", "2024-03-01T10:11:12Z"},
		// A source that is not an address does not count.
		{"2024-03-01T10:11:12Z appx: bad token from [not-an-ip]", false, "", "", "", "", ""},
		// The prefilter literal is missing, so the regexp is not tried.
		{"failed authentication attempt for admin from 192.0.2.7", false, "", "", "", "", ""},
		{"nothing to see", false, "", "", "", "", ""},
	}
	for _, tt := range tests {
		var ev phalanx.Event
		ok := s.Parse(tt.line, &ev)
		if ok != tt.ok {
			t.Errorf("Parse(%q) = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if string(ev.Service) != tt.service || string(ev.Kind) != tt.kind || ev.Source.String() != tt.src || ev.User != tt.us {
			t.Errorf("Parse(%q) = %+v", tt.line, ev)
		}
		if tt.time != "" && ev.Time.UTC().Format(time.RFC3339) != tt.time {
			t.Errorf("Parse(%q) time %v, want %s", tt.line, ev.Time, tt.time)
		}
	}
}

func TestBadFiles(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"missing name", "rules:\n  - regex: 'from (?P<source>\\S+)'\n", []string{"rules.yaml:2:", "rule #1", "no name"}},
		{"missing regex", "rules:\n  - name: a\n    kind: auth_failed\n", []string{"rules.yaml:2:", `rule "a"`, "no regex"}},
		{"duplicate", "rules:\n  - name: a\n    regex: '(?P<source>\\S+)'\n  - name: a\n    regex: '(?P<source>\\S+)'\n", []string{"rules.yaml:4:", "already used by the rule on line 2"}},
		{"bad re2", "rules:\n  - name: a\n    regex: '(?P<source>\\S+)(?=x)'\n", []string{"rules.yaml:3:", "regex does not compile", "invalid or unsupported Perl syntax"}},
		{"no source", "rules:\n  - name: gitea-login\n    contains: [x]\n    regex: 'from (\\S+)'\n", []string{"rules.yaml:4:", `rule "gitea-login": regex has no (?P<source>...) capture: add one that matches the attacker's address`}},
		{"unknown capture", "rules:\n  - name: a\n    regex: '(?P<source>\\S+) (?P<usr>\\S+)'\n", []string{"rules.yaml:3:", `capture named "usr"`}},
		{"kind syntax", "rules:\n  - name: a\n    kind: Auth Failed\n    regex: '(?P<source>\\S+)'\n", []string{"rules.yaml:3:", "not a kind name"}},
		{"benign hostile", "rules:\n  - name: a\n    benign: true\n    kind: auth_failed\n    regex: '(?P<source>\\S+)'\n", []string{"rules.yaml:4:", "benign"}},
		{"not hostile", "rules:\n  - name: a\n    kind: info\n    regex: '(?P<source>\\S+)'\n", []string{"rules.yaml:3:", "benign: true"}},
		{"bad layout", "rules:\n  - name: a\n    regex: '(?P<source>\\S+) (?P<time>.*)'\n    time_layout: 'no verbs here'\n", []string{"rules.yaml:4:", "time_layout"}},
		{"empty literal", "rules:\n  - name: a\n    contains: ['']\n    regex: '(?P<source>\\S+)'\n", []string{"rules.yaml:3:", "contains[0] is empty"}},
		{"unknown key", "rules:\n  - name: a\n    regexp: '(?P<source>\\S+)'\n", []string{"rules.yaml:3:", "regexp"}},
		{"unknown top key", "rule:\n  - name: a\n", []string{"rules.yaml:1:", "rule"}},
		{"syntax", "rules:\n  - name: a\n   regex: [\n", []string{"rules.yaml:"}},
		{"rules not a list", "rules: 3\n", []string{"rules.yaml:1:"}},
		{"two errors", "rules:\n  - name: a\n    regex: 'x'\n  - name: b\n    regex: '('\n", []string{"rules.yaml:3:", "rules.yaml:5:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "/etc/phalanx/rules.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Errorf("error %T is not a *rules.Error", err)
			}
		})
	}
}

func TestEmptyAndScenariosOnly(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "scenarios:\n  - name: x\n", "rules: []\n"} {
		s := mustParse(t, src)
		if s.Len() != 0 {
			t.Errorf("Parse(%q): %d rules", src, s.Len())
		}
		var ev phalanx.Event
		if s.Parse("from 192.0.2.1", &ev) {
			t.Errorf("empty set matched")
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil || s.Len() != 4 {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || !strings.Contains(err.Error(), "rules:") {
		t.Errorf("Load(absent) = %v", err)
	}
	if err := os.WriteFile(p, []byte("rules:\n  - name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.HasPrefix(err.Error(), "mine.yaml:2:") {
		t.Errorf("Load(bad) = %v", err)
	}
}

func TestTest(t *testing.T) {
	s := mustParse(t, good)
	res := s.Test([]string{
		"2024-03-01T10:11:12Z appx: bad token from [10.0.0.300]",
		"Mar  1 10:11:12 host appx: ok login bob from 192.0.2.10",
		"nothing",
	})
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	if res[0].Rule != "" || len(res[0].Rejected) != 1 || !strings.Contains(res[0].Rejected[0], "not an IP address") {
		t.Errorf("res[0] = %+v", res[0])
	}
	if res[1].Rule != "appx-ok" || res[1].Event.User != "bob" {
		t.Errorf("res[1] = %+v", res[1])
	}
	if res[2].Rule != "" || res[2].Rejected != nil {
		t.Errorf("res[2] = %+v", res[2])
	}
}

func TestParseAllocs(t *testing.T) {
	// Only rules with literals: a rule without one runs its regexp, whose
	// machine pool the race detector drains at random.
	s := mustParse(t, "rules:\n  - name: a\n    contains: [Failed, attempt]\n    regex: 'Failed attempt from (?P<source>\\S+)'\n")
	var ev phalanx.Event
	if n := testing.AllocsPerRun(50, func() { s.Parse("an unrelated line of some other daemon", &ev) }); n != 0 {
		t.Errorf("a line that matches no literal allocates %v times", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("rules:\n  - name: a\n    regex: '(?P<source>\\S+)'\n"))
	f.Add([]byte("rules: {a: b}\n"))
	f.Add([]byte("rules:\n  - [1, 2]\n  - 3\n"))
	f.Add([]byte("rules:\n  - &a {name: x, regex: '(?P<source>.)'}\n  - *a\n"))
	f.Add([]byte("\x00\xff: ["))
	f.Add([]byte(fail2banStyle))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		var ev phalanx.Event
		for _, line := range []string{"", "from 192.0.2.1", string(data)} {
			if s.Parse(line, &ev) && !ev.Source.IsValid() && ev.SourceName == "" {
				t.Fatalf("match without a source")
			}
		}
	})
}

func FuzzRuleParse(f *testing.F) {
	s := mustParse(f, good)
	f.Add("2024/03/01 10:11:12 Failed authentication attempt for admin from 192.0.2.7")
	f.Add("x appx: bad token from [::ffff:1.2.3.4]")
	f.Add("ok login \xff from 1.2.3.4")
	f.Add("stamped denial for 192.0.2.11 at 99:99:99 on 41.13.0000")
	f.Fuzz(func(t *testing.T, line string) {
		var ev phalanx.Event
		if s.Parse(line, &ev) {
			if !ev.Source.IsValid() || ev.Source.Is4In6() {
				t.Fatalf("Parse(%q) source %v", line, ev.Source)
			}
		}
		s.Test([]string{line})
	})
}

// BenchmarkPrefilter compares a line that the literal prefilter rejects
// with the same rule run without one: the prefilter is what makes a rules
// file cheap on the lines it is not about.
func BenchmarkPrefilter(b *testing.B) {
	line := "2024/03/01 10:11:12 ...modules/context/context.go:123 Handle() [I] Request completed GET /user/login for 192.0.2.7, 200 OK in 2.1ms"
	for _, re := range []struct{ name, re string }{
		// Go's regexp already skips ahead to a literal prefix...
		{"literal-prefix", `Failed authentication attempt for (?P<user>\S+) from (?P<source>[0-9a-fA-F.:]+)`},
		// ...but not when the pattern starts with a capture, as one
		// that takes the time does.
		{"time-capture", `^(?P<time>\S+ \S+) .*Failed authentication attempt for (?P<user>\S+) from (?P<source>[0-9a-fA-F.:]+)`},
	} {
		withLit := mustParse(b, "rules:\n  - name: a\n    contains: ['Failed authentication attempt']\n    regex: '"+re.re+"'\n")
		without := mustParse(b, "rules:\n  - name: a\n    regex: '"+re.re+"'\n")
		for _, bc := range []struct {
			name string
			s    *Set
		}{{"prefilter", withLit}, {"regex-only", without}} {
			b.Run(re.name+"/"+bc.name, func(b *testing.B) {
				var ev phalanx.Event
				b.ReportAllocs()
				for b.Loop() {
					if bc.s.Parse(line, &ev) {
						b.Fatal("matched")
					}
				}
			})
		}
	}
}

// fail2banStyle is what parse/fail2ban writes for an imported filter.
const fail2banStyle = `rules:
  - name: app-0
    service: app
    date: default
    prefix: '^\s*(?:\S+ )?app\[\d+\]: (?P<content>.+)$'
    ignore: ['from 192\.0\.2\.99$']
    regex: '^auth failed for (?P<user>\S*) from (?:(?P<source_name>(?:\d{1,3}\.){3}\d{1,3})|(?P<source_name>[\w.-]*\w))$'
  - name: app-1
    service: app
    engine: backtracking
    regex: '^(?<_q>"?)user (?<user>\w+)\k<_q> (?!ok)\w+ from (?<source_name>\S+)$'
  - name: app-2
    service: app
    regex: '^(?P<nofail>accepted) for (?P<user>\S+) from (?P<source_name>\S+)$'
`

func TestFail2banStyleRules(t *testing.T) {
	s := mustParse(t, fail2banStyle)
	s.SetContext(&logline.Context{Year: 2024, Loc: time.UTC})
	tests := []struct {
		line                 string
		ok, failure          bool
		src, name, user, tim string
	}{
		{"2024-03-01 10:11:12 host app[12]: auth failed for bob from 192.0.2.7", true, true, "192.0.2.7", "", "bob", "2024-03-01T10:11:12Z"},
		{"2024-03-01 10:11:12 host app[12]: auth failed for bob from attacker.example", true, true, "", "attacker.example", "bob", "2024-03-01T10:11:12Z"},
		// ignore: excluded
		{"2024-03-01 10:11:12 host app[12]: auth failed for bob from 192.0.2.99", false, false, "", "", "", ""},
		// the prefix does not match: another program
		{"2024-03-01 10:11:12 host other[12]: auth failed for bob from 192.0.2.7", false, false, "", "", "", ""},
		// backtracking engine: a backreference and a lookahead
		{`"user alice" denied from 192.0.2.8`, true, true, "192.0.2.8", "", "alice", ""},
		{`"user alice denied from 192.0.2.8`, false, false, "", "", "", ""},
		{`user alice ok from 192.0.2.8`, false, false, "", "", "", ""},
		// nofail: recognised, benign
		{"accepted for carol from 192.0.2.9", true, false, "192.0.2.9", "", "carol", ""},
	}
	for _, tt := range tests {
		var ev phalanx.Event
		ok := s.Parse(tt.line, &ev)
		if ok != tt.ok || ok && ev.Failure() != tt.failure {
			t.Errorf("Parse(%q) = %v failure %v, want %v %v (%+v)", tt.line, ok, ev.Failure(), tt.ok, tt.failure, ev)
			continue
		}
		if !ok {
			continue
		}
		src := ""
		if ev.Source.IsValid() {
			src = ev.Source.String()
		}
		if src != tt.src || ev.SourceName != tt.name || ev.User != tt.user {
			t.Errorf("Parse(%q) = source %q name %q user %q", tt.line, src, ev.SourceName, ev.User)
		}
		if tt.tim != "" && ev.Time.UTC().Format(time.RFC3339) != tt.tim {
			t.Errorf("Parse(%q) time %v, want %s", tt.line, ev.Time, tt.tim)
		}
	}
	for _, bad := range []struct{ src, want string }{
		{"rules:\n  - name: a\n    engine: pcre\n    regex: '(?P<source>x)'\n", "engine"},
		{"rules:\n  - name: a\n    date: '%Q'\n    regex: '(?P<source>x)'\n", "date"},
		{"rules:\n  - name: a\n    prefix: '(?P<zzz>x)'\n    regex: '(?P<source>x)'\n", "prefix has a capture"},
		{"rules:\n  - name: a\n    ignore: ['(']\n    regex: '(?P<source>x)'\n", "ignore[0]"},
		{"rules:\n  - name: a\n    regex: '(?<source>x)(?=y)'\n", "engine: backtracking"},
	} {
		_, err := Parse([]byte(bad.src), "r.yaml")
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err = %v, want %q", bad.src, err, bad.want)
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	got := RequiredLiterals(`^Failed (?:password|publickey) for (?P<user>\S+) from (?P<source>\S+)( port \d+)?$`, 4)
	want := []string{"Failed ", " for ", " from "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("RequiredLiterals = %q, want %q", got, want)
	}
	if got := RequiredLiterals(`(?i)failed from (?P<source>x)`, 4); len(got) != 0 {
		t.Errorf("case-insensitive literals = %q", got)
	}
}

// Check accepts what Parse accepts and says what is wrong with the rest,
// without a file to name.
func TestRuleCheck(t *testing.T) {
	ok := Rule{Name: "a", Regex: `Failed password for \S+ from (?P<source>\S+)`}
	if err := ok.Check(); err != nil {
		t.Errorf("a good rule: %v", err)
	}
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{Regex: `(?P<source>\S+)`}, "no name"},
		{Rule{Name: "a", Regex: `(?P<source>\S+)(?=x)`}, "regex does not compile"},
		{Rule{Name: "a", Regex: `(?<source>\S+)`, Prefix: `000(?s)*`, Engine: EngineBacktracking}, "prefix does not compile"},
		{Rule{Name: "a", Regex: `(?P<source>\S+)`, Engine: "pcre"}, "engine"},
	} {
		err := c.r.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
	}
}
