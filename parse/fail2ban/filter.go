package fail2ban

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dlclark/regexp2/v2"

	"github.com/phalanx-defence/phalanx/parse/fail2ban/datedetect"
)

// Engine says which regular-expression engine runs an expression.
type Engine string

const (
	// EngineRE2 is Go's regexp: linear time whatever the input.
	EngineRE2 Engine = "re2"
	// EngineBacktracking is github.com/dlclark/regexp2 (Python-like
	// lookaround, backreferences, conditionals), bounded by MatchTimeout
	// per line. Only expressions RE2 cannot run use it.
	EngineBacktracking Engine = "backtracking"
	// EngineNone marks an expression that neither engine can run; the
	// filter runs without it and its Problem says why.
	EngineNone Engine = "none"
)

// MatchTimeout bounds one backtracking match of one line: a line crafted
// to make an expression backtrack is given up on (as not matching) after
// this long, so it cannot stall ingestion.
const MatchTimeout = 50 * time.Millisecond

// Problem is an expression that does not run on RE2, with the reason:
// either it runs on the backtracking engine (Fallback), or it does not run
// at all. Nothing is dropped without one.
type Problem struct {
	Filter   string `json:"filter"`
	Option   string `json:"option"` // failregex, ignoreregex, prefregex, datepattern, maxlines
	Index    int    `json:"index"`  // position in the option's list, from 0
	Expr     string `json:"expr"`   // as the filter writes it (after fail2ban's substitutions)
	Reason   string `json:"reason"`
	Fallback bool   `json:"fallback"` // true: it runs on the backtracking engine
}

func (p Problem) String() string {
	what := "not used"
	if p.Fallback {
		what = "runs on the backtracking engine"
	}
	return fmt.Sprintf("%s: %s[%d] %s: %s\n    %s", p.Filter, p.Option, p.Index, what, p.Reason, p.Expr)
}

// Expr is one compiled expression of a filter.
type Expr struct {
	Option string // failregex, ignoreregex or prefregex
	Index  int
	// Source is the expression as fail2ban has it after interpolation and
	// <tag> substitution, with fail2ban's <HOST>-style tags still in.
	Source string
	// Python is Source with the tags expanded: what fail2ban compiles.
	Python string
	// RE2 is the Go regexp equivalent; "" when there is none.
	RE2    string
	Engine Engine

	re    *regexp.Regexp
	bt    *regexp2.Regexp
	names []string
}

// Filter is a fail2ban filter loaded and compiled for phalanx.
type Filter struct {
	Name string            // the filter's name (sshd)
	Args map[string]string // its arguments (mode=aggressive), as given
	File string            // the main file it was read from

	Prefregex    *Expr
	Failregex    []*Expr
	Ignoreregex  []*Expr
	Datepattern  string
	MaxLines     int
	JournalMatch []string
	UseDNS       string

	// Problems lists every expression that is not plain RE2, and every
	// option phalanx cannot honour, with the reason.
	Problems []Problem

	dates *datedetect.Detector
}

// Mode returns the filter's mode argument ("" when it has none).
func (f *Filter) Mode() string { return f.Args["mode"] }

// LoadOptions tunes loading; the zero value is fail2ban's defaults.
type LoadOptions struct {
	Location *time.Location   // zone of dates without one; default time.Local
	Now      func() time.Time // for dates without a year; default time.Now
}

// LoadFilter reads root/filter.d/name.conf (with .local and includes) and
// compiles it with the given arguments (what a jail writes as
// filter = name[mode=aggressive]); args may be nil.
func LoadFilter(root, name string, args map[string]string) (*Filter, error) {
	return LoadFilterOptions(root, name, args, LoadOptions{})
}

// LoadFilterOptions is LoadFilter with options.
func LoadFilterOptions(root, name string, args map[string]string, o LoadOptions) (*Filter, error) {
	c, err := ReadConf(root, filepath.Join("filter.d", name))
	if err != nil {
		return nil, err
	}
	f, err := newFilter(c, name, args, o)
	if err != nil {
		return nil, err
	}
	f.File = filepath.Join(root, "filter.d", name+".conf")
	return f, nil
}

