package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/migrate"
	"github.com/phalanx-defence/phalanx/migrate/crowdsec"
	"github.com/phalanx-defence/phalanx/migrate/f2bbans"
	"github.com/phalanx-defence/phalanx/migrate/f2bjail"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Bring rules, bans and decisions over from fail2ban or CrowdSec",
		Long: `Import moves you from fail2ban or CrowdSec to phalanx without rewriting
anything: their bans and decisions go into a member's decision set with the
time they have left, their jails and scenarios become phalanx config and
scenarios, and a report lists everything that could not be translated and why.

Imported decisions are the member's own local decisions (origin
import:fail2ban or import:crowdsec): enforced by it, kept in DIR/imported.json
across restarts, expiring on their own, listed by 'phalanx decisions list' and
removed by 'phalanx decisions delete'. They are not published to the alliance
unless you add --share. See docs/migrate.md for the whole move, step by step.`,
	}
	cmd.AddCommand(newImportCrowdSecCmd(), newImportFail2banCmd())
	return cmd
}

// decisionTarget is where imported decisions go: a member's data directory.
type decisionTarget struct {
	data    string
	dryRun  bool
	share   bool
	rate    int
	output  string
	timeout time.Duration
}

func (t *decisionTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.data, "data", config.DefaultDataDir, "the member's data directory")
	cmd.Flags().BoolVar(&t.dryRun, "dry-run", false, "read and report, import nothing")
	cmd.Flags().BoolVar(&t.share, "share", false, "also publish each imported decision to the alliance as a manual decision, paced under the charter's rate limit (needs the member running; resumable)")
	cmd.Flags().IntVar(&t.rate, "share-rate", 0, "with --share: manual decisions a minute (default: a third of the charter's max_reports_per_minute)")
	cmd.Flags().StringVarP(&t.output, "output", "o", "", "json, or a text report")
}

// importReport is `phalanx import ... -o json` for decisions and bans.
type importReport struct {
	Source   string               `json:"source"`
	Format   string               `json:"format,omitempty"`
	Read     int                  `json:"read"`
	Valid    int                  `json:"valid"`  // distinct values in force, ready to import
	Merged   int                  `json:"merged"` // duplicates of a value folded into one
	Skipped  migrate.Skips        `json:"skipped"`
	Target   string               `json:"target"` // running member, member files, or dry run
	Member   *member.ImportResult `json:"member,omitempty"`
	Shared   *shareResult         `json:"shared,omitempty"`
	NextStep string               `json:"next_step,omitempty"`
}

// deliver hands ds to the member in t.data: through its API when it runs
// (in force at once), else into its imported.json (in force from its next
// start).
func (t *decisionTarget) deliver(ctx context.Context, rep *importReport, ds []phalanx.Decision, stderr io.Writer) error {
	if t.dryRun {
		rep.Target = "dry run: nothing imported"
		return nil
	}
	if _, err := os.Stat(filepath.Join(t.data, "member.yaml")); err != nil {
		return fmt.Errorf("%s holds no phalanx member, so there is no decision set to import into: create one with 'phalanx alliance init --data %s --name NAME' (or give its directory with --data), then run this again; --dry-run only checks the input", t.data, t.data)
	}
	c, running := runningMember(ctx, t.data)
	if running {
		var shown func(done, total int)
		if len(ds) > 2000 && isTerminal(stderr) {
			// A long import into a running member goes in batches: say how
			// far it is, on the terminal only.
			shown = func(done, total int) { fmt.Fprintf(stderr, "\rimporting: %d of %d decisions", done, total) }
			defer fmt.Fprintln(stderr)
		} else {
			shown = func(int, int) {}
		}
		res, err := c.Import(ctx, ds, shown)
		if err != nil {
			return fmt.Errorf("import into the running member: %w", err)
		}
		rep.Member, rep.Target = &res, "running member at "+t.data+" (in force now)"
	} else {
		res, err := member.ImportOffline(t.data, ds, time.Now())
		if err != nil {
			return err
		}
		rep.Member, rep.Target = &res, filepath.Join(t.data, "imported.json")+" (the member is not running)"
		rep.NextStep = fmt.Sprintf("start the member: they are enforced from 'phalanx up --data %s'", t.data)
	}
	if !t.share {
		return nil
	}
	if !running {
		return fmt.Errorf("--share publishes through the running member: start 'phalanx up --data %s' and run this again (the import itself is done)", t.data)
	}
	sr, err := share(ctx, c, t, ds, stderr)
	rep.Shared = &sr
	return err
}

