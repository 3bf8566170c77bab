// Package f2bjail translates fail2ban's jails (jail.conf, jail.local,
// jail.d/) into phalanx configuration: for every enabled jail, the files
// or journal it watches with the native phalanx parser for its filter, a
// scenario with its maxretry, findtime and bantime, and its ignoreip as
// the allowlist. Whatever it cannot carry over — a filter phalanx has no
// parser for, an option with no equivalent — is reported with the reason.
package f2bjail

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/parse/fail2ban"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/source/file"
	"github.com/phalanx-defence/phalanx/source/journald"
)

// permanent is how long a permanent fail2ban ban (bantime -1) lasts:
// phalanx decisions always expire.
const permanent = 365 * 24 * time.Hour

// native is a fail2ban filter phalanx has a built-in parser for: the
// parser's hint and service, and the event kinds that stand for the
// filter's failures.
type native struct {
	hint    string
	service phalanx.Service
	kinds   []phalanx.EventKind
}

var (
	sshKinds = []phalanx.EventKind{phalanx.KindAuthFailed, phalanx.KindInvalidUser, phalanx.KindUserNotAllowed,
		phalanx.KindMaxAuthTries, phalanx.KindPreauthClose, phalanx.KindKexFailure, phalanx.KindBannerError,
		phalanx.KindConnRefused, phalanx.KindAuthTimeout}
	mailAuth   = []phalanx.EventKind{phalanx.KindMailAuthFailed}
	mailReject = []phalanx.EventKind{phalanx.KindMailRejected, phalanx.KindMailProtocol, phalanx.KindMailAuthFailed}
)

// natives maps fail2ban filter names to phalanx's parsers. For sshd the
// jail's mode becomes config's sshd_mode, which decides the kinds the
// parser emits; the list here is every kind it can emit.
var natives = map[string]native{
	"sshd":              {"sshd", phalanx.ServiceSSHD, sshKinds},
	"nginx-http-auth":   {"nginx", phalanx.ServiceNginx, []phalanx.EventKind{phalanx.KindHTTPAuthFailed}},
	"nginx-limit-req":   {"nginx", phalanx.ServiceNginx, []phalanx.EventKind{phalanx.KindHTTPRateLimited}},
	"nginx-botsearch":   {"nginx", phalanx.ServiceNginx, []phalanx.EventKind{phalanx.KindHTTPNotFound, phalanx.KindHTTPSensitive}},
	"nginx-bad-request": {"nginx", phalanx.ServiceNginx, []phalanx.EventKind{phalanx.KindHTTPMalformed}},
	"apache-auth":       {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPAuthFailed}},
	"apache-badbots":    {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPBadAgent}},
	"apache-botsearch":  {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPNotFound, phalanx.KindHTTPSensitive}},
	"apache-noscript":   {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPNotFound, phalanx.KindHTTPSensitive}},
	"apache-overflows":  {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPMalformed}},
	"apache-shellshock": {"apache", phalanx.ServiceApache, []phalanx.EventKind{phalanx.KindHTTPExploit}},
	"postfix":           {"postfix", phalanx.ServicePostfix, mailReject},
	"postfix-sasl":      {"postfix", phalanx.ServicePostfix, mailAuth},
	"dovecot":           {"dovecot", phalanx.ServiceDovecot, mailAuth},
}

