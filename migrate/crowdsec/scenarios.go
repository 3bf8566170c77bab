package crowdsec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
)

// defaultDecision is what CrowdSec's default profile decides on any
// overflow: a 4 h ban. Scenarios do not say; profiles.yaml does.
var defaultDecision = detect.DecisionSpec{Type: phalanx.Ban, Duration: detect.Duration(4 * time.Hour)}

// maxScenarioFile bounds one scenario file.
const maxScenarioFile = 1 << 20

// hubScenario is a CrowdSec scenario document; only the fields the
// translation reads or must refuse.
type hubScenario struct {
	Type           string           `yaml:"type"`
	Name           string           `yaml:"name"`
	Description    string           `yaml:"description"`
	Filter         string           `yaml:"filter"`
	GroupBy        string           `yaml:"groupby"`
	Distinct       string           `yaml:"distinct"`
	Capacity       *int             `yaml:"capacity"`
	LeakSpeed      string           `yaml:"leakspeed"`
	Duration       string           `yaml:"duration"` // counter buckets
	Blackhole      string           `yaml:"blackhole"`
	OverflowFilter string           `yaml:"overflow_filter"`
	Condition      string           `yaml:"condition"`
	ScopeField     map[string]any   `yaml:"scope"`
	Labels         map[string]any   `yaml:"labels"`
	Format         any              `yaml:"format"`
	Data           []map[string]any `yaml:"data"`
	Extra          map[string]any   `yaml:",inline"`
}

// Problem is one scenario, or one part of one, that did not translate
// exactly: an untranslatable scenario (Skipped), or an approximation the
// translated scenario makes (Note).
type Problem struct {
	File     string `json:"file"`
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// Translation is what TranslateScenarios made.
type Translation struct {
	Files int `json:"files"`
	// NotScenarios counts YAML documents without a scenario's fields
	// (parsers, collections): not counted as skipped.
	NotScenarios int               `json:"not_scenarios"`
	Scenarios    []detect.Scenario `json:"-"`
	Translated   []string          `json:"translated"`
	Skipped      []Problem         `json:"skipped"`
	Notes        []Problem         `json:"notes"`
}

// TranslateScenarios translates every CrowdSec scenario in the YAML files
// under dir (recursively; a file may hold several documents) into phalanx
// scenarios. Types leaky (with or without distinct) and trigger translate
// when they group by source IP and their filter is a conjunction of tests
// phalanx's events can answer; everything else is listed in Skipped with
// its file and the reason, never dropped silently.
func TranslateScenarios(dir string) (*Translation, error) {
	t := &Translation{Translated: []string{}, Skipped: []Problem{}, Notes: []Problem{}}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crowdsec scenarios: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("crowdsec scenarios: no .yaml files under %s (give /etc/crowdsec/scenarios or a hub checkout's scenarios/)", dir)
	}
	slices.Sort(files)
	seen := map[string]string{}
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		if rel == "" {
			rel = path
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Skipped = append(t.Skipped, Problem{File: rel, Reason: err.Error()})
			continue
		}
		t.Files++
		t.translateFile(data, rel, seen)
	}
	return t, nil
}

// TranslateScenarioBytes translates the scenario documents of one file.
func TranslateScenarioBytes(data []byte, name string) *Translation {
	t := &Translation{Translated: []string{}, Skipped: []Problem{}, Notes: []Problem{}, Files: 1}
	t.translateFile(data, name, map[string]string{})
	return t
}