// LoadFilterFile loads a filter from a file, as fail2ban-regex does: a
// file inside a filter.d directory is loaded by name from the directory
// above (with its .local and includes); any other file is read alone with
// its includes. spec may carry arguments, as path[mode=aggressive], or a
// mode alone, as path:aggressive.
func LoadFilterFile(spec string, o LoadOptions) (*Filter, error) {
	path, args, err := splitFileSpec(spec)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".conf"), ".local")
	dir := filepath.Dir(path)
	if filepath.Base(dir) == "filter.d" {
		f, err := LoadFilterOptions(filepath.Dir(dir), name, args, o)
		if err != nil {
			return nil, err
		}
		f.File = path
		return f, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("fail2ban: %w: give the path of a filter file such as /etc/fail2ban/filter.d/sshd.conf", err)
	}
	c, err := ReadConfFile(path)
	if err != nil {
		return nil, err
	}
	f, err := newFilter(c, name, args, o)
	if err != nil {
		return nil, err
	}
	f.File = path
	return f, nil
}

// LoadFilterBytes compiles a filter from the text of one file (no
// includes): for tests and fuzzing.
func LoadFilterBytes(data []byte, name string, args map[string]string, o LoadOptions) (*Filter, error) {
	c, err := ReadConfBytes(data, name+".conf")
	if err != nil {
		return nil, err
	}
	return newFilter(c, name, args, o)
}

// splitFileSpec splits FILE.conf[args], FILE.conf:MODE or FILE.conf.
func splitFileSpec(spec string) (string, map[string]string, error) {
	if strings.HasSuffix(spec, "]") && strings.Contains(spec, "[") {
		name, args, err := ParseFilterSpec(spec)
		return name, args, err
	}
	args := map[string]string{}
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if _, err := os.Stat(spec); err != nil {
			mode := spec[i+1:]
			if mode == "" || strings.ContainsAny(mode, "/\\") {
				return "", nil, fmt.Errorf("fail2ban: %q: write FILE.conf:MODE, e.g. sshd.conf:aggressive", spec)
			}
			args["mode"] = mode
			spec = spec[:i]
		}
	}
	return spec, args, nil
}

// filterOptions are FilterReader's options, in its order.
var filterOptions = []string{"usedns", "prefregex", "ignoreregex", "failregex", "maxlines", "datepattern", "journalmatch"}

// newFilter resolves the filter's options as fail2ban's FilterReader
// (getOptions, then getCombined) does, and compiles them.
func newFilter(c *Conf, name string, args map[string]string, o LoadOptions) (*Filter, error) {
	if args == nil {
		args = map[string]string{}
	}
	f := &Filter{Name: name, Args: args}
	pOpts := lowerKeys(args)
	if pOpts == nil {
		pOpts = map[string]string{}
	}
	opts := map[string]string{}
	if c.HasSection("Definition") {
		for _, k := range filterOptions {
			if _, ok := pOpts[k]; ok {
				continue
			}
			v, err := c.GetErr("Definition", k, pOpts)
			if errors.Is(err, ErrNoOption) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("fail2ban: filter %s: %w", name, err)
			}
			opts[k] = v
		}
	}
	init := map[string]string{}
	for k, v := range pOpts {
		init[k] = v
	}
	if c.HasSection("Init") {
		for _, k := range c.Keys("Init") {
			v, err := c.GetErr("Init", k, nil)
			if err != nil {
				return nil, fmt.Errorf("fail2ban: filter %s: [Init] %w", name, err)
			}
			if !strings.HasPrefix(k, "known/") {
				init["known/"+k] = v
			}
			if _, ok := init[k]; !ok {
				init[k] = v
			}
		}
	}
	combined := map[string]string{}
	for k, v := range opts {
		combined[k] = v
	}
	for k, v := range init {
		combined[k] = v
	}
	ignore := map[string]bool{}
	for k := range combined {
		if m := conditionalSection.FindStringSubmatch(k); m != nil {
			ignore[m[1]] = true
		}
	}
	cache := map[string]*string{}
	addrepl := func(tag string) (string, bool) {
		if v, ok := cache[tag]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
		v, err := c.getEx("Definition", tag, pOpts)
		if err != nil {
			cache[tag] = nil
			return "", false
		}
		cache[tag] = &v
		return v, true
	}
	resolved, err := substituteTags(combined, ignore, addrepl)
	if err != nil {
		return nil, fmt.Errorf("fail2ban: filter %s: %w", name, err)
	}
	f.UseDNS = resolved["usedns"]
	if f.UseDNS == "" {
		f.UseDNS = "warn"
	}
	f.MaxLines = 1
	if v, ok := resolved["maxlines"]; ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 1:
			f.Problems = append(f.Problems, Problem{Filter: name, Option: "maxlines", Expr: v, Reason: "not a positive number: fail2ban uses its default of 1"})
		case n > maxLinesCap:
			f.Problems = append(f.Problems, Problem{Filter: name, Option: "maxlines", Expr: v, Reason: fmt.Sprintf("more than %d lines are not buffered (memory bound): %d used", maxLinesCap, maxLinesCap)})
			f.MaxLines = maxLinesCap
		default:
			f.MaxLines = n
		}
	}
	multi := f.MaxLines > 1
	if v := resolved["prefregex"]; strings.TrimSpace(v) != "" {
		f.Prefregex = f.compileExpr("prefregex", 0, v, false)
	}
	for i, v := range splitLines(resolved["failregex"]) {
		if e := f.compileExpr("failregex", i, v, multi); e != nil {
			f.Failregex = append(f.Failregex, e)
		}
	}
	for i, v := range splitLines(resolved["ignoreregex"]) {
		if e := f.compileExpr("ignoreregex", i, v, false); e != nil {
			f.Ignoreregex = append(f.Ignoreregex, e)
		}
	}
	f.Datepattern = resolved["datepattern"]
	for _, v := range splitLines(resolved["journalmatch"]) {
		f.JournalMatch = append(f.JournalMatch, v)
	}
	det, errs := datedetect.New(f.Datepattern, datedetect.Options{Location: o.Location, Now: o.Now})
	for _, e := range errs {
		f.Problems = append(f.Problems, Problem{Filter: name, Option: "datepattern", Expr: f.Datepattern, Reason: e.Error() + ": that template is not used"})
	}
	f.dates = det
	if len(f.Failregex) == 0 {
		return nil, fmt.Errorf("fail2ban: filter %s has no usable failregex%s", name, problemSummary(f.Problems))
	}
	return f, nil
}

