package f2bjail

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/detect"
)

// debianConf copies Debian's /etc/fail2ban into a temporary directory
// with a jail.local of the test's, or skips when fail2ban is not there.
func debianConf(t *testing.T, jailLocal string) string {
	t.Helper()
	if _, err := os.Stat("/etc/fail2ban/jail.conf"); err != nil {
		t.Skip("no /etc/fail2ban/jail.conf (apt-get install fail2ban): the jail import test reads Debian's real configuration")
	}
	dir := filepath.Join(t.TempDir(), "fail2ban")
	if out, err := exec.Command("cp", "-a", "/etc/fail2ban", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc/fail2ban: %v\n%s", err, out)
	}
	// The test's jails only: a jail.local or jail.d/ of this machine's
	// own must not change what the test expects.
	os.Remove(filepath.Join(dir, "jail.local"))
	os.RemoveAll(filepath.Join(dir, "jail.d"))
	if err := os.WriteFile(filepath.Join(dir, "jail.local"), []byte(jailLocal), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const jailLocal = `[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24 gateway.example.org
bantime.increment = true
bantime.factor = 2

[sshd]
enabled = true
mode = aggressive
backend = systemd
maxretry = 3
findtime = 10m
bantime = 1h

[nginx-http-auth]
enabled = true

[postfix]
enabled = true
bantime = -1

[recidive]
enabled = true

[proftpd]
enabled = true

[apache-auth]
enabled = false
`

func TestImportDebianJails(t *testing.T) {
	from := debianConf(t, jailLocal)
	r, err := Import(from)
	if err != nil {
		t.Fatal(err)
	}
	jails := map[string]Jail{}
	for _, j := range r.Jails {
		jails[j.Name] = j
	}
	if len(jails) != 5 {
		t.Fatalf("jails %v, want the 5 enabled ones", jails)
	}
	for name, want := range map[string]bool{"sshd": true, "nginx-http-auth": true, "postfix": true, "recidive": false, "proftpd": true} {
		if jails[name].Translated != want {
			t.Errorf("jail %s translated = %v, want %v", name, jails[name].Translated, want)
		}
	}
	// Every untranslated jail is reported with a reason.
	reported := map[string]string{}
	for _, p := range r.Problems {
		if !p.Note {
			reported[p.Jail] = p.Reason
		}
		if p.Reason == "" {
			t.Errorf("problem without a reason: %+v", p)
		}
	}
	if !strings.Contains(reported["recidive"], "repeat offenders") {
		t.Errorf("untranslated jails reported as %v", reported)
	}
	// proftpd has no native parser: its filter runs as phalanx rules.
	if j := jails["proftpd"]; j.Parser != "rules:proftpd" || len(r.Rules) == 0 {
		t.Errorf("proftpd = %+v with %d rules, want its filter as rules", j, len(r.Rules))
	}
	if !strings.Contains(reported["sshd"], "gateway.example.org") && !slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Value == "gateway.example.org" }) {
		t.Error("a host name in ignoreip was not reported")
	}
	if !slices.Equal(r.Config.Allowlist, []string{"127.0.0.1/8", "192.0.2.0/24", "::1"}) {
		t.Errorf("allowlist %v", r.Config.Allowlist)
	}
	if r.Config.SSHDMode != "aggressive" {
		t.Errorf("sshd_mode %q, want the jail's aggressive", r.Config.SSHDMode)
	}
	// backend = systemd becomes a journald source with the filter's match.
	if len(r.Config.Journald) != 1 || !slices.Contains(r.Config.Journald[0].Matches, "_SYSTEMD_UNIT=sshd.service") || r.Config.Journald[0].Hint != "sshd" {
		t.Errorf("journald %+v, want sshd's journalmatch", r.Config.Journald)
	}
	var hints []string
	for _, f := range r.Config.Files {
		hints = append(hints, f.Hint+":"+strings.Join(f.Paths, ","))
	}
	if !slices.ContainsFunc(hints, func(h string) bool { return strings.HasPrefix(h, "nginx:") && strings.Contains(h, "nginx") }) ||
		!slices.ContainsFunc(hints, func(h string) bool { return strings.HasPrefix(h, "postfix:") }) {
		t.Errorf("files %v, want nginx's error log and the mail log with their parsers", hints)
	}

	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "phalanx.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set, scen, err := config.LoadRulesFile(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	if set == nil || len(set.Rules()) != len(r.Rules) {
		t.Fatalf("rules.yaml holds %v rules, want %d", set, len(r.Rules))
	}
	// The proftpd rules recognise a line of proftpd's own sample log.
	sample := "Jan 10 00:00:00 myhost proftpd[12345] myhost.domain.com (123.123.123.123[123.123.123.123]): USER username (Login failed): User in /etc/ftpusers"
	var ev phalanx.Event
	if ok := set.Parse(sample, &ev); !ok || ev.Source.String() != "123.123.123.123" || ev.Kind != phalanx.KindRuleMatch {
		t.Errorf("proftpd rule on its sample: %+v %v", ev, ok)
	}
	if f2b := byNameOf(scen, "f2b-proftpd"); f2b == nil || !slices.Equal(f2b.Filter.Kinds, []phalanx.EventKind{phalanx.KindRuleMatch}) {
		t.Errorf("f2b-proftpd scenario %+v", f2b)
	}
	byName := map[string]detect.Scenario{}
	for _, s := range scen {
		byName[s.Name] = s
	}
	ssh := byName["f2b-sshd"]
	if ssh.Capacity != 2 || time.Duration(ssh.Window) != 10*time.Minute || time.Duration(ssh.Decision.Duration) != time.Hour {
		t.Errorf("f2b-sshd = %+v, want capacity 2 (maxretry 3), window 10m, 1h ban", ssh)
	}
	if d := time.Duration(byName["f2b-postfix"].Decision.Duration); d != permanent {
		t.Errorf("postfix's permanent ban became %v", d)
	}

	// The off-by-one, checked on detect itself: fail2ban bans on the
	// maxretry-th failure within findtime, not before.
	eng, err := detect.New(detect.Config{Scenarios: []detect.Scenario{ssh}, Clock: fixedClock(time.Unix(1_800_000_000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("203.0.113.9")
	at := time.Unix(1_800_000_000, 0)
	var got []phalanx.Decision
	for i := 1; i <= 3; i++ {
		ev := phalanx.Event{Time: at.Add(time.Duration(i) * time.Minute), Source: src, Service: phalanx.ServiceSSHD, Kind: phalanx.KindAuthFailed}
		got = eng.Observe(&ev, "line", got[:0])
		if i < 3 && len(got) != 0 {
			t.Fatalf("decided after %d failures, fail2ban waits for maxretry=3", i)
		}
	}
	if len(got) != 1 {
		t.Fatalf("no decision after maxretry=3 failures within findtime")
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"600": 10 * time.Minute, "10m": 10 * time.Minute, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour,
		"1w": 7 * 24 * time.Hour, "-1": -time.Second, "2 hours": 2 * time.Hour, "1mo": time.Duration(30.4375 * 86400 * float64(time.Second)),
	} {
		got, err := Seconds(in)
		if err != nil || got != want {
			t.Errorf("Seconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ten minutes", "1x"} {
		if _, err := Seconds(bad); err == nil {
			t.Errorf("Seconds(%q) accepted", bad)
		}
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func byNameOf(ss []detect.Scenario, name string) *detect.Scenario {
	for i := range ss {
		if ss[i].Name == name {
			return &ss[i]
		}
	}
	return nil
}

// TestEscalation: bantime.increment becomes phalanx's escalation (one
// setting for all scenarios), capped by bantime.maxtime; without it on any
// jail escalation is off, as in fail2ban by default; jails that disagree
// are reported.
func TestEscalation(t *testing.T) {
	for name, c := range map[string]struct {
		local   string
		want    detect.Escalation
		problem string // an option that must be reported
	}{
		"increment with maxtime": {
			local: "[DEFAULT]\nbantime.increment = true\nbantime.maxtime = 2d\nbantime.factor = 3\n[sshd]\nenabled = true\n",
			want:  detect.Escalation{Factor: 2, Max: 48 * time.Hour}, problem: "bantime.factor",
		},
		"no increment": {
			local: "[sshd]\nenabled = true\n",
			want:  detect.Escalation{Off: true},
		},
		"jails disagree": {
			local: "[sshd]\nenabled = true\nbantime.increment = true\n[postfix]\nenabled = true\n",
			want:  detect.Escalation{Factor: 2}, problem: "bantime.increment",
		},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Import(debianConf(t, c.local))
			if err != nil {
				t.Fatal(err)
			}
			if r.Config.Escalation != c.want {
				t.Errorf("escalation %+v, want %+v", r.Config.Escalation, c.want)
			}
			if c.problem != "" && !slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Option == c.problem }) {
				t.Errorf("%s not reported: %+v", c.problem, r.Problems)
			}
		})
	}
}
