package main

import (
	"bufio"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/bouncerapi"
)

// bouncersFile is where a member keeps its bouncer keys, hashed.
func bouncersFile(data string) string { return filepath.Join(data, "bouncers.json") }

func newBouncersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bouncers",
		Short: "Manage the API keys of CrowdSec bouncers that enforce this member's decisions",
		Long: `A member serves the part of CrowdSec's local API that bouncers use
(/v1/decisions/stream, /v1/decisions), so crowdsec-firewall-bouncer and the
other CrowdSec bouncers enforce phalanx's decisions unchanged. Each bouncer
needs its own key; keys are stored hashed in DIR/bouncers.json.`,
	}

	var addData string
	add := &cobra.Command{
		Use:     "add NAME --data DIR",
		Short:   "Register a bouncer and print its API key (shown only once)",
		Example: `  phalanx bouncers add firewall --data /var/lib/phalanx`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := bouncerapi.OpenKeys(bouncersFile(addData))
			if err != nil {
				return err
			}
			key, err := keys.Add(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "API key for bouncer %q (shown only once, keep it):\n\n  %s\n\n", args[0], key)
			fmt.Fprintf(w, `To use it with crowdsec-firewall-bouncer, set in
/etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml:

  api_url: http://ADDRESS/     # the member's local API ('phalanx up --api')
  api_key: %s

then restart the bouncer: systemctl restart crowdsec-firewall-bouncer
`, key)
			return nil
		},
	}
	add.Flags().StringVar(&addData, "data", "", "the member's data directory (required)")
	add.MarkFlagRequired("data")

	var listData, output string
	list := &cobra.Command{
		Use:   "list --data DIR [-o json]",
		Short: "List the registered bouncers and when they last pulled",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := outputFormat(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			keys, err := bouncerapi.OpenKeys(bouncersFile(listData))
			if err != nil {
				return err
			}
			bs := keys.List()
			if format == "json" {
				return printJSON(cmd.OutOrStdout(), bs)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if len(bs) == 0 {
				fmt.Fprintln(w, "No bouncers. Add one with 'phalanx bouncers add NAME --data DIR'.")
				return nil
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tLAST PULL\tLAST IP")
			for _, b := range bs {
				last, ip := "never", "-"
				if !b.LastPull.IsZero() {
					last = b.LastPull.Local().Format(time.DateTime)
				}
				if b.LastIP.IsValid() {
					ip = b.LastIP.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(b.Name), b.Created.Local().Format(time.DateTime), last, ip)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listData, "data", "", "the member's data directory (required)")
	list.Flags().StringVarP(&output, "output", "o", "", "json, or a table")
	list.MarkFlagRequired("data")

	var delData string
	del := &cobra.Command{
		Use:   "delete NAME --data DIR",
		Short: "Remove a bouncer; its key stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := bouncerapi.OpenKeys(bouncersFile(delData))
			if err != nil {
				return err
			}
			if err := keys.Delete(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted bouncer %q.\n", args[0])
			return nil
		},
	}
	del.Flags().StringVar(&delData, "data", "", "the member's data directory (required)")
	del.MarkFlagRequired("data")

	cmd.AddCommand(add, list, del)
	return cmd
}