func (t *Translation) translateFile(data []byte, file string, seen map[string]string) {
	if len(data) > maxScenarioFile {
		t.Skipped = append(t.Skipped, Problem{File: file, Reason: "file larger than 1 MiB"})
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var hs hubScenario
		err := dec.Decode(&hs)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Skipped = append(t.Skipped, Problem{File: file, Scenario: fmt.Sprintf("document %d", doc), Reason: "not YAML a scenario can be read from: " + err.Error()})
			return
		}
		if hs.Type == "" && hs.LeakSpeed == "" && hs.Capacity == nil && hs.GroupBy == "" {
			// Not a scenario: an empty document (a trailing ---), or a
			// parser, collection or postoverflow of a hub checkout.
			if hs.Name != "" || len(hs.Extra) > 0 {
				t.NotScenarios++
			}
			continue
		}
		name := printable(hs.Name)
		if name == "" {
			name = fmt.Sprintf("%s#%d", file, doc)
		}
		s, notes, reason := translate(hs, name)
		if reason == "" {
			if prev, dup := seen[s.Name]; dup {
				reason = "a scenario of the same name was translated from " + prev
			}
		}
		if reason != "" {
			t.Skipped = append(t.Skipped, Problem{File: file, Scenario: name, Reason: reason})
			continue
		}
		seen[s.Name] = file
		for _, n := range notes {
			t.Notes = append(t.Notes, Problem{File: file, Scenario: name, Reason: n})
		}
		t.Scenarios = append(t.Scenarios, s)
		t.Translated = append(t.Translated, s.Name)
	}
}

// translate maps one CrowdSec scenario; reason says why it cannot be.
func translate(hs hubScenario, name string) (s detect.Scenario, notes []string, reason string) {
	s = detect.Scenario{Name: name, Description: printable(hs.Description), Decision: defaultDecision}
	if s.Description == "" {
		s.Description = "translated from CrowdSec " + name
	}
	switch hs.Type {
	case "leaky":
		s.Type = detect.Leaky
	case "trigger":
		s.Type = detect.Trigger
	case "":
		return s, nil, "no type"
	default:
		return s, nil, fmt.Sprintf("type %q: phalanx translates leaky and trigger scenarios only (conditional, bayesian and counter buckets have no phalanx equivalent)", hs.Type)
	}
	if v, ok := hs.Labels["remediation"]; ok && v != true {
		return s, nil, "labels.remediation is not true: CrowdSec takes no decision on it, it only alerts"
	}
	if hs.OverflowFilter != "" {
		return s, nil, "overflow_filter: phalanx cannot discard an overflow by expression"
	}
	if len(hs.ScopeField) > 0 {
		if t, _ := hs.ScopeField["type"].(string); t != "" && !strings.EqualFold(t, "ip") {
			return s, nil, fmt.Sprintf("scope %q: phalanx scenarios decide against the source address (or its /64)", t)
		}
	}
	switch g := strings.TrimSpace(hs.GroupBy); g {
	case "evt.Meta.source_ip":
	case "":
		if s.Type != detect.Trigger {
			return s, nil, "no groupby: one bucket for every source together; phalanx counts per source address"
		}
	default:
		return s, nil, fmt.Sprintf("groupby %q: phalanx groups by source address only", g)
	}
	f, fnotes, why := translateFilter(hs.Filter)
	if why != "" {
		return s, nil, "filter: " + why
	}
	s.Filter, notes = f, fnotes
	if hs.Blackhole != "" {
		d, err := time.ParseDuration(hs.Blackhole)
		if err != nil || d < 0 {
			return s, nil, fmt.Sprintf("blackhole %q is not a duration", hs.Blackhole)
		}
		s.Blackhole = detect.Duration(d)
	}
	if s.Type == detect.Trigger {
		if hs.Distinct != "" {
			notes = append(notes, "distinct ignored: a trigger fires on the first event")
		}
		return s, notes, ""
	}
	if hs.Capacity == nil {
		return s, nil, "leaky without capacity"
	}
	c := *hs.Capacity
	if c < 1 || c > 1000 {
		return s, nil, fmt.Sprintf("capacity %d: phalanx buckets hold 1 to 1000 events", c)
	}
	s.Capacity = c
	leak, err := time.ParseDuration(strings.TrimSpace(hs.LeakSpeed))
	if err != nil || leak <= 0 {
		return s, nil, fmt.Sprintf("leakspeed %q is not a positive duration", hs.LeakSpeed)
	}
	s.Leak = detect.Duration(leak)
	if hs.Distinct != "" {
		switch d := strings.TrimSpace(hs.Distinct); d {
		case "evt.Meta.target_user", "evt.Parsed.user", "evt.Meta.user":
			s.Type, s.Distinct = detect.Distinct, detect.DistinctUser
		case "evt.Meta.http_path", "evt.Parsed.request", "evt.Parsed.file_name", "evt.Parsed.http_path":
			s.Type, s.Distinct = detect.Distinct, detect.DistinctPath
			if d == "evt.Parsed.file_name" {
				notes = append(notes, "distinct on the file name counted as distinct paths (without query)")
			}
		default:
			return s, nil, fmt.Sprintf("distinct %q: phalanx counts distinct users or paths only", d)
		}
	}
	return s, notes, ""
}

