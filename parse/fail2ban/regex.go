package fail2ban

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The expansions of fail2ban's address tags (failregex.py's R_HOST). The
// IPv6 form differs from fail2ban's in one place, exactly: fail2ban ends it
// with (?<=:): — a colon preceded by a colon — and every alternative of the
// repetition before it ends with a colon, so the lookbehind always holds
// and a plain ":" matches the same strings without a lookbehind.
const (
	reIP4    = `(?:\d{1,3}\.){3}\d{1,3}`
	reIP6    = `(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)`
	tagIP4   = `(?:::f{4,6}:)?(?P<ip4>` + reIP4 + `)`
	tagIP6   = `(?P<ip6>` + reIP6 + `)`
	tagDNS   = `(?P<dns>[\w\-.^_]*\w)`
	tagCIDR  = `(?P<cidr>\d+)`
	tagADDR  = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)\]?`
	tagHOST  = `(?:` + tagADDR + `|` + tagDNS + `)`
	tagSUBNT = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)(?:/` + tagCIDR + `)?\]?`
)

var hostTags = map[string]string{
	"IP4": tagIP4, "F-IP4/": tagIP4,
	"IP6": tagIP6, "F-IP6/": tagIP6,
	"ADDR": tagADDR, "F-ADDR/": tagADDR,
	"CIDR": tagCIDR, "F-CIDR/": tagCIDR,
	"SUBNET": tagSUBNT, "F-SUBNET/": tagSUBNT,
	"DNS": tagDNS, "F-DNS/": tagDNS,
	"F-ID/":   `(?P<fid>\S+)`,
	"F-PORT/": `(?P<fport>\w+)`,
}

var (
	ftag      = regexp.MustCompile(`</?[\w\-]+/?>`)
	fcustName = regexp.MustCompile(`^(/?)F-([A-Z0-9_\-]+)$`)
)

// groupName is fail2ban's mapTag2Opt: F-ID is fid, F-PORT fport, the rest
// lower case (F-USER is user, F-ALT_USER alt_user).
func groupName(tag string) string {
	t := strings.ToLower(tag)
	switch t {
	case "id":
		return "fid"
	case "port":
		return "fport"
	}
	return t
}

// expandTags replaces fail2ban's tags in a failregex, as
// Regex._resolveHostTag does: <HOST> (without DNS names when useDNS is
// "no"), <ADDR>, <IP4>, <IP6>, <DNS>, <CIDR>, <SUBNET>, <SKIPLINES>, and
// <F-NAME>...</F-NAME> as the named group "name". Unknown tags stay as
// written (they are then literal text in the expression).
func expandTags(re string, useDNS string) string {
	open := map[string]bool{}
	nl := 0
	return ftag.ReplaceAllStringFunc(re, func(tag string) string {
		tn := tag[1 : len(tag)-1]
		switch tn {
		case "HOST":
			if useDNS == "no" {
				return tagADDR
			}
			return tagHOST
		case "SKIPLINES":
			s := fmt.Sprintf(`\n(?P<skiplines%d>(?:(?:.*\n)*?))`, nl)
			nl++
			return s
		}
		if s, ok := hostTags[tn]; ok {
			return s
		}
		m := fcustName.FindStringSubmatch(tn)
		if m == nil {
			return tag
		}
		name := m[2]
		if m[1] != "" {
			if open[name] {
				return ")"
			}
			return tag
		}
		open[name] = true
		return "(?P<" + groupName(name) + ">"
	})
}

// dialect is the syntax a Python expression is translated to.
type dialect int

const (
	dialectRE2 dialect = iota // Go's regexp
	dialectNET                // regexp2's default (.NET) syntax
)

// translation is the result of translating one Python expression.
type translation struct {
	expr     string
	problems []string // why it is not RE2 (empty when it is)
}