// maxLinesCap bounds the multi-line buffer whatever a filter asks for.
const maxLinesCap = 100

func problemSummary(ps []Problem) string {
	if len(ps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(":")
	for _, p := range ps {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

func splitLines(v string) []string {
	var out []string
	for _, l := range strings.Split(v, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// compileExpr expands fail2ban's tags in src and compiles it, on RE2 when
// the translation is exact, else on the backtracking engine; problems are
// recorded on f.
func (f *Filter) compileExpr(option string, index int, src string, multiline bool) *Expr {
	e := &Expr{Option: option, Index: index, Source: src}
	py := expandTags(src, f.UseDNS)
	e.Python = py
	if strings.TrimSpace(py) == "" {
		f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: "empty expression"})
		return nil
	}
	py = globalFlagsToLocal(py)
	tr := translateMode(py, dialectRE2, multiline)
	var re2Err string
	if len(tr.problems) == 0 {
		expr := tr.expr
		if multiline {
			expr = "(?m)" + expr
		}
		re, err := regexp.Compile(expr)
		if err == nil {
			e.RE2, e.re, e.Engine = expr, re, EngineRE2
			e.names = re.SubexpNames()
			if option == "failregex" && !hasFailureID(e.names, f.Prefregex) {
				f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: "no failure-id group (<HOST>, <ADDR>, <F-ID>, ...): fail2ban refuses it too"})
				e.Engine = EngineNone
				return nil
			}
			return e
		}
		re2Err = err.Error()
	}
	reason := strings.Join(tr.problems, "; ")
	if re2Err != "" {
		reason = "RE2 refuses it: " + re2Err
	}
	nt := translateMode(py, dialectNET, multiline)
	if len(nt.problems) > 0 {
		f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: reason + "; and the backtracking engine cannot run it either: " + strings.Join(nt.problems, "; ")})
		e.Engine = EngineNone
		return nil
	}
	opt := regexp2.None
	if multiline {
		opt = regexp2.Multiline
	}
	bt, err := regexp2.Compile(nt.expr, opt)
	if err != nil {
		f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: reason + "; and the backtracking engine refuses it: " + err.Error()})
		e.Engine = EngineNone
		return nil
	}
	bt.MatchTimeout = MatchTimeout
	e.bt, e.Engine = bt, EngineBacktracking
	e.names = bt.GetGroupNames()
	if option == "failregex" && !hasFailureID(e.names, f.Prefregex) {
		f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: "no failure-id group (<HOST>, <ADDR>, <F-ID>, ...): fail2ban refuses it too"})
		return nil
	}
	f.Problems = append(f.Problems, Problem{Filter: f.Name, Option: option, Index: index, Expr: src, Reason: reason, Fallback: true})
	return e
}

