package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/member"
)

// newAPICmd is 'phalanx api': the member's local API tokens.
func newAPICmd() *cobra.Command {
	api := &cobra.Command{
		Use:   "api",
		Short: "The local API of an alliance member (its tokens)",
		Args:  cobra.NoArgs,
	}
	var data string
	var readOnly bool
	tok := &cobra.Command{
		Use:   "token --data DIR [--read-only]",
		Short: "Print a bearer token for the member's local API",
		Long: `Token prints the bearer token of the local API of the member whose data
directory is DIR: the admin token (DIR/api.token), which may do everything,
or with --read-only the read-only token (DIR/api.readonly), which may use
every GET route (/metrics and /v1/events included) and nothing else — the
one to give a dashboard viewer or a Prometheus scraper.`,
		Example: `  curl -H "Authorization: Bearer $(phalanx api token --data /var/lib/phalanx --read-only)" \
    http://$(cat /var/lib/phalanx/api.addr)/v1/decisions`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := member.APIToken(data, readOnly)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t)
			return nil
		},
	}
	tok.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	tok.Flags().BoolVar(&readOnly, "read-only", false, "print the read-only token (GET routes only) instead of the admin token")
	tok.MarkFlagRequired("data")
	api.AddCommand(tok)
	return api
}