// translate rewrites a Python regular expression (after expandTags) in
// the target dialect. For RE2 it lists every construct RE2 cannot run;
// for .NET only what neither engine can.
func translate(py string, d dialect) translation {
	t := translator{src: py, d: d, groups: scanGroups(py)}
	t.run()
	if d == dialectRE2 && len(t.problems) > 0 && len(t.backrefs) > 0 && !t.refused {
		if out, ok := expandBackrefs(py); ok {
			t2 := translator{src: out, d: d, groups: scanGroups(out)}
			t2.run()
			if len(t2.problems) == 0 {
				return translation{expr: t2.out.String()}
			}
		}
	}
	return translation{expr: t.out.String(), problems: dedupe(t.problems)}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

type translator struct {
	src      string
	d        dialect
	i        int
	out      strings.Builder
	problems []string
	backrefs []string // names referenced by (?P=name)
	groups   pyGroups
	refused  bool // a reference Python refuses, or one that cannot be kept
}

func (t *translator) problem(format string, args ...any) {
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

// refuse records a problem no engine or rewriting gets around.
func (t *translator) refuse(format string, args ...any) {
	t.refused = true
	t.problem(format, args...)
}

// pyGroup is one capturing group of a Python expression.
type pyGroup struct {
	name        string // "" when unnamed
	open, close int    // offsets of its "(" and ")"; close is -1 when unterminated
	netNum      int    // an unnamed group's number in regexp2
}

// pyGroups are an expression's capturing groups in Python's numbering:
// list[n-1] is group n, counted by opening parenthesis, named or not.
// regexp2 (like .NET) numbers the unnamed groups first and the named ones
// after them, so a numbered reference is rewritten: \k<name> for a named
// group, the regexp2 number for an unnamed one.
type pyGroups struct {
	list  []pyGroup
	names map[string]int // how many groups carry each name
}

// scanGroups lists the capturing groups of s as the translator reads it.
func scanGroups(s string) pyGroups {
	g := pyGroups{names: map[string]int{}}
	var stack []int // index in g.list, or -1 for a group that captures nothing
	unnamed := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(s, i)
		case ')':
			if n := len(stack); n > 0 {
				if k := stack[n-1]; k >= 0 {
					g.list[k].close = i
				}
				stack = stack[:n-1]
			}
		case '(':
			rest := s[i:]
			switch {
			case strings.HasPrefix(rest, "(?P<"):
				end := strings.IndexByte(rest, '>')
				if end < 0 {
					return g // the translator reports it
				}
				name := rest[4:end]
				g.list = append(g.list, pyGroup{name: name, open: i, close: -1})
				g.names[name]++
				stack = append(stack, len(g.list)-1)
				i += end
			case strings.HasPrefix(rest, "(?#"), strings.HasPrefix(rest, "(?("):
				// A comment, or a condition: its ")" closes no group.
				end := strings.IndexByte(rest[2:], ')')
				if end < 0 {
					return g
				}
				if rest[2] == '(' {
					stack = append(stack, -1)
				}
				i += 2 + end
			case strings.HasPrefix(rest, "(?"):
				stack = append(stack, -1)
			default:
				unnamed++
				g.list = append(g.list, pyGroup{open: i, close: -1, netNum: unnamed})
				stack = append(stack, len(g.list)-1)
			}
		}
	}
	return g
}

// named returns the group called name that opens before offset at, as
// Python resolves a name: it refuses a name defined only later.
func (g pyGroups) named(name string, at int) (pyGroup, bool) {
	for _, x := range g.list {
		if x.name == name && x.open < at {
			return x, true
		}
	}
	return pyGroup{}, false
}

// mergedRef is why a reference to a name several groups share cannot be
// kept: Python has one group per name (it refuses a second), so the name
// was shared by renaming — a rule's source_name is <HOST>'s ip4, ip6 and
// dns at once — and what the shared name holds is not what the one group
// held.
const mergedRef = "it refers to group %q, a name more than one group of the expression has (a rule merges <HOST>'s ip4, ip6 and dns into source_name, and user with alt_user): the reference cannot be kept; refer to a group of your own (<F-NAME>...</F-NAME>) instead"

