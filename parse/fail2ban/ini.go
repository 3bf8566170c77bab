package fail2ban

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// Conf is fail2ban configuration read the way fail2ban reads it: Python's
// ConfigParser (case-insensitive keys, "=" or ":" delimiters, "#" and ";"
// comment lines, " ;" inline comments, indented continuation lines) plus
// fail2ban's SafeConfigParserWithIncludes ([INCLUDES] before/after, .local
// overrides merged section by section, the overridden values kept in
// "KNOWN/<section>" for %(known/opt)s).
//
// A Conf is read-only once returned and safe for concurrent use.
type Conf struct {
	defaults *section
	sections map[string]*section
	order    []string // section names in first-seen order, without DEFAULT and KNOWN/
	files    []string // files read, in the order they were merged
}

// section is an ordered map of raw (uninterpolated) values.
type section struct {
	keys []string
	vals map[string]string
}

func newSection() *section { return &section{vals: map[string]string{}} }

func (s *section) set(k, v string) {
	if _, ok := s.vals[k]; !ok {
		s.keys = append(s.keys, k)
	}
	s.vals[k] = v
}

func (s *section) get(k string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.vals[k]
	return v, ok
}

// maxIncludeDepth bounds [INCLUDES] chains; fail2ban stops only at exact
// cycles, but a chain this deep is a mistake.
const maxIncludeDepth = 32

// ReadConf reads root/name.conf, root/name.d/*.conf, root/name.local and
// root/name.d/*.local, in that order, as fail2ban's ConfigReader does, each
// with its [INCLUDES] before and after it. root is the configuration
// directory (/etc/fail2ban); name is "jail", "fail2ban" or "filter.d/sshd"
// (no extension). It is an error when none of those files exists.
func ReadConf(root, name string) (*Conf, error) {
	base := filepath.Join(root, name)
	files := []string{base + ".conf"}
	dconf, _ := filepath.Glob(filepath.Join(base+".d", "*.conf")) // the only Glob error is a bad pattern
	sort.Strings(dconf)
	files = append(files, dconf...)
	files = append(files, base+".local")
	dlocal, _ := filepath.Glob(filepath.Join(base+".d", "*.local"))
	sort.Strings(dlocal)
	files = append(files, dlocal...)
	var existing []string
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			existing = append(existing, f)
		}
	}
	if len(existing) == 0 {
		return nil, fmt.Errorf("fail2ban: no %s.conf or %s.local under %s: check the name and the directory (--from)", name, name, root)
	}
	return readFiles(existing, osReader{})
}

// ReadConfFile reads one file (and its [INCLUDES], and the .local beside
// it, as fail2ban does for an included file) — what fail2ban-regex does
// with a filter given by path.
func ReadConfFile(path string) (*Conf, error) {
	return readFiles([]string{path}, osReader{})
}

// ReadConfBytes parses data as a single configuration file named name,
// without following [INCLUDES]: for tests, fuzzing and text that did not
// come from a directory.
func ReadConfBytes(data []byte, name string) (*Conf, error) {
	secs, err := parseINI(data, name)
	if err != nil {
		return nil, err
	}
	c := &Conf{defaults: newSection(), sections: map[string]*section{}}
	c.merge(secs)
	c.files = []string{name}
	return c, nil
}

// fileReader abstracts the file system for includes; tests use the OS.
type fileReader interface {
	read(path string) ([]byte, bool)
}

type osReader struct{}

func (osReader) read(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	return b, err == nil
}

// parsedFile is one file's sections before merging.
type parsedFile struct {
	defaults *section
	sections map[string]*section
	order    []string
}

