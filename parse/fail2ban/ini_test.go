package fail2ban

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under a new temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadConfOrderAndIncludes(t *testing.T) {
	root := writeTree(t, map[string]string{
		"filter.d/common.conf":  "[INCLUDES]\nafter = common.local\n[DEFAULT]\n__prefix = pre\nlogtype = file\n",
		"filter.d/common.local": "[DEFAULT]\n__prefix = pre-local\n",
		"filter.d/app.conf": `[INCLUDES]
before = common.conf
[DEFAULT]
_daemon = app
[Definition]
# a comment
failregex = ^%(__prefix)s fail from <HOST>$
            ^%(__prefix)s bad user <F-USER>\S+</F-USER> from <HOST>$ ; inline comment

            ^third;not a comment
ignoreregex =
name = %(__name__)s
[Init]
mode = normal
`,
		"filter.d/app.local":        "[Definition]\nfailregex = %(known/failregex)s\n            ^local <HOST>$\n",
		"filter.d/app.d/10-x.conf":  "[Definition]\nextra = ten\n",
		"filter.d/app.d/10-x.local": "[Definition]\nextra = ten-local\n",
	})
	c, err := ReadConf(root, "filter.d/app")
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range c.Files() {
		r, _ := filepath.Rel(root, f)
		rel = append(rel, r)
	}
	// As fail2ban: common.local once as common.conf's "after" and once as
	// the .local beside an included .conf; .d/*.local after name.local.
	want := []string{"filter.d/common.conf", "filter.d/common.local", "filter.d/common.local", "filter.d/app.conf", "filter.d/app.d/10-x.conf", "filter.d/app.local", "filter.d/app.d/10-x.local"}
	if !reflect.DeepEqual(rel, want) {
		t.Errorf("files = %v, want %v", rel, want)
	}
	if got := c.Sections(); !reflect.DeepEqual(got, []string{"Definition", "Init"}) {
		t.Errorf("sections = %v", got)
	}
	fr, ok := c.Get("Definition", "FailRegex")
	wantFR := "^pre-local fail from <HOST>$\n^pre-local bad user <F-USER>\\S+</F-USER> from <HOST>$\n\n^third;not a comment\n^local <HOST>$"
	if !ok || fr != wantFR {
		t.Errorf("failregex = %q, want %q", fr, wantFR)
	}
	if v, _ := c.Get("Definition", "extra"); v != "ten-local" {
		t.Errorf("extra = %q", v)
	}
	if v, _ := c.Get("Definition", "name"); v != "Definition" {
		t.Errorf("__name__ = %q", v)
	}
	if v, ok := c.Get("Definition", "ignoreregex"); !ok || v != "" {
		t.Errorf("ignoreregex = %q, %v", v, ok)
	}
	if v, _ := c.Get("Init", "_daemon"); v != "app" {
		t.Errorf("DEFAULT fall-through = %q", v)
	}
	if v, _ := c.GetWith("Init", "mode", map[string]string{"Mode": "aggressive"}); v != "aggressive" {
		t.Errorf("GetWith mode = %q", v)
	}
	if _, ok := c.Get("Definition", "missing"); ok {
		t.Error("missing key found")
	}
}

func TestReadConfErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no header", "failregex = x\n", "before any [section]"},
		{"dup key", "[Definition]\na = 1\na = 2\n", "sets \"a\" twice"},
		{"no delimiter", "[Definition]\njust words\n", "is not `key = value`"},
		{"dup section", "[A]\na=1\n[A]\nb=2\n", "appears twice"},
	}
	for _, tt := range tests {
		_, err := ReadConfBytes([]byte(tt.src), "x.conf")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	c, err := ReadConfBytes([]byte("[A]\na = %(b)s\nc = %(c)s\nd = 100%\ne = 100%%\n"), "x.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, err := c.GetErr("A", k, nil); err == nil {
			t.Errorf("%s interpolated without error", k)
		}
	}
	if v, _ := c.Get("A", "e"); v != "100%" {
		t.Errorf("e = %q", v)
	}
	if _, err := ReadConf(t.TempDir(), "jail"); err == nil || !strings.Contains(err.Error(), "no jail.conf") {
		t.Errorf("missing: %v", err)
	}
}

func TestParseFilterSpec(t *testing.T) {
	tests := []struct {
		in   string
		name string
		args map[string]string
		bad  bool
	}{
		{"sshd", "sshd", map[string]string{}, false},
		{"sshd[mode=aggressive]", "sshd", map[string]string{"mode": "aggressive"}, false},
		{`sshd[mode=aggressive, port="ssh,2222", x='a]b']`, "sshd", map[string]string{"mode": "aggressive", "port": "ssh,2222", "x": "a]b"}, false},
		{"a[x=1][y=2]", "a", map[string]string{"x": "1", "y": "2"}, false},
		{"[x=1]", "", nil, true},
		{"a[x]", "", nil, true},
		{"a[x=1", "", nil, true},
		{"a[x='1]", "", nil, true},
	}
	for _, tt := range tests {
		name, args, err := ParseFilterSpec(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err = %v", tt.in, err)
			continue
		}
		if !tt.bad && (name != tt.name || !reflect.DeepEqual(args, tt.args)) {
			t.Errorf("%q = %q %v", tt.in, name, args)
		}
	}
}

// TestReadSystemJail reads the installed Debian configuration, when there.
func TestReadSystemJail(t *testing.T) {
	if _, err := os.Stat("/etc/fail2ban/jail.conf"); err != nil {
		t.Skip("/etc/fail2ban/jail.conf not installed (apt-get install fail2ban): skipped")
	}
	c, err := ReadConf("/etc/fail2ban", "jail")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sections()) < 20 {
		t.Errorf("jail.conf: %d sections", len(c.Sections()))
	}
	v, ok := c.Get("sshd", "logpath")
	if !ok || v == "" || strings.Contains(v, "%(") {
		t.Errorf("sshd logpath = %q", v)
	}
	if v, ok := c.Get("sshd", "maxretry"); !ok || v == "" {
		t.Errorf("sshd maxretry = %q", v)
	}
}
