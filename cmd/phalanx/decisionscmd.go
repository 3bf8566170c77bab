package main

import (
	"bufio"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/member"
)

func newDecisionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "List, add and lift decisions of a running member",
		Long: `Decisions talks to the member running on a data directory ('phalanx up
--data DIR'). A decision added or lifted by hand is signed and goes through the
ledger, so the alliance's consultation policy applies to it as to any report.`,
	}
	var data, output string
	var q member.DecisionQuery
	list := &cobra.Command{
		Use:   "list --data DIR [--value IP|CIDR] [--origin O] [--scenario S] [--type T] [--limit N] [-o json]",
		Short: "List the decisions in force (alliance-wide and local)",
		Example: `  phalanx decisions list --data /var/lib/phalanx
  phalanx decisions list --data /var/lib/phalanx -o json | jq -r '.[].value'

  # Is this address banned, and why?
  phalanx decisions list --data /var/lib/phalanx --value 203.0.113.7

  # What came over from fail2ban
  phalanx decisions list --data /var/lib/phalanx --origin import:fail2ban`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			ds, err := c.DecisionsWhere(cmd.Context(), q)
			if err != nil {
				return err
			}
			if ds == nil {
				ds = []member.DecisionView{}
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if len(ds) == 0 {
				if q != (member.DecisionQuery{}) {
					fmt.Fprintln(w, "No decisions in force match.")
					return nil
				}
				fmt.Fprintln(w, "No decisions in force.")
				return nil
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VALUE\tTYPE\tSCENARIO\tORIGIN\tREPORTERS\tEXPIRES IN\tEVENTS")
			for _, d := range ds {
				reps := make([]string, len(d.Reporters))
				for i, r := range d.Reporters {
					reps[i] = string(r)
					if len(reps[i]) > 8 {
						reps[i] = reps[i][:8]
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", d.Value, d.Type, safe(d.Scenario), d.Origin,
					strings.Join(reps, ","), time.Until(d.Until).Round(time.Second), d.Events)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	list.Flags().StringVarP(&output, "output", "o", "", "json, or a table")
	list.Flags().StringVar(&q.Value, "value", "", "only decisions overlapping this address or CIDR range")
	list.Flags().StringVar(&q.Origin, "origin", "", "only this origin: local, alliance, manual, import:crowdsec, import:fail2ban")
	list.Flags().StringVar(&q.Scenario, "scenario", "", "only this scenario (ssh-bf, manual, ...)")
	list.Flags().StringVar(&q.Type, "type", "", "only this type: ban, captcha or throttle")
	list.Flags().IntVar(&q.Limit, "limit", 0, "at most this many (0: all)")
	list.MarkFlagRequired("data")

	var addData, value, typ, reason string
	var dur time.Duration
	add := &cobra.Command{
		Use:   "add --data DIR --value IP|CIDR --reason TEXT [--type ban] [--duration 4h]",
		Short: "Add a decision by hand (signed, through the ledger)",
		Example: `  phalanx decisions add --data /var/lib/phalanx --value 203.0.113.7 --reason "phishing host, ticket 4711"
  phalanx decisions add --data /var/lib/phalanx --value 198.51.100.0/24 --type captcha --duration 1h --reason "scraper farm"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := phalanx.ParsePrefixOrAddr(value); err != nil {
				return fmt.Errorf("--value: %w", err)
			}
			if _, err := phalanx.ParseDecisionType(typ); err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: say why, it goes on the record")
			}
			c, err := client(addData)
			if err != nil {
				return err
			}
			p, err := c.AddDecision(cmd.Context(), member.DecisionRequest{Value: value, Type: typ, Duration: dur.String(), Reason: reason})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Published %s at ledger position %d. It is in force once the alliance's policy for manual decisions is met: see 'phalanx charter show'.\n", p.ID, p.Seq)
			return nil
		},
	}
	add.Flags().StringVar(&addData, "data", "", "the member's data directory (required)")
	add.Flags().StringVar(&value, "value", "", "the address or CIDR range (required)")
	add.Flags().StringVar(&typ, "type", "ban", "ban, captcha or throttle")
	add.Flags().DurationVar(&dur, "duration", 4*time.Hour, "how long it holds")
	add.Flags().StringVar(&reason, "reason", "", "why, for the record (required)")
	add.MarkFlagRequired("data")
	add.MarkFlagRequired("value")

	var delData, delValue, delReason string
	del := &cobra.Command{
		Use:     "delete --data DIR --value IP|CIDR",
		Aliases: []string{"lift"},
		Short:   "Lift a decision (signed, through the ledger)",
		Example: `  phalanx decisions delete --data /var/lib/phalanx --value 203.0.113.7 --reason "false positive: our monitoring"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := phalanx.ParsePrefixOrAddr(delValue); err != nil {
				return fmt.Errorf("--value: %w", err)
			}
			c, err := client(delData)
			if err != nil {
				return err
			}
			p, err := c.DeleteDecision(cmd.Context(), delValue, delReason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Lift published %s at ledger position %d.\n", p.ID, p.Seq)
			return nil
		},
	}
	del.Flags().StringVar(&delData, "data", "", "the member's data directory (required)")
	del.Flags().StringVar(&delValue, "value", "", "the address or CIDR range (required)")
	del.Flags().StringVar(&delReason, "reason", "lifted by hand", "why, for the record")
	del.MarkFlagRequired("data")
	del.MarkFlagRequired("value")

	cmd.AddCommand(list, add, del)
	return cmd
}

func newCharterCmd() *cobra.Command {
	var data, output string
	show := &cobra.Command{
		Use:   "show --data DIR",
		Short: "Explain the alliance's charter in plain words",
		Long: `Show explains the charter: who may report, whose reports count, what
corroboration each scenario needs, whose territory is protected, which pacts
hold.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			v, err := c.Charter(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), v.Charter)
			}
			fmt.Fprint(cmd.OutOrStdout(), v.Explain)
			return nil
		},
	}
	show.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	show.Flags().StringVarP(&output, "output", "o", "", "json for the charter itself")
	show.MarkFlagRequired("data")
	cmd := &cobra.Command{Use: "charter", Short: "The alliance's charter"}
	cmd.AddCommand(show)
	return cmd
}

func newCeasefireCmd() *cobra.Command {
	var data, scenario, scope, reason string
	var dur time.Duration
	start := &cobra.Command{
		Use:   "start --data DIR --for 30m [--scenario S | --scope CIDR] --reason TEXT",
		Short: "Stand enforcement down alliance-wide for a while (signed; ends by itself)",
		Long: `A ceasefire is the emergency brake for false positives: every member stops
enforcing the decisions it covers (all of them, one scenario's, or those in
one range) until it ends, by itself after --for or with 'ceasefire end'.`,
		Example: `  phalanx ceasefire start --data /var/lib/phalanx --for 30m --scenario http-probing --reason "new app release returns 404s"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dur <= 0 {
				return fmt.Errorf("--for must be positive, e.g. 30m")
			}
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: say why, it goes on the record")
			}
			c, err := client(data)
			if err != nil {
				return err
			}
			r, err := c.StartCeasefire(cmd.Context(), member.CeasefireRequest{For: dur.String(), Scenario: scenario, Scope: scope, Reason: reason})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Ceasefire %s in force until %s. End it early with: phalanx ceasefire end --data %s --id %s\n",
				r.Ceasefire, r.Until.Format(time.DateTime), data, r.Ceasefire)
			return nil
		},
	}
	start.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	start.Flags().DurationVar(&dur, "for", 30*time.Minute, "how long it lasts")
	start.Flags().StringVar(&scenario, "scenario", "", "only this scenario's decisions")
	start.Flags().StringVar(&scope, "scope", "", "only decisions within this CIDR range")
	start.Flags().StringVar(&reason, "reason", "", "why, for the record (required)")
	start.MarkFlagRequired("data")

	var endData, id string
	end := &cobra.Command{
		Use:   "end --data DIR --id ID",
		Short: "End a ceasefire early",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(endData)
			if err != nil {
				return err
			}
			p, err := c.EndCeasefire(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Ceasefire %s ended (ledger position %d).\n", id, p.Seq)
			return nil
		},
	}
	end.Flags().StringVar(&endData, "data", "", "the member's data directory (required)")
	end.Flags().StringVar(&id, "id", "", "the ceasefire's ID, as 'ceasefire start' printed it (required)")
	end.MarkFlagRequired("data")
	end.MarkFlagRequired("id")

	cmd := &cobra.Command{Use: "ceasefire", Short: "Alliance-wide, time-boxed stand-down of enforcement"}
	cmd.AddCommand(start, end)
	return cmd
}

func newDrillCmd() *cobra.Command {
	var data, output string
	cmd := &cobra.Command{
		Use:   "drill --data DIR [-o json]",
		Short: "Measure time-to-protect: a signed synthetic attack, confirmed by every member",
		Long: `Drill publishes a signed synthetic attack from a reserved test address
(198.18.0.0/15, never a real host) through this member and reports, for every
member, the time until it confirmed the decision was in force.`,
		Example: `  phalanx drill --data /var/lib/phalanx
  phalanx drill --data /var/lib/phalanx -o json | jq .p99_ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			r, err := c.Drill(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Drill %s against %s\n\n", r.ID, r.Value)
			fmt.Fprintln(tw, "MEMBER\tPROTECTED\tTIME-TO-PROTECT")
			for _, m := range r.Members {
				ttp := "-"
				if m.OK {
					ttp = fmt.Sprintf("%.1f ms", m.MS)
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\n", m.ID, m.OK, ttp)
			}
			tw.Flush()
			fmt.Fprintf(w, "\np50 %.1f ms, p99 %.1f ms\n", r.P50MS, r.P99MS)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or a table")
	cmd.MarkFlagRequired("data")
	return cmd
}