func printable(s string) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s))
	if len(s) > maxScenario {
		s = strings.ToValidUTF8(s[:maxScenario], "")
	}
	return s
}

// WriteScenarios writes scenarios as a phalanx scenarios file (the
// `rules:` file of phalanx.yaml) and checks that it loads back.
func WriteScenarios(w io.Writer, header string, ss []detect.Scenario) error {
	b, err := MarshalScenarios(header, ss)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// MarshalScenarios renders scenarios as YAML and checks that detect reads
// them back as the same scenarios.
func MarshalScenarios(header string, ss []detect.Scenario) ([]byte, error) {
	var buf bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		if l != "" {
			buf.WriteString("# " + l + "\n")
		}
	}
	if ss == nil {
		ss = []detect.Scenario{}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Scenarios []detect.Scenario `yaml:"scenarios"`
	}{ss}); err != nil {
		return nil, fmt.Errorf("crowdsec scenarios: %w", err)
	}
	back, err := detect.ParseScenarios(buf.Bytes(), "translated scenarios")
	if err != nil {
		return nil, fmt.Errorf("crowdsec scenarios: the translation does not load back (a bug): %w", err)
	}
	if len(back) != len(ss) {
		return nil, fmt.Errorf("crowdsec scenarios: %d scenarios written, %d read back (a bug)", len(ss), len(back))
	}
	return buf.Bytes(), nil
}