var failureIDGroups = []string{"fid", "ip4", "ip6", "dns", "mlfid"}

func hasFailureID(names []string, pref *Expr) bool {
	for _, n := range names {
		for _, g := range failureIDGroups {
			if n == g {
				return true
			}
		}
	}
	if pref != nil {
		return hasFailureID(pref.names, nil)
	}
	return false
}

// globalFlags is fail2ban's R_GLOB2LOCFLAGS: "((?i)x)" becomes "(?i:x)".
var globalFlags = regexp.MustCompile(`\((?:\?:)?(\(\?[a-z]+)\)`)

func globalFlagsToLocal(s string) string {
	// The Go expression has no lookbehind for fail2ban's (?<!\\): skip
	// matches preceded by a backslash by hand.
	idx := globalFlags.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range idx {
		if m[0] > 0 && s[m[0]-1] == '\\' {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(s[m[2]:m[3]] + ":")
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// substituteTags is fail2ban's substituteRecursiveTags: <name> inside a
// value is replaced by the value of name (or what addrepl finds), again
// and again until nothing changes; unknown tags (<HOST>, <F-USER>) stay.
func substituteTags(tags map[string]string, ignore map[string]bool, addrepl func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = v
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	done := map[string]bool{}
	counts := map[string]map[string]int{}
	work := 0
	for round := 0; round < 64; round++ {
		again := false
		for _, tag := range keys {
			if ignore[tag] || done[tag] {
				continue
			}
			value := out[tag]
			orig := value
			rc := counts[tag]
			if rc == nil {
				rc = map[string]int{}
			}
			pos := 0
			for guard := 0; guard < 10000; guard++ {
				loc := tagRe.FindStringSubmatchIndex(value[pos:])
				if loc == nil {
					break
				}
				start, end := pos+loc[0], pos+loc[1]
				rtag := value[pos+loc[2] : pos+loc[3]]
				if ignore[rtag] {
					pos = end
					continue
				}
				if rtag == tag || rc[rtag] > maxTagReplace {
					return nil, fmt.Errorf("<%s> refers to itself (through %s): break the loop", tag, rtag)
				}
				repl, ok := out[rtag]
				if !ok {
					repl, ok = addrepl(rtag)
				}
				if !ok {
					pos = end
					continue
				}
				value = strings.ReplaceAll(value, "<"+rtag+">", repl)
				rc[rtag]++
				pos = start
				work += len(value)
				if len(value) > 1<<20 || work > 64<<20 {
					return nil, fmt.Errorf("<%s> expands beyond reason (1 MB, or 64 MB of substitution work): check the filter's tags", tag)
				}
			}
			if value != orig {
				if tagRe.MatchString(value) {
					counts[tag] = rc
					again = true
				}
				out[tag] = value
			}
			if !strings.Contains(value, "<") {
				done[tag] = true
			}
		}
		if !again {
			break
		}
	}
	return out, nil
}

var tagRe = regexp.MustCompile(`<([^ <>]+)>`)

const maxTagReplace = 25

// translateMode is translate with $ adapted: fail2ban searches a buffer
// that ends with "\n", where Python's $ (without MULTILINE) also matches
// just before that newline; RE2's $ does not, so it becomes \n?\z.
func translateMode(py string, d dialect, multiline bool) translation {
	t := translate(py, d)
	if d != dialectRE2 || multiline || len(t.problems) > 0 {
		return t
	}
	t.expr = replaceDollar(t.expr)
	return t
}

// replaceDollar rewrites unescaped $ outside classes as (?:\n?\z).
func replaceDollar(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteByte(s[i])
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '[':
			e := classEnd(s, i)
			if e >= len(s) {
				e = len(s) - 1
			}
			b.WriteString(s[i : e+1])
			i = e
		case '$':
			b.WriteString(`(?:\n?\z)`)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
