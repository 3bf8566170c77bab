package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		duration time.Duration
		output   string
	)
	cmd := &cobra.Command{
		Use:   "demo [--duration D] [-o json]",
		Short: "Watch an alliance of three protect each other, on this machine",
		Long: `Demo starts an alliance of three members in this process — the ledger on an
embedded NATS server, everything on loopback, data in a temporary directory
removed at the end — and plays attacks against member 1: SSH brute force into
its auth.log and a web scan for secret files into its nginx access.log, among
legitimate traffic. It needs no root, no config and nothing installed.

Each decision is shown as it reaches every member, with its time to protect:
from the moment the line that tripped detection was written into member 1's
log until the member's decision set holds the address.

Without --duration it plays a wave of fresh attackers every few seconds until
Ctrl-C. With --duration it stops by itself and prints a summary: attackers,
decisions, and each member's time to protect (p50 and max). With -o json the
summary is one JSON object on standard output and the progress goes to
standard error.`,
		Example: `  # The first thing to run
  go run ./cmd/phalanx demo

  # Half a minute, then a summary as JSON
  phalanx demo --duration 30s -o json

  # Check that every member was protected
  phalanx demo --duration 15s -o json | jq -e 'all(.members[]; .protected)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "text" {
				return fmt.Errorf("-o %q: use json, or leave it out for text", output)
			}
			if duration < 0 {
				return fmt.Errorf("--duration %v: give a positive duration such as 30s, or leave it out to run until Ctrl-C", duration)
			}
			// The demo's own output is the show; members' logs would
			// drown it, so they start at warn unless asked for.
			if !cmd.Flags().Changed("log-level") {
				g.logLevel = "warn"
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			progress := cmd.OutOrStdout()
			if output == "json" {
				progress = cmd.ErrOrStderr()
			}
			s, err := demo.Run(cmd.Context(), demo.Config{Duration: duration, Out: progress, Log: log})
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), s)
			}
			s.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long and print a summary (0: run until Ctrl-C)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: the summary as one JSON object on stdout, progress on stderr")
	return cmd
}
