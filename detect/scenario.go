package detect

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
)

// Type is how a scenario counts.
type Type string

// Scenario types.
const (
	// Leaky is a leaky bucket: it overflows on the (capacity+1)th event
	// still in the bucket. Events leak out one every Leak, or, with Window,
	// each event leaves the bucket Window after it arrived.
	Leaky Type = "leaky"
	// Trigger decides on the first matching event.
	Trigger Type = "trigger"
	// Distinct is a leaky bucket that only counts values (users or paths)
	// it does not already hold: it overflows on the (capacity+1)th
	// distinct value.
	Distinct Type = "distinct"
)

// Group says how sources are keyed.
type Group string

// Groups.
const (
	GroupIP       Group = "ip"       // one bucket per address (the default)
	GroupPrefix64 Group = "prefix64" // IPv6 sources share the bucket of their /64
)

// Distinct values a distinct scenario can count.
const (
	DistinctUser = "user"
	DistinctPath = "path" // the path without its query string
)

// Scenario is one detection rule: the YAML schema and the Go API alike.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	Type        Type   `yaml:"type"`
	Filter      Filter `yaml:"filter"`
	// Capacity is how many events (distinct values) the bucket holds: it
	// overflows on the next one.
	Capacity int `yaml:"capacity,omitempty"`
	// Leak is the time for one event to leak out. Set Leak or Window.
	Leak Duration `yaml:"leak,omitempty"`
	// Window makes the bucket a sliding window: capacity+1 events within
	// Window overflow it. Set Leak or Window.
	Window Duration `yaml:"window,omitempty"`
	// Distinct is what a distinct scenario counts: user or path.
	Distinct string `yaml:"distinct,omitempty"`
	// Blackhole is how long the source is ignored by this scenario after
	// it fired: one attack yields one decision, not one per line.
	Blackhole Duration     `yaml:"blackhole,omitempty"`
	Decision  DecisionSpec `yaml:"decision"`
	Group     Group        `yaml:"group,omitempty"`
}

// Filter selects the events a scenario counts. Every non-empty list must
// match; within a list any entry matches.
type Filter struct {
	Services []phalanx.Service   `yaml:"services,omitempty"`
	Kinds    []phalanx.EventKind `yaml:"kinds"`
	// Methods and ExcludeMethods match Event.Method: the HTTP method or
	// the SSH authentication method.
	Methods        []string `yaml:"methods,omitempty"`
	ExcludeMethods []string `yaml:"exclude_methods,omitempty"`
	// PathsContain matches when the path holds any of these (ASCII case
	// is ignored).
	PathsContain []string `yaml:"paths_contain,omitempty"`
	// ExcludePathSuffixes drops paths (without query) ending in any of
	// these, ignoring case: broken images are not probing.
	ExcludePathSuffixes []string `yaml:"exclude_path_suffixes,omitempty"`
	Status              []int    `yaml:"status,omitempty"`
	// UserPrefixes matches users that start with any of these.
	UserPrefixes []string `yaml:"user_prefixes,omitempty"`
}

// DecisionSpec is the decision a scenario takes when it fires.
type DecisionSpec struct {
	Type     phalanx.DecisionType `yaml:"type"`
	Duration Duration             `yaml:"duration"`
}

// Duration is a time.Duration written as "10s", "5m", "4h" or "7d".
type Duration time.Duration

// ParseDuration parses Go durations and whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("invalid duration %q: use a whole number of days like 7d, or Go syntax like 90m", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go syntax like 10s, 5m, 4h, or days like 7d", s)
	}
	return d, nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string like 10s, 5m, 4h or 7d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String is the Go syntax of the duration.
func (d Duration) String() string { return time.Duration(d).String() }

//go:embed scenarios.yaml
var defaultScenarios []byte

// DefaultScenarios returns the scenarios built into the binary. Each call
// returns a fresh copy.
func DefaultScenarios() []Scenario {
	s, err := ParseScenarios(defaultScenarios, "detect/scenarios.yaml")
	if err != nil {
		// The embedded file is checked by the tests; this is a build error.
		panic(err)
	}
	return s
}

// LoadScenarios reads the scenarios of a YAML file. The file may also hold
// custom parser `rules:`, which are ignored here.
func LoadScenarios(path string) ([]Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return ParseScenarios(data, path)
}

