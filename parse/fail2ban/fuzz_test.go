package fail2ban

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/rules"
)

// fuzzFilter is a small filter with every feature: includes are not
// followed from bytes, so common.conf's prefix is written out.
const fuzzFilter = `[INCLUDES]
before = common.conf
[DEFAULT]
_daemon = sshd
__prefix_line = \s*(?:\S+\s+)?(?:%(_daemon)s(?:\[\d+\])?:?\s+)?
[Definition]
prefregex = ^<F-MLFID>%(__prefix_line)s</F-MLFID><F-CONTENT>.+</F-CONTENT>$
failregex = ^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST>(?: port \d+)?(?: ssh\d*)?$
            ^Invalid user <F-USER>\S*</F-USER> from <ADDR>(?! port 0)
            ^<F-MLFFORGET>Connection closed</F-MLFFORGET> by <HOST> \[preauth\]$
            ^user (?P<q>"?)<F-ID>\w+</F-ID>(?P=q) denied
ignoreregex = from 192\.0\.2\.99\b
datepattern = {^LN-BEG}
maxlines = 1
[Init]
mode = normal
`

var fuzzLines = []string{
	"Jun 21 16:47:48 host sshd[13709]: Failed password for root from 192.0.2.7 port 22 ssh2",
	"Jun 21 16:47:49 host sshd[13709]: Failed publickey for root from 192.0.2.7 port 22 ssh2",
	"2024-03-01T10:11:12.123+01:00 host sshd[1]: Invalid user admin from 2001:db8::1",
	"@4000000054b2c9e70e2a6e14 sshd[1]: Connection closed by ::ffff:192.0.2.3 [preauth]",
	"1419001234 sshd: user \"bob\" denied",
	"[Sun Aug 14 12:00:00 2005] sshd: Failed password for x from 192.0.2.99",
	"",
	"\xff\xfe not utf-8 from 1.2.3.4",
}

func FuzzReadConf(f *testing.F) {
	f.Add([]byte(fuzzFilter))
	for _, n := range []string{"sshd", "common", "postfix"} {
		if b, err := os.ReadFile("/etc/fail2ban/filter.d/" + n + ".conf"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[A]\na = %(b)s\nb = %(a)s\n"))
	f.Add([]byte("[A]\na = %(known/a)s %(default/x)s %(B/y)s %(__name__)s\n[B]\ny=1\n[DEFAULT]\nx=%%\n"))
	f.Add([]byte("[A?x=1]\nk: v ; c\n  cont\n\n  more\n# c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadConfBytes(data, "fuzz.conf")
		if err != nil {
			return
		}
		secs := append(c.Sections(), "DEFAULT")
		for _, s := range secs {
			for _, k := range c.Keys(s) {
				v, err := c.GetErr(s, k, map[string]string{"mode": "x"})
				if err == nil && len(v) > 64*len(data)+1<<20 {
					t.Fatalf("[%s] %s grew to %d bytes", s, k, len(v))
				}
				_, _ = c.getEx(s, "known/"+k, nil)
			}
		}
		_, _, _ = ParseFilterSpec(string(data))
	})
}

func FuzzTranslate(f *testing.F) {
	f.Add(`^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for <F-USER>\S+</F-USER> from <HOST>$`)
	f.Add(`^(?P<q>"?)\S+(?P=q) <ADDR>{,3}\Z`)
	f.Add(`(?i)a(?=b)(?<!c)(?(q)x|y)(?>z)x*+\1\u00e9\x41[]a\]\w-]`)
	f.Add(`[^\s\]]+ (?#comment)(?aiu:x)\0\012 <SUBNET> <F-ID>\w+</F-ID> <SKIPLINES>`)
	f.Add(`(?P<a>x)(['"])\2(?(1)y|z)(?(a)y)\1\101 <ADDR>(?P=ip4)`)
	f.Fuzz(func(t *testing.T, py string) {
		exp := expandTags(py, "warn")
		tr := translate(exp, dialectRE2)
		if len(tr.problems) == 0 {
			re, err := regexp.Compile(tr.expr)
			// An input Go reads as is, in which the translator saw nothing
			// Python-specific, must come out as an expression Go reads.
			// ({,n} is the one syntax read differently on purpose: Python's
			// repetition, Go's literal text.)
			if _, errIn := regexp.Compile(exp); errIn == nil && err != nil && !strings.Contains(exp, "{,") {
				t.Fatalf("translate(%q) = %q: %v", exp, tr.expr, err)
			}
			if err == nil {
				re.MatchString("Failed password for root from 192.0.2.1\n")
			}
		}
		_ = translate(exp, dialectNET)
		_ = replaceDollar(tr.expr)
	})
}

func FuzzLoadFilterBytes(f *testing.F) {
	f.Add([]byte(fuzzFilter))
	if b, err := os.ReadFile("/etc/fail2ban/filter.d/sshd.conf"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[Definition]\nfailregex = <HOST>\nmaxlines = 3\ndatepattern = ^%%Y %Y-%m-%d\n             {^LN-BEG}EPOCH\n"))
	f.Add([]byte("[Definition]\nfailregex = ^<a> <F-ID>x</F-ID>\na = <b>\nb = <a>\n"))
	f.Add([]byte("[Definition]\nfailregex = (['\"])<F-USER>\\w+</F-USER>\\1 from <HOST>(?(1)$|x)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		flt, err := LoadFilterBytes(data, "fuzz", map[string]string{"mode": "aggressive"}, LoadOptions{Location: time.UTC})
		if err != nil {
			return
		}
		m := flt.NewMatcher()
		m.CheckAll = true
		for _, l := range fuzzLines {
			for _, r := range m.Line(l) {
				if r.ID == "" && r.Host == "" && !r.Pending {
					t.Fatalf("failure without an id: %+v", r)
				}
			}
		}
		rs, _ := flt.Rules()
		y, err := yaml.Marshal(struct {
			Rules []rules.Rule `yaml:"rules"`
		}{rs})
		if err != nil {
			t.Fatalf("marshal rules: %v", err)
		}
		if _, err := rules.Parse(y, "fuzz.yaml"); err != nil {
			t.Fatalf("rules written for a filter do not load: %v\n%s", err, y)
		}
	})
}

func FuzzMatchLine(f *testing.F) {
	flt, err := LoadFilterBytes([]byte(fuzzFilter), "sshd", nil, LoadOptions{Location: time.UTC})
	if err != nil {
		f.Fatal(err)
	}
	rs, _ := flt.Rules()
	y, err := yaml.Marshal(struct {
		Rules []rules.Rule `yaml:"rules"`
	}{rs})
	if err != nil {
		f.Fatal(err)
	}
	set, err := rules.Parse(y, "sshd.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range fuzzLines {
		f.Add(l)
	}
	m := flt.NewMatcher()
	f.Fuzz(func(t *testing.T, line string) {
		for _, r := range m.Line(line) {
			var ev phalanx.Event
			r.Event("sshd", &ev)
			if !ev.Source.IsValid() && ev.SourceName == "" {
				t.Fatalf("event without a source from %q: %+v", line, r)
			}
			if ev.Source.Is4In6() {
				t.Fatalf("mapped address %v", ev.Source)
			}
		}
		var ev phalanx.Event
		if set.Parse(line, &ev) && !ev.Source.IsValid() && ev.SourceName == "" {
			t.Fatalf("rule match without a source: %q", line)
		}
	})
}