// Event kinds a CrowdSec field test can stand for.
var (
	sshFailKinds  = []phalanx.EventKind{phalanx.KindAuthFailed, phalanx.KindInvalidUser, phalanx.KindUserNotAllowed, phalanx.KindMaxAuthTries}
	httpKinds     = []phalanx.EventKind{phalanx.KindHTTPNotFound, phalanx.KindHTTPAuthFailed, phalanx.KindHTTPDenied, phalanx.KindHTTPSensitive, phalanx.KindHTTPExploit, phalanx.KindHTTPBadAgent, phalanx.KindHTTPRateLimited, phalanx.KindHTTPOpenProxy, phalanx.KindHTTPMalformed}
	httpServices  = []phalanx.Service{phalanx.ServiceNginx, phalanx.ServiceApache, phalanx.ServiceHTTP}
	staticSuffix  = []string{".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".woff", ".woff2", ".ttf", ".webp", ".map"}
	mailFailKinds = []phalanx.EventKind{phalanx.KindMailAuthFailed}
)

// logTypes maps evt.Meta.log_type values to what phalanx's parsers
// produce for such lines.
var logTypes = map[string]struct {
	services []phalanx.Service
	kinds    []phalanx.EventKind
}{
	"ssh_failed-auth":  {[]phalanx.Service{phalanx.ServiceSSHD}, sshFailKinds},
	"http_access-log":  {httpServices, httpKinds},
	"http_error-log":   {httpServices, httpKinds},
	"smtp_auth_fail":   {[]phalanx.Service{phalanx.ServicePostfix}, mailFailKinds},
	"pop3_failed_auth": {[]phalanx.Service{phalanx.ServiceDovecot}, mailFailKinds},
	"imap_failed_auth": {[]phalanx.Service{phalanx.ServiceDovecot}, mailFailKinds},
}

// subTypes maps evt.Meta.sub_type values to phalanx kinds.
var subTypes = map[string][]phalanx.EventKind{
	"auth_fail":          {phalanx.KindHTTPAuthFailed},
	"req_limit_exceeded": {phalanx.KindHTTPRateLimited},
}

// filterBuilder accumulates what a conjunction of tests says.
type filterBuilder struct {
	f     detect.Filter
	notes []string
	kinds []phalanx.EventKind // nil: not constrained yet
	svcs  []phalanx.Service
}

// narrowKinds intersects the kinds allowed so far with ks.
func (b *filterBuilder) narrowKinds(ks []phalanx.EventKind) {
	if b.kinds == nil {
		b.kinds = slices.Clone(ks)
		return
	}
	b.kinds = slices.DeleteFunc(b.kinds, func(k phalanx.EventKind) bool { return !slices.Contains(ks, k) })
}

func (b *filterBuilder) narrowServices(ss []phalanx.Service) {
	if b.svcs == nil {
		b.svcs = slices.Clone(ss)
		return
	}
	b.svcs = slices.DeleteFunc(b.svcs, func(s phalanx.Service) bool { return !slices.Contains(ss, s) })
}

// translateFilter maps a CrowdSec filter expression to a detect.Filter:
// a conjunction of field tests (==, !=, in, not in, contains, startsWith,
// endsWith), or a disjunction of tests of one field.
func translateFilter(src string) (detect.Filter, []string, string) {
	if strings.TrimSpace(src) == "" {
		return detect.Filter{}, nil, "empty: it would count every event"
	}
	e, err := parseExpr(src)
	if err != nil {
		return detect.Filter{}, nil, err.Error()
	}
	b := &filterBuilder{}
	if why := b.add(e); why != "" {
		return detect.Filter{}, nil, why
	}
	if b.kinds == nil {
		switch {
		case b.svcs != nil && allHTTP(b.svcs), len(b.f.Status) > 0, len(b.f.PathsContain) > 0, len(b.f.Methods) > 0:
			b.kinds = slices.Clone(httpKinds)
		case b.svcs != nil && slices.Equal(b.svcs, []phalanx.Service{phalanx.ServiceSSHD}):
			b.kinds = slices.Clone(sshFailKinds)
		default:
			return detect.Filter{}, nil, "it names no log type, service or status phalanx can map to event kinds"
		}
	}
	if len(b.kinds) == 0 {
		return detect.Filter{}, nil, "its tests exclude every event kind phalanx produces"
	}
	b.f.Kinds, b.f.Services = b.kinds, b.svcs
	if b.svcs != nil && len(b.svcs) == 0 {
		return detect.Filter{}, nil, "its tests exclude every service"
	}
	return b.f, b.notes, ""
}

func allHTTP(ss []phalanx.Service) bool {
	for _, s := range ss {
		if !slices.Contains(httpServices, s) {
			return false
		}
	}
	return len(ss) > 0
}

// add folds one conjunct into the filter; it returns why it cannot.
func (b *filterBuilder) add(e *expr) string {
	switch e.op {
	case "and":
		for _, c := range e.args {
			if why := b.add(c); why != "" {
				return why
			}
		}
		return ""
	case "or":
		return b.addOr(e)
	case "not":
		return fmt.Sprintf("%q: negation phalanx filters cannot express", e.src)
	case "==", "in", "!=", "not in":
		return b.addEq(e)
	case "contains", "startsWith", "endsWith":
		return b.addContains(e)
	case "matches":
		return fmt.Sprintf("%q: a regular expression on a field; phalanx scenarios filter by kind, status, method and path substrings (write a parser rule instead)", e.src)
	case "call":
		return fmt.Sprintf("%q: function %s is not translated (data files, regexps and lookups have no phalanx filter)", e.src, e.fn)
	}
	return fmt.Sprintf("%q: not a test phalanx can translate", e.src)
}

// addOr accepts a disjunction of equality tests on one field: the same as
// an in-list.
func (b *filterBuilder) addOr(e *expr) string {
	var field, op string
	var vals []string
	folded := true
	var walk func(*expr) bool
	walk = func(x *expr) bool {
		switch x.op {
		case "or":
			for _, a := range x.args {
				if !walk(a) {
					return false
				}
			}
			return true
		case "==", "in", "contains":
			if (field != "" && x.field != field) || (op != "" && (op == "contains") != (x.op == "contains")) {
				return false
			}
			field, op = x.field, x.op
			folded = folded && x.folded
			vals = append(vals, x.vals...)
			return true
		}
		return false
	}
	if !walk(e) {
		return fmt.Sprintf("%q: an or across different fields or tests; phalanx filters are an and of lists", e.src)
	}
	if op == "contains" {
		// paths_contain matches when any substring is there: an or.
		return b.addContains(&expr{op: "contains", field: field, vals: vals, folded: folded, src: e.src})
	}
	return b.addEq(&expr{op: "in", field: field, vals: vals, src: e.src})
}

func (b *filterBuilder) addEq(e *expr) string {
	neg := e.op == "!=" || e.op == "not in"
	for _, v := range e.vals {
		if v == "" {
			return fmt.Sprintf("%q: a test against the empty string has no phalanx filter", e.src)
		}
	}
	switch e.field {
	case "evt.Meta.log_type":
		if neg {
			return fmt.Sprintf("%q: excluding log types has no phalanx filter", e.src)
		}
		var svcs []phalanx.Service
		var kinds []phalanx.EventKind
		for _, v := range e.vals {
			lt, ok := logTypes[v]
			if !ok {
				return fmt.Sprintf("%q: log type %q has no phalanx parser", e.src, v)
			}
			svcs = appendNew(svcs, lt.services...)
			kinds = appendNew(kinds, lt.kinds...)
		}
		b.narrowServices(svcs)
		b.narrowKinds(kinds)
	case "evt.Meta.service":
		if neg {
			return fmt.Sprintf("%q: excluding services has no phalanx filter", e.src)
		}
		var svcs []phalanx.Service
		for _, v := range e.vals {
			switch v {
			case "http":
				svcs = appendNew(svcs, httpServices...)
			case "ssh":
				svcs = appendNew(svcs, phalanx.ServiceSSHD)
			case "smtp", "postfix":
				svcs = appendNew(svcs, phalanx.ServicePostfix)
			case "dovecot", "imap", "pop3":
				svcs = appendNew(svcs, phalanx.ServiceDovecot)
			default:
				return fmt.Sprintf("%q: service %q has no phalanx parser", e.src, v)
			}
		}
		b.narrowServices(svcs)
	case "evt.Meta.sub_type":
		if neg {
			return fmt.Sprintf("%q: excluding sub types has no phalanx filter", e.src)
		}
		var kinds []phalanx.EventKind
		for _, v := range e.vals {
			ks, ok := subTypes[v]
			if !ok {
				return fmt.Sprintf("%q: sub type %q has no phalanx event kind", e.src, v)
			}
			kinds = appendNew(kinds, ks...)
		}
		b.narrowKinds(kinds)
	case "evt.Meta.http_status", "evt.Parsed.status":
		if neg {
			return fmt.Sprintf("%q: excluding statuses has no phalanx filter", e.src)
		}
		var st []int
		for _, v := range e.vals {
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 || n > 599 {
				return fmt.Sprintf("%q: %q is not an HTTP status", e.src, v)
			}
			st = append(st, n)
		}
		if len(b.f.Status) > 0 {
			b.f.Status = slices.DeleteFunc(b.f.Status, func(n int) bool { return !slices.Contains(st, n) })
			if len(b.f.Status) == 0 {
				return fmt.Sprintf("%q: no status satisfies every test", e.src)
			}
		} else {
			b.f.Status = st
		}
	case "evt.Parsed.verb", "evt.Meta.http_verb":
		ms := make([]string, len(e.vals))
		for i, v := range e.vals {
			ms[i] = strings.ToUpper(v)
		}
		if neg {
			b.f.ExcludeMethods = appendNew(b.f.ExcludeMethods, ms...)
		} else if len(b.f.Methods) > 0 {
			return fmt.Sprintf("%q: two method tests in one filter", e.src)
		} else {
			b.f.Methods = ms
		}
	case "evt.Parsed.static_ressource":
		if len(e.vals) != 1 {
			return fmt.Sprintf("%q: not a true/false test", e.src)
		}
		static := e.vals[0] == "true"
		if neg {
			static = !static
		}
		if static {
			return fmt.Sprintf("%q: counting static files only has no phalanx filter", e.src)
		}
		b.f.ExcludePathSuffixes = appendNew(b.f.ExcludePathSuffixes, staticSuffix...)
		b.notes = append(b.notes, "static_ressource == 'false' approximated by excluding paths ending in "+strings.Join(staticSuffix, " "))
	case "evt.Meta.http_path", "evt.Parsed.request", "evt.Parsed.file_name", "evt.Parsed.http_path", "evt.Meta.http_uri":
		if neg {
			return fmt.Sprintf("%q: excluding paths has no phalanx filter", e.src)
		}
		// An exact path becomes "path contains it": broader when another
		// path holds it.
		b.f.PathsContain = appendNew(b.f.PathsContain, e.vals...)
		b.notes = append(b.notes, fmt.Sprintf("%q approximated as paths containing the value (any case)", e.src))
	default:
		return fmt.Sprintf("%q: field %s has no phalanx equivalent", e.src, e.field)
	}
	return ""
}

func (b *filterBuilder) addContains(e *expr) string {
	switch e.field {
	case "evt.Meta.http_path", "evt.Parsed.request", "evt.Parsed.file_name", "evt.Parsed.http_path", "evt.Meta.http_uri":
	case "evt.Meta.http_status", "evt.Parsed.status":
		// startsWith '40': the statuses 400-409.
		if e.op != "startsWith" || len(e.vals) != 1 || len(e.vals[0]) != 2 {
			return fmt.Sprintf("%q: %s on a status has no phalanx filter", e.src, e.op)
		}
		n, err := strconv.Atoi(e.vals[0])
		if err != nil || n < 10 || n > 59 {
			return fmt.Sprintf("%q: %q is not the start of an HTTP status", e.src, e.vals[0])
		}
		vals := make([]string, 10)
		for i := range vals {
			vals[i] = strconv.Itoa(n*10 + i)
		}
		return b.addEq(&expr{op: "in", field: e.field, vals: vals, src: e.src})
	default:
		return fmt.Sprintf("%q: %s on field %s has no phalanx filter (only paths)", e.src, e.op, e.field)
	}
	for _, v := range e.vals {
		if v == "" {
			return fmt.Sprintf("%q: an empty substring matches everything", e.src)
		}
	}
	if len(b.f.PathsContain) > 0 {
		return fmt.Sprintf("%q: two path tests in one filter (phalanx ORs path substrings)", e.src)
	}
	b.f.PathsContain = appendNew(b.f.PathsContain, e.vals...)
	if e.op != "contains" {
		b.notes = append(b.notes, fmt.Sprintf("%q approximated as paths containing the value", e.src))
	}
	if !e.folded {
		b.notes = append(b.notes, fmt.Sprintf("%q: phalanx compares paths ignoring ASCII case, CrowdSec exactly", e.src))
	}
	return ""
}

func appendNew[T comparable](s []T, vs ...T) []T {
	for _, v := range vs {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	return s
}
