package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
)

type replayFlags struct {
	parserFlags
	output      string
	noAllowlist bool
	allow       []string
	scenarios   string
}

func newReplayCmd(g *globalFlags) *cobra.Command {
	f := &replayFlags{}
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE...",
		Short: "Run detection over log files and print the decisions it would take",
		Long: `Replay runs detection over log files as if they were being written now, but
with the time written in each line: a brute force spread over an hour of log
is judged as an hour, however fast the replay runs. It prints the decisions
phalanx would take — what, against whom, why, for how long — and takes none.

The format of each line is recognised automatically (sshd, nginx and Apache
access and error logs, postfix, dovecot, with or without a syslog header);
--type is only a hint. Rotated ".gz" files are read as they are; "-" is
standard input.`,
		Example: `  # What would phalanx have banned yesterday?
  phalanx replay /var/log/auth.log.1 /var/log/nginx/access.log.1

  # One JSON decision per line, for scripts
  phalanx replay -o json /var/log/auth.log | jq -r .value

  # Sample logs often use 127.0.0.1 or fe80::: do not allowlist them
  phalanx replay --no-allowlist testdata/sample.log

  # Add your own rules and scenarios
  phalanx replay --rules /etc/phalanx/rules.yaml /var/log/gitea/gitea.log`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd, f, args)
		},
	}
	f.parserFlags.register(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: table (default on a terminal) or json (one decision per line)")
	cmd.Flags().BoolVar(&f.noAllowlist, "no-allowlist", false, "do not allowlist loopback and link-local addresses (for sample logs that use them)")
	cmd.Flags().StringSliceVar(&f.allow, "allow", nil, "addresses or CIDR ranges never to decide against (repeatable)")
	cmd.Flags().StringVar(&f.scenarios, "scenarios", "", "YAML file whose `scenarios:` replace the built-in ones")
	return cmd
}

// scenariosFor is the scenarios to run: the built-in ones, or those of the
// file replace names, followed by extra (a rules file's).
func scenariosFor(extra []detect.Scenario, replace string) ([]detect.Scenario, error) {
	scen := detect.DefaultScenarios()
	if replace != "" {
		s, err := detect.LoadScenarios(replace)
		if err != nil {
			return nil, err
		}
		scen = s
	}
	return append(scen, extra...), nil
}

// engineFor builds the scenario engine for a replay or a live run.
func engineFor(extra []detect.Scenario, replace string, allow []string, builtinAllow bool, maxSources int, esc detect.Escalation, clock phalanx.Clock) (*detect.Engine, error) {
	scen, err := scenariosFor(extra, replace)
	if err != nil {
		return nil, err
	}
	var prefixes []netip.Prefix
	for _, a := range allow {
		p, err := phalanx.ParsePrefixOrAddr(a)
		if err != nil {
			return nil, fmt.Errorf("--allow: %w", err)
		}
		prefixes = append(prefixes, p)
	}
	return detect.New(detect.Config{
		Scenarios:        scen,
		Allowlist:        prefixes,
		BuiltinAllowlist: builtinAllow,
		MaxSources:       maxSources,
		Escalation:       esc,
		Clock:            clock,
	})
}

func runReplay(cmd *cobra.Command, f *replayFlags, files []string) error {
	out := cmd.OutOrStdout()
	format, err := outputFormat(f.output, out)
	if err != nil {
		return err
	}
	parser, _, extra, err := f.build()
	if err != nil {
		return err
	}
	engine, err := engineFor(extra, f.scenarios, f.allow, !f.noAllowlist, 0, detect.Escalation{}, phalanx.SystemClock{})
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	enc := json.NewEncoder(w)
	var decided []phalanx.Decision
	emit := func(d phalanx.Decision) {
		if format == "json" {
			_ = enc.Encode(d) // a write error surfaces at Flush
			return
		}
		decided = append(decided, d)
	}
	p := ingest.New(parser, engine, emit)
	start := time.Now()
	truncated := 0
	prog := newProgress(cmd.ErrOrStderr(), files)
	defer prog.done()
	for _, name := range files {
		r, err := prog.open(name, cmd.InOrStdin())
		if err != nil {
			return err
		}
		n, err := ingest.ScanLines(r, func(line string) { prog.line(); p.Line(line) })
		r.Close()
		truncated += n
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
	elapsed := time.Since(start)
	prog.done()
	if format == "table" {
		printDecisionTable(w, decided)
		printReplaySummary(w, p.Stats(), engine.Stats(), decided, truncated, elapsed)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func printDecisionTable(w io.Writer, ds []phalanx.Decision) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "No decisions: nothing in these logs crossed a scenario's threshold.")
		return
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].LastSeen.Before(ds[j].LastSeen) })
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DECIDED AT\tVALUE\tTYPE\tDURATION\tSCENARIO\tEVENTS\tFIRST SEEN")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
			d.LastSeen.Format(time.DateTime), safe(d.ValueString()), d.Type, d.Duration, safe(d.Scenario), d.Events, d.FirstSeen.Format(time.DateTime))
	}
	tw.Flush()
}

func printReplaySummary(w io.Writer, s ingest.Stats, es detect.Stats, ds []phalanx.Decision, truncated int, elapsed time.Duration) {
	rate := float64(s.Lines) / elapsed.Seconds()
	values := map[netip.Prefix]bool{}
	for _, d := range ds {
		values[d.Value] = true
	}
	fmt.Fprintf(w, "\n%d lines, %d recognised, %d hostile events; %d decisions against %d addresses or ranges; %s (%.0f lines/s)\n",
		s.Lines, s.Recognised, s.Hostile, s.Decisions, len(values), elapsed.Round(time.Millisecond), rate)
	if es.Allowlisted > 0 {
		fmt.Fprintf(w, "%d events from allowlisted addresses were not counted (--no-allowlist to count loopback and link-local)\n", es.Allowlisted)
	}
	if es.Evictions > 0 {
		fmt.Fprintf(w, "%d per-source states were evicted to stay under the cap of %d\n", es.Evictions, es.MaxBuckets)
	}
	if truncated > 0 {
		fmt.Fprintf(w, "%d lines longer than %d bytes were cut\n", truncated, ingest.MaxLine)
	}
}