// groupRef checks a reference written ref at t.i to Python's group n
// (backreferences need it closed before them; conditionals only need it
// to exist) and returns how regexp2 names it: "<name>" or its number.
func (t *translator) groupRef(ref string, n int, closed bool) (string, bool) {
	if n < 1 || n > len(t.groups.list) {
		t.refuse("%s: there is no group %d, Python refuses it (invalid group reference)", ref, n)
		return "", false
	}
	g := t.groups.list[n-1]
	if closed && (g.close < 0 || g.close > t.i) {
		t.refuse("%s: group %d is not closed before it, Python refuses it (invalid group reference)", ref, n)
		return "", false
	}
	if g.name == "" {
		return fmt.Sprint(g.netNum), true
	}
	if t.groups.names[g.name] > 1 {
		t.refuse("%s: "+mergedRef, ref, g.name)
		return "", false
	}
	return "<" + g.name + ">", true
}

// nameRef checks a reference written ref at t.i to the group called name.
func (t *translator) nameRef(ref, name string, closed bool) bool {
	g, ok := t.groups.named(name, t.i)
	switch {
	case !ok:
		t.refuse("%s: no group %q opens before it, Python refuses it (unknown group name)", ref, name)
	case closed && (g.close < 0 || g.close > t.i):
		t.refuse("%s: group %q is not closed before it, Python refuses it (cannot refer to an open group)", ref, name)
	case t.groups.names[name] > 1:
		t.refuse("%s: "+mergedRef, ref, name)
	default:
		return true
	}
	return false
}

func (t *translator) run() {
	s := t.src
	for t.i < len(s) {
		c := s[t.i]
		switch c {
		case '\\':
			t.escape(false)
		case '[':
			t.class()
		case '(':
			t.group()
		case '{':
			t.brace()
		case '*', '+', '?':
			t.out.WriteByte(c)
			t.i++
			if t.i < len(s) && s[t.i] == '+' {
				// Python 3.11's possessive quantifiers.
				if t.d == dialectRE2 {
					t.problem("possessive quantifier %c+ (no backtracking into it): RE2 has none", c)
				} else {
					t.problem("possessive quantifier %c+: not supported by either engine", c)
				}
				t.i++
			} else if t.i < len(s) && s[t.i] == '?' {
				t.out.WriteByte('?')
				t.i++
			}
		default:
			t.out.WriteByte(c)
			t.i++
		}
	}
}

// brace handles "{": Python reads {,n} as {0,n}; Go and .NET take it
// literally. Anything that is not a repetition is a literal brace.
func (t *translator) brace() {
	s := t.src
	j := t.i + 1
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	lo := s[j:k]
	if k < len(s) && s[k] == '}' && lo != "" {
		t.out.WriteString(s[t.i : k+1])
		t.i = k + 1
		t.lazyOrPossessive()
		return
	}
	if k < len(s) && s[k] == ',' {
		m := k + 1
		for m < len(s) && s[m] >= '0' && s[m] <= '9' {
			m++
		}
		if m < len(s) && s[m] == '}' {
			hi := s[k+1 : m]
			if lo == "" {
				lo = "0"
			}
			if o := t.out.String(); o == "" || strings.HasSuffix(o, "(") || strings.HasSuffix(o, "|") || strings.HasSuffix(o, "(?:") || endsWithQuantifier(o) {
				t.problem("repetition {%s} with nothing to repeat", s[t.i+1:m])
				t.i = m + 1
				return
			}
			t.out.WriteString("{" + lo + "," + hi + "}")
			t.i = m + 1
			t.lazyOrPossessive()
			return
		}
	}
	t.out.WriteString(`\{`)
	t.i++
}