// readFiles expands includes and merges the files in fail2ban's order.
func readFiles(files []string, fr fileReader) (*Conf, error) {
	cache := map[string]*parsedFile{}
	var errs []error
	load := func(path string) *parsedFile {
		if p, ok := cache[path]; ok {
			return p
		}
		data, ok := fr.read(path)
		if !ok {
			cache[path] = nil
			return nil
		}
		p, err := parseINI(data, path)
		if err != nil {
			errs = append(errs, err)
		}
		cache[path] = p
		return p
	}
	var full []string
	var expand func(list []string, seen []string, depth int)
	expand = func(list []string, seen []string, depth int) {
		list = withLocal(list, fr)
		for _, f := range list {
			p := load(f)
			if p == nil {
				continue
			}
			var before, after []string
			if inc, ok := p.sections["INCLUDES"]; ok && depth < maxIncludeDepth {
				dir := filepath.Dir(f)
				for _, opt := range [...]string{"before", "after"} {
					raw, ok := inc.get(opt)
					if !ok {
						continue
					}
					v, err := interpolate(raw, func(k string) (string, bool) {
						if v, ok := inc.get(k); ok {
							return v, true
						}
						return p.defaults.get(k)
					}, "INCLUDES", nil)
					if err != nil {
						errs = append(errs, fmt.Errorf("fail2ban: %s: [INCLUDES] %s: %w", f, opt, err))
						continue
					}
					for _, r := range strings.Split(v, "\n") {
						if !filepath.IsAbs(r) {
							r = filepath.Join(dir, r)
						}
						if contains(seen, r) {
							continue
						}
						sub := append(append([]string(nil), seen...), f)
						n := len(full)
						expand([]string{r}, sub, depth+1)
						got := append([]string(nil), full[n:]...)
						full = full[:n]
						if opt == "before" {
							before = append(before, got...)
						} else {
							after = append(after, got...)
						}
					}
				}
			}
			full = append(full, before...)
			full = append(full, f)
			full = append(full, after...)
		}
	}
	expand(files, nil, 0)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(full) == 0 {
		return nil, fmt.Errorf("fail2ban: none of %s could be read: check the path and its permissions", strings.Join(files, ", "))
	}
	c := &Conf{defaults: newSection(), sections: map[string]*section{}}
	for _, f := range full {
		c.merge(cache[f])
		c.files = append(c.files, f)
	}
	return c, nil
}

