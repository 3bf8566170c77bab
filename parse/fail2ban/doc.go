// Package fail2ban reads fail2ban's configuration and runs its filters, so
// that a fail2ban user can bring jails and filters to phalanx unchanged and
// check that nothing was lost in the move.
//
// # Configuration
//
// ReadConf reads name.conf, name.d/*.conf, name.local and name.d/*.local
// under a root (/etc/fail2ban) exactly as fail2ban's ConfigReader does:
// [INCLUDES] before/after (and the .local beside every included .conf),
// [DEFAULT] falling through, %(var)s interpolation with fail2ban's
// %(known/opt)s, %(default/opt)s and %(section/opt)s forms and __name__,
// continuation lines, "#" and ";" comments, sections merged key by key.
// Conf.Sections, Conf.Get and Conf.GetWith are what an importer of
// jail.conf needs; ParseFilterSpec splits a jail's
// `filter = sshd[mode=aggressive, port="ssh"]`. All values are checked
// against fail2ban's own reader for every file Debian installs.
//
// # Filters
//
// LoadFilter(root, name, args) resolves a filter as fail2ban's
// FilterReader does ([Definition] and [Init], the arguments overriding
// both, <tag> substitution such as sshd's <mdre-<mode>>) and compiles its
// failregex, ignoreregex and prefregex: fail2ban's tags (<HOST>, <ADDR>,
// <IP4>, <IP6>, <DNS>, <CIDR>, <SUBNET>, <SKIPLINES>, <F-USER>...</F-USER>,
// <F-ID>, <F-NOFAIL>, <F-MLFID>, <F-CONTENT>, any <F-NAME>) are expanded,
// and each Python expression is translated to RE2 where the translation is
// exact ({,n}, \Z, (?P<name>), global flags, escapes; a backreference to a
// group that can only be one of a few strings becomes an alternation).
// The rest — lookarounds, backreferences to open-ended groups,
// conditionals — run on github.com/dlclark/regexp2, a backtracking engine,
// with MatchTimeout per line so that an attacker's line cannot stall
// ingestion. A numbered reference (\2, (?(2)...)) is rewritten to the group
// Python numbers 2, since regexp2 numbers named groups after unnamed ones;
// one Python refuses, or one to a group a rule merges with others (<HOST>'s
// ip4, ip6 and dns are one source_name), is refused with the reason. Filter.Problems names every expression that is not RE2, and
// every one that cannot run at all, with the reason: nothing is dropped
// silently. LoadFilterFile takes a path (FILE.conf, FILE.conf:MODE or
// FILE.conf[args]) as fail2ban-regex does.
//
// A Matcher (Filter.NewMatcher, one per log) runs the filter with
// fail2ban's semantics: the date is found (package datedetect: fail2ban's
// default templates or the filter's datepattern) and cut out of the line,
// prefregex runs and its <F-CONTENT> is what failregex sees, ignoreregex
// excludes, maxlines buffers lines (bounded), and <F-MLFID> merges the
// lines of one connection (bounded cache), so that a later line can
// supply an earlier failure's address or cancel it. Failure.Event makes a
// phalanx.Event: the address as Source, a host name as SourceName (never
// resolved), the user, the time, the filter's name as the service,
// rule_match (info for a <F-NOFAIL> match). `phalanx parse
// --fail2ban-filter` uses it.
//
// Against the annotated sample logs fail2ban ships for Debian's filters,
// the Matcher agrees with the annotations on every case; see
// docs/accuracy.md and TestDebianSamples.
//
// # Writing a filter into a phalanx rules file (for the importer)
//
//	f, err := fail2ban.LoadFilter("/etc/fail2ban", name, args) // name, args from ParseFilterSpec(jail's filter)
//	rs, problems := f.Rules()                                  // []rules.Rule, one per failregex
//	data, err := yaml.Marshal(struct {
//		Rules []rules.Rule `yaml:"rules"`
//	}{rs})
//	// write data (with the jail's scenarios) to the rules file; print problems
//
// Each rule carries date: (the filter's datepattern, or "default"),
// prefix: (prefregex), ignore: (ignoreregex) and, when one of its
// expressions is not RE2, engine: backtracking; package rules runs them
// (the rules file of phalanx.yaml for `phalanx up`, --rules for `replay`
// and `parse`). Rule names
// are <filter>[-<mode>]-<n> and unique per filter: prefix them with the
// jail's name when two jails use the same filter. The host's captures
// become source_name (an address there is the event's source; a name is
// shown, never decided on), <F-USER> user, <F-NOFAIL> nofail (benign).
// Rules see one line at a time: what a filter does across lines
// (maxlines > 1, <F-MLFID> connection tracking) is lost, and Rules says so
// in its problems; TestDebianSamplesAsRules measures what remains (94.6%
// of the sample cases: the difference is sshd's connection tracking and
// the three multi-line filters).
package fail2ban
