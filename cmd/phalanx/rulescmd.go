package main

import (
	"bufio"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

func newRulesCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check custom rules and scenarios",
	}
	var samples []string
	var noAllow bool
	test := &cobra.Command{
		Use:   "test FILE [--sample LOG]...",
		Short: "Validate a rules/scenarios file and show what it matches on a sample",
		Long: `Test loads a YAML file of custom rules (how to recognise a line) and
scenarios (when events become a decision), reports any mistake with its file
and line, lists what the file defines, and — given sample logs — shows each
line a rule matched, what it extracted, and the decisions the file's
scenarios (together with the built-in ones) would take.

A rules file looks like:

  rules:
    - name: gitea-login
      kind: auth_failed
      contains: ["Failed authentication attempt"]
      regex: 'Failed authentication attempt for (?P<user>\S+) from (?P<source>\S+):'
  scenarios:
    - name: gitea-bf
      type: leaky
      filter: {services: [gitea-login], kinds: [auth_failed]}
      capacity: 5
      leak: 1m
      decision: {type: ban, duration: 4h}`,
		Example: `  phalanx rules test /etc/phalanx/rules.yaml
  phalanx rules test rules.yaml --sample /var/log/gitea/gitea.log`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, scen, err := config.LoadRulesFile(args[0])
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			n := 0
			if set != nil {
				n = len(set.Rules())
			}
			fmt.Fprintf(w, "%s: %d rules, %d scenarios — valid.\n\n", args[0], n, len(scen))
			if set != nil {
				fmt.Fprintln(tw, "RULE\tSERVICE\tKIND")
				for _, r := range set.Rules() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Service, r.Kind)
				}
				tw.Flush()
				fmt.Fprintln(w)
			}
			if len(scen) > 0 {
				fmt.Fprintln(tw, "SCENARIO\tTYPE\tDESCRIPTION")
				for _, s := range scen {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Type, s.Description)
				}
				tw.Flush()
				fmt.Fprintln(w)
			}
			if len(samples) == 0 {
				return nil
			}
			parser := parse.New(parse.Options{Type: parse.Auto, SSHDMode: sshd.Aggressive, Rules: set, Context: &logline.Context{}})
			engine, err := engineFor(scen, "", nil, !noAllow, 0, detect.Escalation{}, phalanx.SystemClock{})
			if err != nil {
				return err
			}
			var decided []phalanx.Decision
			p := ingest.New(parser, engine, func(d phalanx.Decision) { decided = append(decided, d) })
			fmt.Fprintln(tw, "SAMPLE:LINE\tMATCH\tSERVICE\tEVENT\tSOURCE\tUSER")
			for _, name := range samples {
				r, err := openInput(name, cmd.InOrStdin())
				if err != nil {
					return err
				}
				ln := 0
				_, err = ingest.ScanLines(r, func(line string) {
					ln++
					ev, ok := p.Line(line)
					if !ok {
						return
					}
					src := ""
					if ev.Source.IsValid() {
						src = ev.Source.String()
					}
					fmt.Fprintf(tw, "%s:%d\t%v\t%s\t%s\t%s\t%s\n", name, ln, ev.Hostile(), safe(string(ev.Service)), safe(string(ev.Kind)), src, safe(ev.User))
				})
				r.Close()
				if err != nil {
					return fmt.Errorf("read %s: %w", name, err)
				}
			}
			tw.Flush()
			st := p.Stats()
			fmt.Fprintf(w, "\n%d lines, %d recognised, %d hostile, %d decisions\n", st.Lines, st.Recognised, st.Hostile, len(decided))
			if len(decided) > 0 {
				fmt.Fprintln(w)
				printDecisionTable(w, decided)
			}
			return nil
		},
	}
	test.Flags().StringSliceVar(&samples, "sample", nil, "a log file to run the rules over (repeatable; - for standard input)")
	test.Flags().BoolVar(&noAllow, "no-allowlist", false, "do not allowlist loopback and link-local addresses in the sample")
	cmd.AddCommand(test)
	return cmd
}