// withLocal adds x.local after each x.conf in list when it exists and is
// not already listed (fail2ban's _expandConfFilesWithLocal).
func withLocal(list []string, fr fileReader) []string {
	out := make([]string, 0, len(list))
	for _, f := range list {
		out = append(out, f)
		local := strings.TrimSuffix(f, filepath.Ext(f)) + ".local"
		if contains(list, local) {
			continue
		}
		if _, ok := fr.read(local); ok {
			out = append(out, local)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var conditionalSection = regexp.MustCompile(`^(\w+)(\?.+)$`)

// merge folds one file into c: DEFAULT keys override, sections merge key by
// key, and a key that overrides an earlier value leaves that value in
// KNOWN/<section>.
func (c *Conf) merge(p *parsedFile) {
	if p == nil {
		return
	}
	for _, k := range p.defaults.keys {
		c.defaults.set(k, p.defaults.vals[k])
	}
	for _, name := range p.order {
		s := p.sections[name]
		if m := conditionalSection.FindStringSubmatch(name); m != nil {
			// [Definition?logtype=journal]: keys become "key?logtype=journal".
			cs := newSection()
			for _, k := range s.keys {
				cs.set(k+m[2], s.vals[k])
			}
			name, s = m[1], cs
		}
		prev, ok := c.sections[name]
		if !ok {
			prev = newSection()
			c.sections[name] = prev
			if !strings.HasPrefix(name, "KNOWN/") {
				c.order = append(c.order, name)
			}
		} else {
			known := c.sections["KNOWN/"+name]
			for _, k := range s.keys {
				if v, had := prev.vals[k]; had {
					if known == nil {
						known = newSection()
						c.sections["KNOWN/"+name] = known
					}
					known.set(k, v)
				}
			}
		}
		for _, k := range s.keys {
			prev.set(k, s.vals[k])
		}
	}
}

// Files lists the files read, in the order they were merged.
func (c *Conf) Files() []string { return append([]string(nil), c.files...) }

// Sections returns the section names in the order they first appear,
// without DEFAULT, INCLUDES and fail2ban's internal KNOWN/ sections.
func (c *Conf) Sections() []string {
	out := make([]string, 0, len(c.order))
	for _, s := range c.order {
		if s == "INCLUDES" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// HasSection reports whether section exists (DEFAULT always does).
func (c *Conf) HasSection(section string) bool {
	if section == "DEFAULT" {
		return true
	}
	_, ok := c.sections[section]
	return ok
}

// Keys returns a section's own keys in file order (lower case, as
// ConfigParser stores them), without those it inherits from DEFAULT.
func (c *Conf) Keys(section string) []string {
	s := c.sections[section]
	if section == "DEFAULT" {
		s = c.defaults
	}
	if s == nil {
		return nil
	}
	return append([]string(nil), s.keys...)
}

// Raw returns a value as written, without interpolation; DEFAULT falls
// through.
func (c *Conf) Raw(section, key string) (string, bool) {
	key = strings.ToLower(key)
	if v, ok := c.sections[section].get(key); ok {
		return v, true
	}
	return c.defaults.get(key)
}

// Get returns a value with %(var)s interpolated as fail2ban does; a key
// missing from the section falls through to DEFAULT. ok is false when the
// key is in neither, or when the value cannot be interpolated (a missing
// variable, a loop): GetErr says why.
func (c *Conf) Get(section, key string) (string, bool) {
	v, err := c.GetErr(section, key, nil)
	return v, err == nil
}

// GetWith is Get with extra variables that take precedence over the
// section and DEFAULT, both for the key itself and for %(var)s inside it:
// a jail's filter arguments (sshd[mode=aggressive]) reach a filter this
// way.
func (c *Conf) GetWith(section, key string, vars map[string]string) (string, bool) {
	v, err := c.GetErr(section, key, vars)
	return v, err == nil
}

// ErrNoOption is returned by GetErr for a key that is not set.
var ErrNoOption = errors.New("no such option")

// GetErr is GetWith with the reason a value is missing.
func (c *Conf) GetErr(section, key string, vars map[string]string) (string, error) {
	key = strings.ToLower(key)
	lv := lowerKeys(vars)
	raw, ok := c.lookup(section, key, lv)
	if !ok {
		return "", fmt.Errorf("[%s] %s: %w", section, key, ErrNoOption)
	}
	v, err := interpolate(raw, func(k string) (string, bool) { return c.lookupVar(section, k, lv) }, section, nil)
	if err != nil {
		return "", fmt.Errorf("[%s] %s: %w", section, key, err)
	}
	return v, nil
}

// getEx is fail2ban's get_ex: "section/opt" names another section's
// option, "known/opt" the value this section's opt had before a .local
// overrode it, "default/opt" DEFAULT's.
func (c *Conf) getEx(section, key string, vars map[string]string) (string, error) {
	if m := sectionOpt.FindStringSubmatch(key); m != nil {
		sec, opt := m[1], m[2]
		var try []string
		switch strings.ToLower(sec) {
		case "known":
			try = []string{"KNOWN/" + section, section}
		case "default":
			try = []string{"DEFAULT"}
		default:
			try = []string{sec}
		}
		for _, s := range try {
			if !c.HasSection(s) {
				continue
			}
			if v, err := c.GetErr(s, opt, nil); err == nil {
				return v, nil
			}
		}
	}
	return c.GetErr(section, key, vars)
}

var sectionOpt = regexp.MustCompile(`^([\w\-]+)/([^\s>]+)$`)

func lowerKeys(vars map[string]string) map[string]string {
	if len(vars) == 0 {
		return nil
	}
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		out[strings.ToLower(k)] = v
	}
	return out
}

func (c *Conf) lookup(section, key string, vars map[string]string) (string, bool) {
	if v, ok := vars[key]; ok {
		return v, true
	}
	if section != "DEFAULT" {
		if v, ok := c.sections[section].get(key); ok {
			return v, true
		}
	}
	return c.defaults.get(key)
}

// lookupVar resolves a %(name)s reference in section: the usual chain, then
// __name__, then fail2ban's "sec/opt", "known/opt" and "default/opt" forms.
func (c *Conf) lookupVar(section, name string, vars map[string]string) (string, bool) {
	if v, ok := c.lookup(section, name, vars); ok {
		return v, true
	}
	if name == "__name__" {
		return section, true
	}
	i := strings.IndexByte(name, '/')
	if i <= 0 {
		return "", false
	}
	sec, opt := name[:i], name[i+1:]
	switch strings.ToLower(sec) {
	case "default":
	case "known":
		if v, ok := c.sections["KNOWN/"+section].get(opt); ok {
			return v, true
		}
	default:
		s, ok := c.sections[sec]
		if !ok {
			return "", false
		}
		if v, ok := s.get(opt); ok {
			return v, true
		}
	}
	return c.defaults.get(opt)
}

// maxValueLen bounds an interpolated value: references that each repeat
// another one grow exponentially with the depth.
const maxValueLen = 1 << 20

// maxInterpolationDepth is Python's MAX_INTERPOLATION_DEPTH.
const maxInterpolationDepth = 10

// interpolate expands %(name)s and %% in raw, recursively, as Python's
// BasicInterpolation does.
func interpolate(raw string, lookup func(string) (string, bool), section string, _ []string) (string, error) {
	var b strings.Builder
	budget := maxInterpolations
	if err := interpolateInto(&b, raw, lookup, 1, &budget); err != nil {
		return "", err
	}
	return b.String(), nil
}

// maxInterpolations bounds the references followed for one value: values
// that each name another several times make an exponential tree even when
// what they expand to is empty.
const maxInterpolations = 10000

func interpolateInto(b *strings.Builder, rest string, lookup func(string) (string, bool), depth int, budget *int) error {
	if *budget--; *budget < 0 {
		return fmt.Errorf("more than %d %%(...)s references to follow: check them for repetition", maxInterpolations)
	}
	if depth > maxInterpolationDepth {
		return fmt.Errorf("%%(...)s nested more than %d deep (a variable that refers to itself?): break the loop", maxInterpolationDepth)
	}
	for rest != "" {
		if b.Len() > maxValueLen {
			return fmt.Errorf("value expands beyond %d bytes: check the %%(...)s references", maxValueLen)
		}
		p := strings.IndexByte(rest, '%')
		if p < 0 {
			b.WriteString(rest)
			return nil
		}
		b.WriteString(rest[:p])
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
		case strings.HasPrefix(rest, "%("):
			end := strings.IndexByte(rest, ')')
			if end < 3 || !strings.HasPrefix(rest[end:], ")s") {
				return fmt.Errorf("bad interpolation at %q: write %%(name)s, or %%%% for a literal %%", clip(rest))
			}
			name := strings.ToLower(rest[2:end])
			rest = rest[end+2:]
			v, ok := lookup(name)
			if !ok {
				return fmt.Errorf("%%(%s)s is not defined in the section or [DEFAULT]: define it, or write %%%% for a literal %%", name)
			}
			if strings.IndexByte(v, '%') >= 0 {
				if err := interpolateInto(b, v, lookup, depth+1, budget); err != nil {
					return err
				}
			} else {
				b.WriteString(v)
			}
		default:
			return fmt.Errorf("'%%' must be followed by '%%' or '(' at %q: write %%%% for a literal %%", clip(rest))
		}
	}
	return nil
}

// parseINI reads one file as Python's ConfigParser (strict, with ";"
// inline comments) does.
func parseINI(data []byte, name string) (*parsedFile, error) {
	p := &parsedFile{defaults: newSection(), sections: map[string]*section{}}
	var (
		cur       *section
		curName   string
		opt       string
		lines     []string // the current option's value lines
		indent    = -1
		errs      []error
		added     = map[string]bool{}
		sawHeader bool
	)
	flush := func() {
		if cur != nil && opt != "" {
			cur.set(opt, strings.TrimRightFunc(strings.Join(lines, "\n"), unicode.IsSpace))
		}
		opt, lines = "", nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		commentAt := -1
		// Inline comments: ";" at the start or after whitespace.
		for i := 0; i < len(line); i++ {
			if line[i] == ';' && (i == 0 || isSpace(line[i-1])) {
				commentAt = i
				break
			}
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			commentAt = 0
		}
		value := line
		if commentAt >= 0 {
			value = line[:commentAt]
		}
		value = strings.TrimSpace(value)
		if value == "" {
			// Python keeps an empty line inside a value (empty_lines_in_values),
			// but not a comment line.
			if commentAt < 0 && cur != nil && opt != "" {
				lines = append(lines, "")
			}
			continue
		}
		cur0 := len(line) - len(strings.TrimLeftFunc(line, unicode.IsSpace))
		if cur != nil && opt != "" && cur0 > indent {
			lines = append(lines, value)
			continue
		}
		flush()
		indent = cur0
		if strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]") && len(value) > 2 {
			sawHeader = true
			curName = value[1 : len(value)-1]
			switch {
			case curName == "DEFAULT":
				cur = p.defaults
			default:
				if added[curName] {
					errs = append(errs, fmt.Errorf("fail2ban: %s:%d: section [%s] appears twice in the file: merge the two", name, n, curName))
				}
				s, ok := p.sections[curName]
				if !ok {
					s = newSection()
					p.sections[curName] = s
					p.order = append(p.order, curName)
				}
				added[curName] = true
				cur = s
			}
			continue
		}
		if !sawHeader {
			errs = append(errs, fmt.Errorf("fail2ban: %s:%d: %q before any [section]: put it under a section such as [Definition]", name, n, clip(value)))
			// Python stops reading the file here.
			break
		}
		i := strings.IndexAny(value, "=:")
		if i < 0 {
			errs = append(errs, fmt.Errorf("fail2ban: %s:%d: %q is not `key = value`: add the \"=\", or indent it to continue the previous value", name, n, clip(value)))
			continue
		}
		k := strings.ToLower(strings.TrimSpace(value[:i]))
		if k == "" {
			errs = append(errs, fmt.Errorf("fail2ban: %s:%d: %q has no key before the \"%c\"", name, n, clip(value), value[i]))
			continue
		}
		ak := curName + "\x00" + k
		if added[ak] {
			errs = append(errs, fmt.Errorf("fail2ban: %s:%d: [%s] sets %q twice: keep one (fail2ban refuses the file)", name, n, curName, k))
		}
		added[ak] = true
		opt = k
		lines = []string{strings.TrimSpace(value[i+1:])}
	}
	flush()
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("fail2ban: %s: %w", name, err))
	}
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	return p, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