// Problem is one thing that did not carry over, or carried over with a
// difference the operator should know about (Note).
type Problem struct {
	Jail   string `json:"jail"`
	Option string `json:"option"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
	Note   bool   `json:"note,omitempty"` // translated, with this difference
}

// Jail is what became of one enabled jail.
type Jail struct {
	Name       string   `json:"name"`
	Filter     string   `json:"filter"`
	Parser     string   `json:"parser"` // the native parser's hint, or "" when none
	LogPaths   []string `json:"logpaths,omitempty"`
	Backend    string   `json:"backend"`
	Journal    []string `json:"journalmatch,omitempty"`
	MaxRetry   int      `json:"maxretry"`
	FindTime   string   `json:"findtime"`
	BanTime    string   `json:"bantime"`
	Scenario   string   `json:"scenario,omitempty"` // the phalanx scenario made for it
	Translated bool     `json:"translated"`
	// Increment is bantime.increment; MaxTime its bantime.maxtime.
	Increment bool          `json:"bantime_increment,omitempty"`
	MaxTime   time.Duration `json:"-"`
}

// Result is the translation of a fail2ban configuration.
type Result struct {
	From      string            `json:"from"`
	Jails     []Jail            `json:"jails"`
	Disabled  int               `json:"disabled"`
	Problems  []Problem         `json:"problems"`
	Config    config.Config     `json:"-"`
	Scenarios []detect.Scenario `json:"-"`
	// Rules are the translated fail2ban filters of jails phalanx has no
	// native parser for (parse/fail2ban's Filter.Rules).
	Rules []rules.Rule `json:"-"`

	ruleSets map[string]bool // filter specs whose rules are in Rules
}

// Import reads the jails under from (/etc/fail2ban) and translates the
// enabled ones.
func Import(from string) (*Result, error) {
	conf, err := fail2ban.ReadConf(from, "jail")
	if err != nil {
		return nil, fmt.Errorf("fail2ban jails: %w (give fail2ban's configuration directory with --from)", err)
	}
	r := &Result{From: from, Jails: []Jail{}, Problems: []Problem{}}
	files := map[string]*file.Config{} // path → its entry
	var fileOrder []string
	allow := map[string]bool{}
	sshdMode := ""
	for _, sec := range conf.Sections() {
		if sec == "DEFAULT" || strings.HasPrefix(sec, "KNOWN/") {
			continue
		}
		if v, _ := conf.Get(sec, "enabled"); !truth(v) {
			r.Disabled++
			continue
		}
		j, ps, scen, mode := r.jail(conf, from, sec)
		r.Problems = append(r.Problems, ps...)
		if j.Translated {
			r.Scenarios = append(r.Scenarios, scen)
			if mode != "" {
				if sshdMode != "" && sshdMode != mode {
					r.Problems = append(r.Problems, Problem{Jail: sec, Option: "filter", Value: "mode=" + mode,
						Reason: fmt.Sprintf("phalanx has one sshd mode for all sshd logs: %s (from an earlier jail) is kept", sshdMode)})
				} else {
					sshdMode = mode
				}
			}
			if len(j.Journal) > 0 {
				hint := j.Parser
				if strings.HasPrefix(hint, "rules:") {
					hint = ""
				}
				r.Config.Journald = append(r.Config.Journald, journald.Config{Matches: j.Journal, Hint: hint})
			}
			hint := j.Parser
			if strings.HasPrefix(hint, "rules:") {
				hint = "" // custom rules run on any format
			}
			for _, p := range j.LogPaths {
				if fc, ok := files[p]; ok {
					if fc.Hint != hint {
						r.Problems = append(r.Problems, Problem{Jail: sec, Option: "logpath", Value: p, Note: true,
							Reason: fmt.Sprintf("read by jails with parsers %q and %q: phalanx reads it once and recognises each line's format", fc.Hint, hint)})
						fc.Hint = ""
					}
					continue
				}
				files[p] = &file.Config{Paths: []string{p}, Hint: hint}
				fileOrder = append(fileOrder, p)
			}
			if v, ok := conf.Get(sec, "ignoreip"); ok {
				for _, a := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' }) {
					if _, err := phalanx.ParsePrefixOrAddr(a); err != nil {
						r.Problems = append(r.Problems, Problem{Jail: sec, Option: "ignoreip", Value: a,
							Reason: "not an address or CIDR range: phalanx never resolves names (an attacker controls its DNS); give the address"})
						continue
					}
					allow[a] = true
				}
			}
		}
		r.Jails = append(r.Jails, j)
	}
	for _, p := range fileOrder {
		r.Config.Files = append(r.Config.Files, *files[p])
	}
	for a := range allow {
		r.Config.Allowlist = append(r.Config.Allowlist, a)
	}
	slices.Sort(r.Config.Allowlist)
	r.Config.SSHDMode = sshdMode
	r.escalation()
	r.Problems = mergeProblems(r.Problems)
	return r, nil
}

// mergeProblems reports once what several jails share (an option set in
// [DEFAULT]), naming every jail it concerns.
func mergeProblems(ps []Problem) []Problem {
	type key struct{ option, value, reason string }
	at := map[key]int{}
	out := make([]Problem, 0, len(ps))
	for _, p := range ps {
		k := key{p.Option, p.Value, p.Reason}
		if i, ok := at[k]; ok {
			out[i].Jail += ", " + p.Jail
			continue
		}
		at[k] = len(out)
		out = append(out, p)
	}
	return out
}

// jail translates one enabled jail.
func (r *Result) jail(conf *fail2ban.Conf, from, sec string) (Jail, []Problem, detect.Scenario, string) {
	j := Jail{Name: sec}
	var ps []Problem
	bad := func(option, value, reason string) {
		ps = append(ps, Problem{Jail: sec, Option: option, Value: value, Reason: reason})
	}
	note := func(option, value, reason string) {
		ps = append(ps, Problem{Jail: sec, Option: option, Value: value, Reason: reason, Note: true})
	}
	spec, ok := conf.Get(sec, "filter")
	if !ok {
		spec = sec
	}
	name, args, err := fail2ban.ParseFilterSpec(spec)
	if err != nil {
		bad("filter", spec, err.Error())
		return j, ps, detect.Scenario{}, ""
	}
	j.Filter = spec
	maxretry, findtime, bantime := 5, 10*time.Minute, 10*time.Minute
	if v, ok := conf.Get(sec, "maxretry"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			bad("maxretry", v, "not a positive whole number; fail2ban's default 5 is used")
		} else {
			maxretry = n
		}
	}
	if v, ok := conf.Get(sec, "findtime"); ok {
		if d, err := Seconds(v); err != nil || d <= 0 {
			bad("findtime", v, "not a duration fail2ban understands; its default 10m is used")
		} else {
			findtime = d
		}
	}
	if v, ok := conf.Get(sec, "bantime"); ok {
		d, err := Seconds(v)
		switch {
		case err != nil:
			bad("bantime", v, "not a duration fail2ban understands; its default 10m is used")
		case d < 0:
			bantime = permanent
			note("bantime", v, "a permanent ban: phalanx decisions always expire, so it lasts a year")
		case d == 0:
			bad("bantime", v, "zero: its default 10m is used")
		default:
			bantime = d
		}
	}
	j.MaxRetry, j.FindTime, j.BanTime = maxretry, findtime.String(), bantime.String()
	backend, _ := conf.Get(sec, "backend")
	j.Backend = strings.TrimSpace(backend)
	if j.Backend == "" {
		j.Backend = "auto"
	}

	n, isNative := natives[name]
	if !isNative {
		if name == "recidive" {
			bad("filter", spec, "recidive bans repeat offenders from fail2ban's own log; phalanx escalates repeat offenders itself (each new decision against an address lasts twice the previous, up to 7 days)")
			return j, ps, detect.Scenario{}, ""
		}
		// No native parser: the filter itself, as phalanx rules.
		f, err := fail2ban.LoadFilter(from, name, args)
		if err != nil {
			bad("filter", spec, fmt.Sprintf("filter %s does not load: %v", name, err))
			return j, ps, detect.Scenario{}, ""
		}
		rs, probs := f.Rules()
		for _, p := range probs {
			ps = append(ps, Problem{Jail: sec, Option: "filter " + name + " " + p.Option, Value: p.Expr, Reason: p.Reason, Note: p.Fallback})
		}
		if len(rs) == 0 {
			bad("filter", spec, fmt.Sprintf("none of filter %s's %d failregex translates to a phalanx rule (see the problems above)", name, len(f.Failregex)))
			return j, ps, detect.Scenario{}, ""
		}
		if r.ruleSets == nil {
			r.ruleSets = map[string]bool{}
		}
		key := rs[0].Name
		if !r.ruleSets[key] {
			r.ruleSets[key] = true
			r.Rules = append(r.Rules, rs...)
		}
		n = native{hint: "", service: rs[0].Service, kinds: []phalanx.EventKind{phalanx.KindRuleMatch}}
		note("filter", spec, fmt.Sprintf("no native phalanx parser: its %d failregex run as phalanx rules (rules.yaml), %d did not translate", len(rs), len(f.Failregex)-len(rs)))
	}
	j.Parser = n.hint
	if !isNative {
		j.Parser = "rules:" + name
	}
	mode := ""
	if name == "sshd" {
		mode = args["mode"]
		if mode == "" {
			mode = "normal" // fail2ban's sshd filter default
		}
	}
	if j.Backend == "systemd" {
		f, err := fail2ban.LoadFilter(from, name, args)
		if err != nil || len(f.JournalMatch) == 0 {
			bad("backend", "systemd", fmt.Sprintf("the filter has no journalmatch to follow the journal with; add a journald: entry with matches by hand (%v)", err))
			return j, ps, detect.Scenario{}, ""
		}
		if jm, ok := conf.Get(sec, "journalmatch"); ok && strings.TrimSpace(jm) != "" {
			j.Journal = journalMatches(jm)
		} else {
			j.Journal = journalMatches(strings.Join(f.JournalMatch, " + "))
		}
	} else {
		lp, _ := conf.Get(sec, "logpath")
		for _, p := range strings.Fields(lp) {
			if p == "" {
				continue
			}
			j.LogPaths = append(j.LogPaths, p)
		}
		if len(j.LogPaths) == 0 {
			bad("logpath", lp, "no log file to follow: give logpath, or backend = systemd")
			return j, ps, detect.Scenario{}, ""
		}
		if j.Backend != "auto" && j.Backend != "polling" && j.Backend != "pyinotify" && j.Backend != "gamin" {
			note("backend", j.Backend, "phalanx follows files its own way (inotify with polling as a fallback)")
		}
	}

	s := detect.Scenario{
		Name:        "f2b-" + sec,
		Description: fmt.Sprintf("fail2ban jail %s: %d failures within %s ban for %s", sec, maxretry, findtime, bantime),
		Filter:      detect.Filter{Services: []phalanx.Service{n.service}, Kinds: n.kinds},
		Decision:    detect.DecisionSpec{Type: phalanx.Ban, Duration: detect.Duration(bantime)},
	}
	// fail2ban bans when the failures within findtime reach maxretry; a
	// phalanx window bucket overflows on its (capacity+1)th event within
	// the window: capacity maxretry-1.
	switch {
	case maxretry == 1:
		s.Type = detect.Trigger
	case maxretry-1 > 1000:
		s.Type, s.Capacity, s.Window = detect.Leaky, 1000, detect.Duration(findtime)
		bad("maxretry", strconv.Itoa(maxretry), "phalanx buckets hold at most 1000 events: the jail bans at 1001")
	default:
		s.Type, s.Capacity, s.Window = detect.Leaky, maxretry-1, detect.Duration(findtime)
	}
	j.Scenario, j.Translated = s.Name, true

	if v, _ := conf.Get(sec, "bantime.increment"); truth(v) {
		j.Increment = true
		if x, _ := conf.Get(sec, "bantime.maxtime"); strings.TrimSpace(x) != "" {
			if d, err := Seconds(strings.TrimSpace(x)); err == nil && d > 0 {
				j.MaxTime = d
			} else {
				bad("bantime.maxtime", strings.TrimSpace(x), "not a fail2ban time: phalanx's cap (7 days) applies")
			}
		}
		for _, o := range []string{"bantime.factor", "bantime.multipliers", "bantime.formula", "bantime.rndtime"} {
			if x, _ := conf.Get(sec, o); strings.TrimSpace(x) != "" && (o != "bantime.factor" || strings.TrimSpace(x) != "1") {
				note(o, strings.TrimSpace(x),
					"phalanx's escalation doubles a repeat offender's decision each time (fail2ban's default formula); this option is not carried over")
			}
		}
	}
	if v, ok := conf.Get(sec, "port"); ok && strings.TrimSpace(v) != "" && !strings.Contains(v, "0:65535") {
		note("port", strings.TrimSpace(v), "phalanx bans the address on every port, not only the jail's")
	}
	if v, _ := conf.Get(sec, "usedns"); strings.EqualFold(strings.TrimSpace(v), "yes") {
		note("usedns", "yes", "phalanx never resolves host names in logs: lines naming only a host are not counted")
	}
	return j, ps, s, mode
}

// journalMatches turns fail2ban's journalmatch ("_SYSTEMD_UNIT=sshd.service
// + _COMM=sshd") into journald source matches.
func journalMatches(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		out = append(out, f)
	}
	return out
}

func truth(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on", "enabled":
		return true
	}
	return false
}

var durPart = regexp.MustCompile(`(?i)^(-?\d+(?:\.\d+)?)\s*(years?|yy?|months?|mo|weeks?|ww?|days?|dd?|hours?|hh?|minutes?|mins?|mm?|seconds?|secs?|ss?)?`)

// Seconds parses a fail2ban time ("600", "10m", "1h30m", "1d", "1w",
// "-1") as fail2ban's str2seconds does.
func Seconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	var total float64
	rest := s
	for rest != "" {
		m := durPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("fail2ban time %q: cannot read %q", s, rest)
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("fail2ban time %q: %w", s, err)
		}
		unit := strings.ToLower(m[2])
		mult := 1.0
		switch {
		case unit == "" || strings.HasPrefix(unit, "s"):
		case unit == "mo" || strings.HasPrefix(unit, "month"):
			mult = 30.4375 * 86400
		case strings.HasPrefix(unit, "m"):
			mult = 60
		case strings.HasPrefix(unit, "h"):
			mult = 3600
		case strings.HasPrefix(unit, "d"):
			mult = 86400
		case strings.HasPrefix(unit, "w"):
			mult = 7 * 86400
		case strings.HasPrefix(unit, "y"):
			mult = 365.25 * 86400
		}
		total += n * mult
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	if total > float64(100*365*86400) {
		return 0, fmt.Errorf("fail2ban time %q: longer than a century", s)
	}
	return time.Duration(total * float64(time.Second)), nil
}

// Write writes dir/phalanx.yaml and dir/rules.yaml and checks that both
// load the way `phalanx up --config` and `phalanx replay --rules` load
// them.
func (r *Result) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fail2ban jails: %w", err)
	}
	cfg := r.Config
	cfg.Rules = "rules.yaml"
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# phalanx configuration translated from fail2ban's jails in %s by\n# 'phalanx import fail2ban'. Jails: %s.\n# Run: phalanx up --config %s\n",
		r.From, translatedNames(r.Jails), filepath.Join(dir, "phalanx.yaml"))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("fail2ban jails: %w", err)
	}
	cfgPath := filepath.Join(dir, "phalanx.yaml")
	if err := os.WriteFile(cfgPath, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fail2ban jails: %w", err)
	}
	buf.Reset()
	fmt.Fprintf(&buf, "# Translated from fail2ban's jails in %s: a scenario per enabled jail, and\n# the filters of jails phalanx has no native parser for as rules. The\n# scenarios run beside phalanx's built-in ones.\n", r.From)
	enc = yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	ss := r.Scenarios
	if ss == nil {
		ss = []detect.Scenario{}
	}
	if err := enc.Encode(struct {
		Rules     []rules.Rule      `yaml:"rules,omitempty"`
		Scenarios []detect.Scenario `yaml:"scenarios"`
	}{r.Rules, ss}); err != nil {
		return fmt.Errorf("fail2ban jails: %w", err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fail2ban jails: %w", err)
	}
	// Check them back: a translation that phalanx refuses is a bug.
	loaded, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("fail2ban jails: the written config does not load (a bug): %w", err)
	}
	set, scen, err := config.LoadRulesFile(loaded.Rules)
	if err != nil {
		return fmt.Errorf("fail2ban jails: the written rules and scenarios do not load (a bug): %w", err)
	}
	if n := len(r.Rules); n > 0 && (set == nil || len(set.Rules()) != n) {
		return fmt.Errorf("fail2ban jails: %d rules written, not all read back (a bug)", n)
	}
	if _, err := detect.New(detect.Config{Scenarios: append(detect.DefaultScenarios(), scen...)}); err != nil {
		return fmt.Errorf("fail2ban jails: the written scenarios do not run (a bug): %w", err)
	}
	for _, a := range loaded.Allowlist {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				return fmt.Errorf("fail2ban jails: allowlist entry %q does not parse (a bug)", a)
			}
		}
	}
	return nil
}

func translatedNames(js []Jail) string {
	var out []string
	for _, j := range js {
		if j.Translated {
			out = append(out, j.Name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// escalation maps bantime.increment onto phalanx's escalation, which is
// one setting for all scenarios: on, doubling each repeat offender's
// decision (fail2ban's default formula), when any translated jail has it,
// capped by the largest bantime.maxtime; off, as fail2ban does by default,
// when none has it. Jails that disagree are reported.
func (r *Result) escalation() {
	var on, off []string
	var maxTime time.Duration
	for _, j := range r.Jails {
		if !j.Translated {
			continue
		}
		if j.Increment {
			on = append(on, j.Name)
			maxTime = max(maxTime, j.MaxTime)
		} else {
			off = append(off, j.Name)
		}
	}
	switch {
	case len(on) == 0 && len(off) == 0:
	case len(on) == 0:
		r.Config.Escalation = detect.Escalation{Off: true}
	default:
		r.Config.Escalation = detect.Escalation{Factor: 2, Max: maxTime}
		for _, name := range off {
			r.Problems = append(r.Problems, Problem{Jail: name, Option: "bantime.increment", Value: "false", Note: true,
				Reason: fmt.Sprintf("phalanx escalates for all scenarios or none: on here because %s has bantime.increment", strings.Join(on, ", "))})
		}
	}
}