// runningMember returns a client of the member in dir if it answers.
func runningMember(ctx context.Context, dir string) (*member.APIClient, bool) {
	c, err := member.Client(dir)
	if err != nil {
		return nil, false
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Health(hctx); err != nil {
		return nil, false
	}
	return c, true
}

func (t *decisionTarget) print(w io.Writer, rep importReport) error {
	if t.output == "json" {
		return printJSON(w, rep)
	}
	if t.output != "" {
		return fmt.Errorf("-o %q: use json, or leave it out for a text report", t.output)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Source:\t%s\n", rep.Source)
	if rep.Format != "" {
		fmt.Fprintf(tw, "Format:\t%s\n", rep.Format)
	}
	fmt.Fprintf(tw, "Read:\t%d\n", rep.Read)
	fmt.Fprintf(tw, "In force:\t%d distinct values (%d duplicates merged)\n", rep.Valid, rep.Merged)
	fmt.Fprintf(tw, "Skipped:\t%d\n", rep.Skipped.Total)
	for _, r := range rep.Skipped.Reasons() {
		fmt.Fprintf(tw, "  %s:\t%d\n", r, rep.Skipped.ByReason[r])
	}
	fmt.Fprintf(tw, "Into:\t%s\n", rep.Target)
	if m := rep.Member; m != nil {
		fmt.Fprintf(tw, "Member:\t%d added, %d updated, %d already held, %d expired, %d refused (allowlist, loopback or territory); %d imported decisions held\n",
			m.Added, m.Updated, m.Kept, m.Expired, m.Refused, m.Imported)
	}
	if s := rep.Shared; s != nil {
		fmt.Fprintf(tw, "Shared:\t%d published now, %d before, %d failed\n", s.Published, s.Before, s.Failed)
	}
	if rep.NextStep != "" {
		fmt.Fprintf(tw, "Next:\t%s\n", rep.NextStep)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := len(rep.Skipped.Examples); n > 0 {
		fmt.Fprintf(w, "\nFirst %d skipped (-o json lists them too):\n", min(n, 10))
		for _, s := range rep.Skipped.Examples[:min(n, 10)] {
			fmt.Fprintf(w, "  %s: %s: %s\n", s.Where, safe(s.Value), s.Reason)
		}
	}
	return nil
}

func newImportCrowdSecCmd() *cobra.Command {
	t := &decisionTarget{}
	var decisionsFile, scenariosDir, out string
	cmd := &cobra.Command{
		Use:   "crowdsec (--decisions FILE | --scenarios DIR --out FILE)",
		Short: "Import CrowdSec decisions, or translate its hub scenarios",
		Long: `With --decisions, imports CrowdSec decisions into the member in --data:
FILE (or - for standard input) is the output of 'cscli decisions list -o json'
or of the bouncer API's /v1/decisions/stream (or /v1/decisions); the format is
recognised by its shape. Decisions of scope Ip and Range are imported with
the time they have left; expired, simulated and deleted ones, other scopes
(Country, AS, Username) and unknown types are skipped and counted by reason.

With --scenarios, translates the leaky and trigger scenarios of DIR (a
CrowdSec hub checkout or /etc/crowdsec/scenarios) into phalanx scenarios
written to --out, for the rules: entry of phalanx.yaml; every scenario that
cannot be translated is listed with its file and the reason.`,
		Example: `  # Decisions from a CrowdSec host, into the local member
  cscli decisions list -o json > decisions.json
  phalanx import crowdsec --decisions decisions.json --data /var/lib/phalanx

  # The whole community blocklist a bouncer would get, straight from the LAPI
  curl -s -H "X-Api-Key: $KEY" 'http://127.0.0.1:8080/v1/decisions/stream?startup=true' |
    phalanx import crowdsec --decisions - --data /var/lib/phalanx

  # Check a file without importing it
  phalanx import crowdsec --decisions decisions.json --dry-run -o json

  # Translate the installed scenarios, then compare on a log
  phalanx import crowdsec --scenarios /etc/crowdsec/scenarios --out /etc/phalanx/crowdsec.yaml
  phalanx replay --rules /etc/phalanx/crowdsec.yaml /var/log/nginx/access.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case decisionsFile != "" && scenariosDir != "":
				return errors.New("give --decisions or --scenarios, one at a time")
			case decisionsFile != "":
				return importCrowdSecDecisions(cmd, t, decisionsFile)
			case scenariosDir != "":
				return importCrowdSecScenarios(cmd, scenariosDir, out, t.output)
			}
			return errors.New("give --decisions FILE (cscli decisions list -o json) or --scenarios DIR (hub scenarios); see --help")
		},
	}
	cmd.Flags().StringVar(&decisionsFile, "decisions", "", "CrowdSec decisions: cscli decisions list -o json, or the bouncer stream; - for standard input")
	cmd.Flags().StringVar(&scenariosDir, "scenarios", "", "a directory of CrowdSec scenario YAML files (searched recursively)")
	cmd.Flags().StringVar(&out, "out", "", "with --scenarios: the phalanx scenarios file to write")
	t.flags(cmd)
	return cmd
}

func importCrowdSecDecisions(cmd *cobra.Command, t *decisionTarget, path string) error {
	in, err := openInput(path, cmd.InOrStdin())
	if err != nil {
		return fmt.Errorf("--decisions: %w", err)
	}
	defer in.Close()
	got, err := crowdsec.DecodeDecisions(in, time.Now())
	if err != nil {
		return err
	}
	src := path
	if path == "-" {
		src = "standard input"
	}
	rep := importReport{Source: src, Format: got.Format, Read: got.Read, Valid: len(got.Imported), Merged: got.Merged, Skipped: got.Skipped}
	if err := t.deliver(cmd.Context(), &rep, got.Imported, cmd.ErrOrStderr()); err != nil {
		t.print(cmd.OutOrStdout(), rep)
		return err
	}
	return t.print(cmd.OutOrStdout(), rep)
}

func newImportFail2banCmd() *cobra.Command {
	t := &decisionTarget{}
	var bans bool
	var db, from, out string
	var jails []string
	var permanent time.Duration
	cmd := &cobra.Command{
		Use:   "fail2ban (--bans [--db FILE] | [--from /etc/fail2ban] [--out DIR])",
		Short: "Import fail2ban's current bans, or translate its jails into phalanx config",
		Long: `With --bans, imports the bans in force from fail2ban's database (opened
read-only; fail2ban may keep running) into the member in --data, each with the
time it has left; a permanent ban (bantime = -1) lasts --permanent. An address
banned by several jails gets the longest of its bans.

Without --bans, reads fail2ban's jail.conf, jail.local and jail.d/ under
--from and writes into --out a phalanx.yaml (for 'phalanx up --config') and a
rules.yaml with one scenario per enabled jail: its log files (or the journal,
for backend = systemd) with phalanx's native parser for its filter, maxretry
failures within findtime banned for bantime, ignoreip as the allowlist. Every
jail, filter or option that cannot be carried over is listed with the reason.`,
		Example: `  # Translate the jails, look at the result, compare on a real log
  phalanx import fail2ban --from /etc/fail2ban --out /etc/phalanx
  phalanx replay --rules /etc/phalanx/rules.yaml /var/log/auth.log

  # The bans in force now, into the local member
  sudo phalanx import fail2ban --bans --data /var/lib/phalanx

  # Only the sshd jail's, from a copy of the database
  phalanx import fail2ban --bans --db ./fail2ban.sqlite3 --jail sshd --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bans {
				return importFail2banBans(cmd, t, db, f2bbans.Options{Jails: jails, Permanent: permanent})
			}
			return importFail2banJails(cmd, from, out, t.output)
		},
	}
	cmd.Flags().BoolVar(&bans, "bans", false, "import the current bans from fail2ban's database")
	cmd.Flags().StringVar(&db, "db", f2bbans.DefaultDB, "with --bans: fail2ban's database ('fail2ban-client get dbfile' names it)")
	cmd.Flags().StringSliceVar(&jails, "jail", nil, "with --bans: only these jails' bans (repeatable)")
	cmd.Flags().DurationVar(&permanent, "permanent", 365*24*time.Hour, "with --bans: how long a permanent fail2ban ban lasts in phalanx")
	cmd.Flags().StringVar(&from, "from", "/etc/fail2ban", "fail2ban's configuration directory")
	cmd.Flags().StringVar(&out, "out", "", "where to write phalanx.yaml and rules.yaml (default ./phalanx-from-fail2ban)")
	t.flags(cmd)
	return cmd
}

func importFail2banBans(cmd *cobra.Command, t *decisionTarget, db string, opt f2bbans.Options) error {
	got, err := f2bbans.Read(cmd.Context(), db, time.Now(), opt)
	if err != nil {
		return err
	}
	rep := importReport{Source: got.DB, Format: "fail2ban " + got.Table, Read: got.Read, Valid: len(got.Imported), Merged: got.Merged, Skipped: got.Skipped}
	if err := t.deliver(cmd.Context(), &rep, got.Imported, cmd.ErrOrStderr()); err != nil {
		t.print(cmd.OutOrStdout(), rep)
		return err
	}
	return t.print(cmd.OutOrStdout(), rep)
}

// maxShared is the longest decision the alliance's fold accepts in a
// report (and the member API in a manual decision).
const maxShared = 30 * 24 * time.Hour

// shareResult is what --share did.
type shareResult struct {
	Published int    `json:"published"`
	Before    int    `json:"before"` // shared by an earlier run (resumed)
	Failed    int    `json:"failed"`
	Progress  string `json:"progress"` // the file that makes --share resumable
}

// share publishes ds as manual decisions through the running member, at
// most t.rate a minute so that the member stays under the charter's rate
// limit (beyond it the alliance flags the member and refuses its
// reports). The values already shared are appended to a progress file in
// the data directory, so an interrupted run resumes where it stopped.
func share(ctx context.Context, c *member.APIClient, t *decisionTarget, ds []phalanx.Decision, stderr io.Writer) (shareResult, error) {
	progress := filepath.Join(t.data, "imported-shared.txt")
	res := shareResult{Progress: progress}
	done := map[string]bool{}
	if b, err := os.ReadFile(progress); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				done[l] = true
			}
		}
	}
	rate := t.rate
	if rate <= 0 {
		ch, err := c.Charter(ctx)
		if err != nil {
			return res, fmt.Errorf("--share: read the charter's rate limit: %w", err)
		}
		// A third: detection's reports and sightings need the rest.
		rate = max(1, ch.Charter.Policy.MaxReportsPerMinute/3)
	}
	f, err := os.OpenFile(progress, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return res, fmt.Errorf("--share: %w", err)
	}
	defer f.Close()
	every := time.Minute / time.Duration(rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	todo := 0
	for _, d := range ds {
		if !done[d.ValueString()] {
			todo++
		}
	}
	res.Before = len(ds) - todo
	if todo > 0 {
		fmt.Fprintf(stderr, "Sharing %d decisions at %d a minute (about %s); interrupt at will, run again to resume.\n",
			todo, rate, (time.Duration(todo) * every).Round(time.Second))
	}
	for _, d := range ds {
		v := d.ValueString()
		if done[v] {
			continue
		}
		left := time.Until(d.Until()).Round(time.Second)
		if left <= 0 {
			continue
		}
		// The alliance takes no report for longer than 30 days; this
		// member keeps its own imported decision for its full time.
		left = min(left, maxShared)
		_, err := c.AddDecision(ctx, member.DecisionRequest{Value: v, Type: string(d.Type), Duration: left.String(),
			Reason: fmt.Sprintf("imported from %s (%s)", strings.TrimPrefix(string(d.Origin), migrate.OriginPrefix), d.Scenario)})
		if err != nil {
			res.Failed++
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		} else {
			res.Published++
			fmt.Fprintln(f, v)
		}
		if n := res.Published + res.Failed; n%50 == 0 || n == todo {
			fmt.Fprintf(stderr, "\rshared %d/%d", n, todo)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	if todo > 0 {
		fmt.Fprintln(stderr)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("--share: %d of %d decisions were not published: run the same command again to retry them", res.Failed, todo)
	}
	return res, nil
}

// scenarioReport is `phalanx import crowdsec --scenarios -o json`.
type scenarioReport struct {
	From string `json:"from"`
	Out  string `json:"out"`
	*crowdsec.Translation
}

func importCrowdSecScenarios(cmd *cobra.Command, dir, out, output string) error {
	if out == "" {
		return errors.New("--scenarios needs --out FILE: where to write the phalanx scenarios (then name it as rules: in phalanx.yaml)")
	}
	tr, err := crowdsec.TranslateScenarios(dir)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("phalanx scenarios translated from the CrowdSec scenarios in %s\nby 'phalanx import crowdsec --scenarios'. Use it as rules: in phalanx.yaml,\nor replay --rules. Decisions are 4h bans: CrowdSec's default profile.\n%d translated, %d not translated (see the command's report).", dir, len(tr.Scenarios), len(tr.Skipped))
	b, err := crowdsec.MarshalScenarios(header, tr.Scenarios)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	// Loaded back the way `phalanx up` loads its rules: file.
	if _, _, err := config.LoadRulesFile(out); err != nil {
		return fmt.Errorf("the written scenarios do not load (a bug): %w", err)
	}
	rep := scenarioReport{From: dir, Out: out, Translation: tr}
	w := cmd.OutOrStdout()
	switch output {
	case "json":
		return printJSON(w, rep)
	case "":
	default:
		return fmt.Errorf("-o %q: use json, or leave it out for a text report", output)
	}
	fmt.Fprintf(w, "Read %d files under %s: %d scenarios translated into %s, %d not translated", tr.Files, dir, len(tr.Scenarios), out, len(tr.Skipped))
	if tr.NotScenarios > 0 {
		fmt.Fprintf(w, " (%d documents that are not scenarios ignored)", tr.NotScenarios)
	}
	fmt.Fprintln(w, ".")
	if len(tr.Translated) > 0 {
		fmt.Fprintf(w, "\nTranslated:\n")
		for _, n := range tr.Translated {
			fmt.Fprintf(w, "  %s\n", safe(n))
		}
	}
	if len(tr.Notes) > 0 {
		fmt.Fprintf(w, "\nTranslated with a difference:\n")
		for _, p := range tr.Notes {
			fmt.Fprintf(w, "  %s (%s): %s\n", safe(p.Scenario), safe(p.File), safe(p.Reason))
		}
	}
	if len(tr.Skipped) > 0 {
		fmt.Fprintf(w, "\nNot translated:\n")
		for _, p := range tr.Skipped {
			fmt.Fprintf(w, "  %s (%s): %s\n", safe(p.Scenario), safe(p.File), safe(p.Reason))
		}
	}
	fmt.Fprintf(w, "\nNext: add  rules: %s  to phalanx.yaml, or compare first with  phalanx replay --rules %s LOG\n", out, out)
	return nil
}

// jailReport is `phalanx import fail2ban -o json`.
type jailReport struct {
	Out string `json:"out"`
	*f2bjail.Result
}

func importFail2banJails(cmd *cobra.Command, from, out, output string) error {
	if out == "" {
		out = "phalanx-from-fail2ban"
	}
	r, err := f2bjail.Import(from)
	if err != nil {
		return err
	}
	if err := r.Write(out); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	switch output {
	case "json":
		return printJSON(w, jailReport{Out: out, Result: r})
	case "":
	default:
		return fmt.Errorf("-o %q: use json, or leave it out for a text report", output)
	}
	fmt.Fprintf(w, "Read fail2ban's jails in %s: %d enabled, %d disabled.\n", from, len(r.Jails), r.Disabled)
	fmt.Fprintf(w, "Wrote %s and %s.\n\n", filepath.Join(out, "phalanx.yaml"), filepath.Join(out, "rules.yaml"))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JAIL\tFILTER\tPARSER\tSOURCE\tMAXRETRY/FINDTIME\tBANTIME\tSCENARIO")
	for _, j := range r.Jails {
		parser, scen := j.Parser, j.Scenario
		if !j.Translated {
			parser, scen = "-", "not translated"
		}
		src := strings.Join(j.LogPaths, " ")
		if len(j.Journal) > 0 {
			src = "journal " + strings.Join(j.Journal, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%s\t%s\t%s\n", safe(j.Name), safe(j.Filter), parser, safe(src), j.MaxRetry, j.FindTime, j.BanTime, scen)
	}
	tw.Flush()
	if len(r.Config.Allowlist) > 0 {
		fmt.Fprintf(w, "\nAllowlist (from ignoreip): %s\n", strings.Join(r.Config.Allowlist, " "))
	}
	var notes, bad []f2bjail.Problem
	for _, p := range r.Problems {
		if p.Note {
			notes = append(notes, p)
		} else {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(w, "\nNot translated:\n")
		for _, p := range bad {
			fmt.Fprintf(w, "  [%s] %s = %s: %s\n", safe(p.Jail), p.Option, safe(p.Value), safe(p.Reason))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nTranslated with a difference:\n")
		for _, p := range notes {
			fmt.Fprintf(w, "  [%s] %s = %s: %s\n", safe(p.Jail), p.Option, safe(p.Value), safe(p.Reason))
		}
	}
	cfg := filepath.Join(out, "phalanx.yaml")
	fmt.Fprintf(w, "\nNext: compare on a log you have:  phalanx replay --rules %s /var/log/auth.log\n"+
		"then run it as an alliance member:  phalanx up --data /var/lib/phalanx --config %s\n"+
		"or alone:  phalanx up --config %s\n", filepath.Join(out, "rules.yaml"), cfg, cfg)
	return nil
}