// clip shortens text quoted in an error.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// ParseFilterSpec splits a jail's filter (or action) value such as
// `sshd[mode=aggressive, port="ssh"]` into its name and arguments, as
// fail2ban's extractOptions does: values may be double- or single-quoted,
// unquoted ones end at "," or "]".
func ParseFilterSpec(s string) (name string, args map[string]string, err error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if s == "" {
			return "", nil, errors.New("fail2ban: empty filter name")
		}
		return s, map[string]string{}, nil
	}
	name = strings.TrimSpace(s[:open])
	if name == "" {
		return "", nil, fmt.Errorf("fail2ban: filter %q has no name before \"[\"", clip(s))
	}
	if !strings.HasSuffix(s, "]") {
		return "", nil, fmt.Errorf("fail2ban: filter %q: the options must end with \"]\"", clip(s))
	}
	body := s[open+1 : len(s)-1]
	args = map[string]string{}
	i := 0
	for i < len(body) {
		// skip separators: spaces, commas, "][" between option groups
		for i < len(body) && (isSpace(body[i]) || body[i] == ',' || body[i] == '\n') {
			i++
		}
		if i < len(body) && body[i] == ']' {
			j := i + 1
			for j < len(body) && isSpace(body[j]) {
				j++
			}
			if j < len(body) && body[j] == '[' {
				i = j + 1
				continue
			}
		}
		if i >= len(body) {
			break
		}
		j := i
		for j < len(body) && (isWordByte(body[j]) || body[j] == '-' || body[j] == '.') {
			j++
		}
		if j == i || j >= len(body) || body[j] != '=' {
			return "", nil, fmt.Errorf("fail2ban: filter %q: expected name=value at %q", clip(s), clip(body[i:]))
		}
		key := body[i:j]
		j++
		var val string
		switch {
		case j < len(body) && (body[j] == '"' || body[j] == '\''):
			q := body[j]
			end := strings.IndexByte(body[j+1:], q)
			if end < 0 {
				return "", nil, fmt.Errorf("fail2ban: filter %q: unterminated %c quote in %s", clip(s), q, key)
			}
			val = body[j+1 : j+1+end]
			j = j + 1 + end + 1
		default:
			end := strings.IndexAny(body[j:], ",]")
			if end < 0 {
				end = len(body) - j
			}
			val = body[j : j+end]
			j += end
		}
		args[strings.TrimSpace(key)] = strings.TrimSpace(val)
		i = j
		for i < len(body) && isSpace(body[i]) {
			i++
		}
		if i < len(body) && body[i] != ',' && body[i] != ']' {
			return "", nil, fmt.Errorf("fail2ban: filter %q: unexpected %q after option %s", clip(s), clip(body[i:]), key)
		}
	}
	return name, args, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