// endsWithQuantifier reports an unescaped *, +, ? or } at the end of o.
func endsWithQuantifier(o string) bool {
	if o == "" || strings.IndexByte("*+?}", o[len(o)-1]) < 0 {
		return false
	}
	n := 0
	for i := len(o) - 2; i >= 0 && o[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}

func (t *translator) lazyOrPossessive() {
	if t.i < len(t.src) && t.src[t.i] == '?' {
		t.out.WriteByte('?')
		t.i++
	} else if t.i < len(t.src) && t.src[t.i] == '+' {
		t.problem("possessive quantifier {...}+: neither engine has it")
		t.i++
	}
}

// escape copies one backslash escape, translating Python's spelling.
func (t *translator) escape(inClass bool) {
	s := t.src
	if t.i+1 >= len(s) {
		t.problem("trailing backslash")
		t.i++
		return
	}
	c := s[t.i+1]
	switch {
	case c == 'Z':
		if inClass {
			t.problem(`\Z inside a character class`)
		}
		t.out.WriteString(`\z`)
		t.i += 2
	case c == 'A' || c == 'b' || c == 'B':
		if inClass && c == 'b' {
			t.out.WriteString(`\x08`)
		} else if inClass {
			t.problem(`\%c inside a character class`, c)
		} else {
			t.out.WriteString(s[t.i : t.i+2])
		}
		t.i += 2
	case strings.IndexByte("dDwWsStnrfva", c) >= 0:
		t.out.WriteString(s[t.i : t.i+2])
		t.i += 2
	case c == 'x':
		if t.i+4 <= len(s) && isHex(s[t.i+2:t.i+4]) {
			t.out.WriteString(s[t.i : t.i+4])
			t.i += 4
			return
		}
		t.problem(`bad \x escape`)
		t.i += 2
	case c == 'u' || c == 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if t.i+2+n <= len(s) && isHex(s[t.i+2:t.i+2+n]) {
			hex := strings.TrimLeft(s[t.i+2:t.i+2+n], "0")
			if hex == "" {
				hex = "0"
			}
			if t.d == dialectRE2 || len(hex) <= 4 {
				if t.d == dialectRE2 {
					t.out.WriteString(`\x{` + hex + `}`)
				} else {
					t.out.WriteString(`\u` + strings.Repeat("0", 4-len(hex)) + hex)
				}
			} else {
				t.problem(`\U escape beyond the Basic Multilingual Plane`)
			}
			t.i += 2 + n
			return
		}
		t.problem(`bad \%c escape`, c)
		t.i += 2
	case c == '0':
		// Octal: \0, \0o, \0oo.
		j := t.i + 2
		for j < len(s) && j < t.i+4 && s[j] >= '0' && s[j] <= '7' {
			j++
		}
		v := 0
		for _, d := range s[t.i+1 : j] {
			v = v*8 + int(d-'0')
		}
		if t.d == dialectNET {
			fmt.Fprintf(&t.out, `\u%04x`, v)
		} else {
			fmt.Fprintf(&t.out, `\x{%x}`, v)
		}
		t.i = j
	case c >= '1' && c <= '9':
		// Python's rule: three octal digits are a character, else one
		// or two digits are the number of a group.
		j := t.i + 2
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if !inClass && j == t.i+3 && j < len(s) && isOctal(s[t.i+1]) && isOctal(s[t.i+2]) && isOctal(s[j]) {
			v := int(s[t.i+1]-'0')<<6 | int(s[t.i+2]-'0')<<3 | int(s[j]-'0')
			if v > 0o377 {
				t.refuse(`octal escape \%s is above \377: Python refuses it`, s[t.i+1:j+1])
			} else if t.d == dialectNET {
				fmt.Fprintf(&t.out, `\u%04x`, v)
			} else {
				fmt.Fprintf(&t.out, `\x{%x}`, v)
			}
			t.i = j + 1
			return
		}
		ref := s[t.i:j]
		if inClass {
			t.problem(`octal escape %s in a class`, ref)
			t.i = j
			return
		}
		n := int(s[t.i+1] - '0')
		if j == t.i+3 {
			n = n*10 + int(s[t.i+2]-'0')
		}
		net, ok := t.groupRef("backreference "+ref, n, true)
		switch {
		case !ok:
		case t.d == dialectRE2:
			t.problem(`backreference %s (the text of an earlier group again): RE2 has no backreferences`, ref)
		case net[0] == '<':
			t.out.WriteString(`\k` + net)
		case j < len(s) && s[j] >= '0' && s[j] <= '9':
			t.out.WriteString(`(?:\` + net + `)`) // a digit after it is literal
		default:
			t.out.WriteString(`\` + net)
		}
		t.i = j
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		t.problem(`unknown escape \%c`, c)
		t.i += 2
	case c == '_' || c >= utf8.RuneSelf:
		// Python takes these escapes literally; RE2 and .NET refuse them.
		_, size := utf8.DecodeRuneInString(s[t.i+1:])
		if c == '_' {
			t.out.WriteByte('_')
		} else {
			t.out.WriteString(regexp.QuoteMeta(s[t.i+1 : t.i+1+size]))
		}
		t.i += 1 + size
	default:
		// Escaped punctuation is itself.
		t.out.WriteByte('\\')
		t.i++
		t.out.WriteByte(s[t.i])
		t.i++
	}
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// class copies a character class. Python takes "]" right after "[" or
// "[^" literally, and "[" inside a class is a literal; both are escaped in
// the output so that no engine reads [:alpha:] or a nested class.
func (t *translator) class() {
	s := t.src
	t.out.WriteByte('[')
	t.i++
	if t.i < len(s) && s[t.i] == '^' {
		t.out.WriteByte('^')
		t.i++
	}
	first := true
	for t.i < len(s) {
		c := s[t.i]
		switch {
		case c == ']' && !first:
			t.out.WriteByte(']')
			t.i++
			return
		case c == ']':
			t.out.WriteString(`\]`)
			t.i++
		case c == '\\':
			t.escape(true)
		case c == '[':
			t.out.WriteString(`\[`)
			t.i++
		default:
			t.out.WriteByte(c)
			t.i++
		}
		first = false
	}
	t.problem("unterminated character class")
}

// group handles "(" and the (?...) extensions.
func (t *translator) group() {
	s := t.src
	if !strings.HasPrefix(s[t.i:], "(?") {
		t.out.WriteByte('(')
		t.i++
		return
	}
	rest := s[t.i+2:]
	switch {
	case strings.HasPrefix(rest, "P<"):
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			t.problem("unterminated group name")
			t.i = len(s)
			return
		}
		name := rest[2:end]
		if !isGroupName(name) {
			t.refuse("group name %q: Python wants a name of letters, digits and _ that does not start with a digit (and phalanx ASCII)", name)
		}
		if t.d == dialectNET {
			t.out.WriteString("(?<" + name + ">")
		} else {
			t.out.WriteString("(?P<" + name + ">")
		}
		t.i += 2 + end + 1
	case strings.HasPrefix(rest, "P="):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			t.problem("unterminated backreference")
			t.i = len(s)
			return
		}
		name := rest[2:end]
		t.backrefs = append(t.backrefs, name)
		if !t.nameRef("backreference (?P="+name+")", name, true) {
			// refused
		} else if t.d == dialectNET {
			t.out.WriteString(`\k<` + name + `>`)
		} else {
			t.problem("backreference (?P=%s) (the same text as group %q again): RE2 has no backreferences", name, name)
		}
		t.i += 2 + end + 1
	case strings.HasPrefix(rest, "#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			t.i = len(s)
			return
		}
		t.i += 2 + end + 1
	case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"),
		strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
		kind := map[string]string{"=": "lookahead (?=...)", "!": "negative lookahead (?!...)", "<=": "lookbehind (?<=...)", "<!": "negative lookbehind (?<!...)"}
		k := rest[:1]
		if k == "<" {
			k = rest[:2]
		}
		if t.d == dialectRE2 {
			t.problem("%s: RE2 has no lookaround", kind[k])
		}
		t.out.WriteString("(?" + k)
		t.i += 2 + len(k)
	case strings.HasPrefix(rest, "("):
		if t.d == dialectRE2 {
			t.problem("conditional (?(group)yes|no): RE2 has no conditionals")
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			t.problem("unterminated conditional")
			t.i = len(s)
			return
		}
		cond := rest[1:end]
		ref := "conditional (?(" + cond + ")"
		if n, err := strconv.Atoi(cond); err == nil && allDigits(cond) {
			if net, ok := t.groupRef(ref, n, false); ok {
				cond = strings.Trim(net, "<>")
			}
		} else {
			t.nameRef(ref, cond, false)
		}
		t.out.WriteString("(?(" + cond + ")")
		t.i += 2 + end + 1
	case strings.HasPrefix(rest, ">"):
		if t.d == dialectRE2 {
			t.problem("atomic group (?>...): RE2 has none")
		}
		t.out.WriteString("(?>")
		t.i += 3
	case strings.HasPrefix(rest, ":"):
		t.out.WriteString("(?:")
		t.i += 3
	default:
		// Flags: (?aiLmsux) or (?aiLmsux-imsx:...).
		j := 0
		for j < len(rest) && strings.IndexByte("aiLmsux-", rest[j]) >= 0 {
			j++
		}
		if j == 0 || j >= len(rest) || (rest[j] != ')' && rest[j] != ':') {
			t.problem("unknown group extension (?%s", clip(rest))
			t.out.WriteString("(?")
			t.i += 2
			return
		}
		var keep strings.Builder
		for _, f := range rest[:j] {
			switch f {
			case 'i', 'm', 's', '-':
				keep.WriteRune(f)
			case 'x':
				t.problem("verbose flag (?x): rewrite the expression without it")
			case 'L':
				t.problem("locale flag (?L)")
			}
			// a and u: ASCII/Unicode classes; dropped (see the package doc)
		}
		k := strings.TrimSuffix(keep.String(), "-")
		switch {
		case k == "" && rest[j] == ')':
			// nothing left
		case k == "" || strings.HasPrefix(k, "-") && len(k) == 1:
			t.out.WriteString("(?:")
		default:
			t.out.WriteString("(?" + k + string(rest[j]))
		}
		t.i += 2 + j + 1
	}
}

// isGroupName reports a name Python takes for a group (an identifier)
// and RE2 and regexp2 take too (ASCII).
func isGroupName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

// expandBackrefs rewrites the common exact case of a backreference:
// a named group at the top level of the expression whose text can only be
// one of a few strings, referred to later at the top level, becomes an
// alternation with one branch per string:
//
//	a(?P<q>"?)b(?P=q)c  →  a(?:(?P<q>)b|(?P<q>")b")c
//
// It reports false when the expression is not of that shape.
func expandBackrefs(py string) (string, bool) {
	refAt := strings.Index(py, "(?P=")
	if refAt < 0 {
		return "", false
	}
	end := strings.IndexByte(py[refAt:], ')')
	if end < 0 {
		return "", false
	}
	name := py[refAt+4 : refAt+end]
	if strings.Contains(py[refAt+end:], "(?P="+name+")") {
		return "", false // referred to more than once: leave it
	}
	open := strings.Index(py, "(?P<"+name+">")
	if open < 0 || open > refAt {
		return "", false
	}
	// The group and the reference must sit side by side in one sequence:
	// the same enclosing group, with no alternation at that level.
	encl := enclosingOpen(py, open)
	if encl != enclosingOpen(py, refAt) {
		return "", false
	}
	lo, hi := 0, len(py)
	if encl >= 0 {
		lo, hi = encl+1, matchingParen(py, encl)
		if hi < 0 {
			return "", false
		}
	}
	if hasTopAlternation(py[lo:hi]) {
		return "", false
	}
	gend := matchingParen(py, open)
	if gend < 0 || gend > refAt {
		return "", false
	}
	values, ok := finiteStrings(py[open+len("(?P<"+name+">") : gend])
	if !ok || len(values) > 16 {
		return "", false
	}
	var b strings.Builder
	b.WriteString(py[:open])
	b.WriteString("(?:")
	for i, v := range values {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString("(?P<" + name + ">" + regexp.QuoteMeta(v) + ")")
		b.WriteString(py[gend+1 : refAt])
		b.WriteString(regexp.QuoteMeta(v))
	}
	b.WriteString(")")
	b.WriteString(py[refAt+end+1:])
	return b.String(), true
}

// enclosingOpen is the index of the "(" whose group contains byte at, or
// -1 at the top level.
func enclosingOpen(s string, at int) int {
	var stack []int
	for i := 0; i < at && i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(s, i)
		case '(':
			stack = append(stack, i)
		case ')':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 {
		return -1
	}
	return stack[len(stack)-1]
}

func hasTopAlternation(s string) bool {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(s, i)
		case '(':
			d++
		case ')':
			d--
		case '|':
			if d == 0 {
				return true
			}
		}
	}
	return false
}

// classEnd returns the index of the "]" closing the class opened at i.
func classEnd(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '^' {
		j++
	}
	if j < len(s) && s[j] == ']' {
		j++
	}
	for ; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == ']' {
			return j
		}
	}
	return len(s)
}

// matchingParen returns the index of the ")" closing the "(" at i.
func matchingParen(s string, i int) int {
	d := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '[':
			j = classEnd(s, j)
		case '(':
			d++
		case ')':
			d--
			if d == 0 {
				return j
			}
		}
	}
	return -1
}

// finiteStrings lists the strings a simple expression can match: literal
// characters, escaped punctuation, classes of literal characters, each
// optionally followed by "?", and top-level alternation. ok is false for
// anything else.
func finiteStrings(s string) ([]string, bool) {
	if s == "" {
		return []string{""}, true
	}
	var alts []string
	d := 0
	last := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(s, i)
		case '(':
			d++
		case ')':
			d--
		case '|':
			if d == 0 {
				alts = append(alts, s[last:i])
				last = i + 1
			}
		}
	}
	if d != 0 {
		return nil, false
	}
	alts = append(alts, s[last:])
	var out []string
	for _, a := range alts {
		vs, ok := finiteSeq(a)
		if !ok {
			return nil, false
		}
		out = append(out, vs...)
		if len(out) > 16 {
			return nil, false
		}
	}
	return out, true
}

func finiteSeq(s string) ([]string, bool) {
	set := []string{""}
	for i := 0; i < len(s); {
		var atom []string
		switch c := s[i]; {
		case c == '\\':
			if i+1 >= len(s) || isWordByte(s[i+1]) {
				return nil, false
			}
			atom = []string{s[i+1 : i+2]}
			i += 2
		case c == '[':
			e := classEnd(s, i)
			if e >= len(s) || s[i+1] == '^' {
				return nil, false
			}
			for j := i + 1; j < e; j++ {
				if s[j] == '\\' {
					if j+1 >= e || isWordByte(s[j+1]) {
						return nil, false
					}
					j++
				} else if s[j] == '-' && j > i+1 && j < e-1 {
					return nil, false // a range: possible but not worth it
				}
				atom = append(atom, s[j:j+1])
			}
			i = e + 1
		case strings.IndexByte(".()|*+?{}^$", c) >= 0:
			return nil, false
		default:
			if c >= 0x80 {
				return nil, false
			}
			atom = []string{s[i : i+1]}
			i++
		}
		if i < len(s) && s[i] == '?' {
			atom = append(atom, "")
			i++
			if i < len(s) && (s[i] == '?' || s[i] == '+') {
				return nil, false
			}
		}
		if i < len(s) && strings.IndexByte("*+{", s[i]) >= 0 {
			return nil, false
		}
		var next []string
		for _, p := range set {
			for _, a := range atom {
				next = append(next, p+a)
			}
		}
		if len(next) > 16 {
			return nil, false
		}
		set = next
	}
	return set, true
}