// scenarioFile is the top level of a scenario file. Rules belong to the
// parser's custom rules; they are decoded elsewhere.
type scenarioFile struct {
	Scenarios []Scenario `yaml:"scenarios"`
	Rules     yaml.Node  `yaml:"rules"`
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseScenarios parses and validates scenario YAML; name (usually the
// file path) prefixes error messages as name:line.
func ParseScenarios(data []byte, name string) ([]Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f scenarioFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(name, err)
	}
	// A second, lenient pass keeps the nodes, for the line of each field.
	var raw struct {
		Scenarios []yaml.Node `yaml:"scenarios"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, yamlError(name, err)
	}
	seen := make(map[string]int, len(f.Scenarios))
	for i := range f.Scenarios {
		s := &f.Scenarios[i]
		var node *yaml.Node
		if i < len(raw.Scenarios) {
			node = &raw.Scenarios[i]
		}
		if field, msg := s.check(); msg != "" {
			return nil, fmt.Errorf("detect: %s:%d: scenario %q: %s", name, fieldLine(node, field), s.Name, msg)
		}
		if prev, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("detect: %s:%d: scenario %q is defined twice (first at line %d): rename one",
				name, fieldLine(node, "name"), s.Name, fieldLine(&raw.Scenarios[prev], "name"))
		}
		seen[s.Name] = i
	}
	return f.Scenarios, nil
}

// yamlError turns a yaml error into "detect: name:line: what".
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if g := lineRE.FindStringSubmatch(m); g != nil {
			m = name + ":" + g[1] + ": " + hint(g[2])
		} else {
			m = name + ": " + hint(m)
		}
		out = append(out, m)
	}
	return fmt.Errorf("detect: %s", strings.Join(out, "; "))
}

func hint(m string) string {
	switch {
	case strings.Contains(m, "not found in type detect.Scenario"):
		return m + ": fix the spelling; scenario fields are name, description, type, filter, capacity, leak, window, distinct, blackhole, decision, group"
	case strings.Contains(m, "not found in type detect.Filter"):
		return m + ": fix the spelling; filter fields are services, kinds, methods, exclude_methods, paths_contain, exclude_path_suffixes, status, user_prefixes"
	case strings.Contains(m, "not found in type detect.scenarioFile"):
		return m + ": a scenario file holds only scenarios: (and rules:)"
	case strings.Contains(m, "cannot unmarshal"):
		return m + ": check the value's type against the scenario schema"
	}
	return m
}

// fieldLine finds the line of a field ("filter.kinds") in a scenario node,
// falling back to the closest enclosing node.
func fieldLine(n *yaml.Node, field string) int {
	if n == nil {
		return 0
	}
	line := n.Line
	for _, part := range strings.Split(field, ".") {
		if part == "" || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// maxCapacity bounds the per-bucket state of window and distinct
// buckets, which keep one entry per counted event.
const maxCapacity = 1000

// check validates a scenario; it returns the offending field and what to
// fix, or "" if the scenario is valid.
func (s *Scenario) check() (field, msg string) {
	if strings.TrimSpace(s.Name) == "" {
		return "name", "name is missing: give the scenario a short unique name like ssh-bf"
	}
	switch s.Type {
	case Leaky, Distinct, Trigger:
	case "":
		return "type", "type is missing: use leaky, trigger or distinct"
	default:
		return "type", fmt.Sprintf("unknown type %q: use leaky, trigger or distinct", s.Type)
	}
	if len(s.Filter.Kinds) == 0 {
		return "filter", "filter.kinds is empty: list the event kinds the scenario counts, e.g. kinds: [auth_failed]"
	}
	for _, k := range s.Filter.Kinds {
		if k == "" {
			return "filter.kinds", "filter.kinds holds an empty kind: remove it"
		}
	}
	for _, st := range s.Filter.Status {
		if st < 100 || st > 599 {
			return "filter.status", fmt.Sprintf("status %d is not an HTTP status: use 100-599", st)
		}
	}
	for _, p := range s.Filter.PathsContain {
		if p == "" {
			return "filter.paths_contain", "paths_contain holds an empty string, which matches everything: remove it"
		}
	}
	if s.Type == Trigger {
		switch {
		case s.Capacity != 0:
			return "capacity", "a trigger fires on the first event: remove capacity, or use type leaky"
		case s.Leak != 0 || s.Window != 0:
			return "leak", "a trigger fires on the first event: remove leak and window, or use type leaky"
		case s.Distinct != "":
			return "distinct", "distinct applies to type distinct only: remove it"
		}
	} else {
		switch {
		case s.Capacity < 1 || s.Capacity > maxCapacity:
			return "capacity", fmt.Sprintf("capacity must be 1-%d (the bucket overflows on the (capacity+1)th event)", maxCapacity)
		case s.Leak < 0 || s.Window < 0:
			return "leak", "leak and window must be positive"
		case s.Leak == 0 && s.Window == 0:
			return "capacity", "set leak (one event leaks out every leak, e.g. leak: 10s) or window (e.g. window: 1h)"
		case s.Leak != 0 && s.Window != 0:
			return "window", "set leak or window, not both"
		}
		if s.Type == Distinct {
			if s.Distinct != DistinctUser && s.Distinct != DistinctPath {
				return "distinct", fmt.Sprintf("distinct %q: use user or path", s.Distinct)
			}
		} else if s.Distinct != "" {
			return "distinct", "distinct applies to type distinct only: remove it or use type distinct"
		}
	}
	if s.Blackhole < 0 {
		return "blackhole", "blackhole must not be negative"
	}
	if _, err := phalanx.ParseDecisionType(string(s.Decision.Type)); err != nil {
		return "decision", "decision: " + err.Error()
	}
	if s.Decision.Duration <= 0 {
		return "decision", "decision.duration is missing: give how long the decision lasts, e.g. duration: 4h"
	}
	switch s.Group {
	case "", GroupIP, GroupPrefix64:
	default:
		return "group", fmt.Sprintf("unknown group %q: use ip or prefix64", s.Group)
	}
	return "", ""
}
