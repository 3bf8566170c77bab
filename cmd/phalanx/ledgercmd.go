package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/member"
)

// maxListedRejections bounds what verify keeps to print: a flooded ledger
// must not make the command hold every rejected entry in memory.
const maxListedRejections = 1000

func newLedgerCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Verify and follow the alliance's signed ledger",
		Long: `The ledger is the alliance's append-only record: every decision, admission and
ceasefire, each signed by its author and chained to the author's previous
entry. These commands read it straight from NATS, like any member, and judge
every entry with a fold of their own started from the charter in the data
directory: they trust neither the running member nor its snapshot.`,
	}
	cmd.AddCommand(newLedgerVerifyCmd(g), newLedgerTailCmd(g))
	return cmd
}

func newLedgerVerifyCmd(g *globalFlags) *cobra.Command {
	var data, output string
	cmd := &cobra.Command{
		Use:   "verify --data DIR [-o json]",
		Short: "Replay the whole ledger and check every signature and chain",
		Long: `Verify reads the ledger from its first entry to its last and checks each
entry's signature against its author's key as the ledger knew it at that
point, and each author's chain for gaps and replays.

It exits with status 1 when an entry is forged, replayed, out of its author's
chain, from another alliance or no envelope at all: someone wrote to the
ledger who should not have. Entries the charter refuses (outside a member's
territory, over its rate, ...) are listed too, but are members' signed words
and not tampering.`,
		Example: `  phalanx ledger verify --data /var/lib/phalanx
  phalanx ledger verify --data /var/lib/phalanx -o json | jq '.rejected'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := outputFormat(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var rejected []member.VerifiedEntry
			more := 0
			rep, err := member.VerifyLedger(cmd.Context(), data, log, func(e member.VerifiedEntry) {
				if e.Accepted {
					return
				}
				if len(rejected) < maxListedRejections {
					rejected = append(rejected, e)
				} else {
					more++
				}
			})
			if err != nil {
				return err
			}
			if format == "json" {
				if rejected == nil {
					rejected = []member.VerifiedEntry{}
				}
				out := struct {
					member.VerifyReport
					List []member.VerifiedEntry `json:"rejected_entries"`
					More int                    `json:"rejected_entries_not_listed,omitempty"`
				}{rep, rejected, more}
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else if err := printVerifyTable(cmd.OutOrStdout(), rep, rejected, more); err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("the ledger holds %d tampered entries (forged, replayed or out of chain): find who can write to its NATS stream, revoke those credentials, and expel any member whose key signed them", rep.Tampered)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "a member's data directory (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table or json (default: table on a terminal, else json)")
	cmd.MarkFlagRequired("data")
	return cmd
}

func printVerifyTable(out io.Writer, rep member.VerifyReport, rejected []member.VerifiedEntry, more int) error {
	w := bufio.NewWriter(out)
	if len(rejected) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tAUTHOR\tREASON\tSUMMARY")
		for _, e := range rejected {
			reason := e.Reason
			if e.Tampered {
				reason += " (TAMPERING)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), safe(string(e.Kind)), short(string(e.Author)), reason, e.Summary)
		}
		tw.Flush()
		if more > 0 {
			fmt.Fprintf(w, "... and %d more rejected entries (use -o json | jq for counts by reason)\n", more)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Alliance %s: %d entries from %d authors", rep.Alliance, rep.Entries, rep.Authors)
	if !rep.First.IsZero() {
		fmt.Fprintf(w, ", %s to %s", rep.First.Format(time.RFC3339), rep.Last.Format(time.RFC3339))
	}
	fmt.Fprintf(w, ".\n%d accepted", rep.Accepted)
	if len(rep.Rejected) > 0 {
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(rep.Rejected)) {
			parts = append(parts, fmt.Sprintf("%s %d", r, rep.Rejected[r]))
		}
		fmt.Fprintf(w, ", rejected: %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, ".")
	if rep.OK {
		fmt.Fprintln(w, "OK: every signature and chain verifies.")
	} else {
		fmt.Fprintf(w, "TAMPERED: %d entries are forged, replayed, out of chain or not envelopes.\n", rep.Tampered)
	}
	return w.Flush()
}

// short abbreviates a member ID for a table; JSON keeps it whole.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return safe(id)
}

func newLedgerTailCmd(g *globalFlags) *cobra.Command {
	var data, output string
	var from uint64
	cmd := &cobra.Command{
		Use:   "tail --data DIR [--from N] [-o json]",
		Short: "Follow the ledger's new entries, each verified",
		Long: `Tail prints ledger entries as they arrive, each judged as verify judges it
(accepted, or why not), until interrupted. Entries before --from are replayed
silently so that keys and chains are known.`,
		Example: `  phalanx ledger tail --data /var/lib/phalanx
  phalanx ledger tail --data /var/lib/phalanx --from 1 -o json | jq 'select(.accepted | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := outputFormat(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			var werr error
			err = member.TailLedger(cmd.Context(), data, from, log, func(e member.VerifiedEntry) {
				if werr != nil {
					return
				}
				if format == "json" {
					werr = enc.Encode(e)
					return
				}
				verdict := "ok"
				if !e.Accepted {
					verdict = "REJECTED " + e.Reason
					if e.Tampered {
						verdict += " (TAMPERING)"
					}
				}
				_, werr = fmt.Fprintf(out, "%d  %s  %-13s %s  %s  %s\n", e.Seq, e.Time.Format(time.RFC3339), safe(string(e.Kind)), short(string(e.Author)), verdict, e.Summary)
			})
			if werr != nil {
				return werr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "a member's data directory (required)")
	cmd.Flags().Uint64Var(&from, "from", 0, "first ledger sequence to print (1: everything); default: only new entries")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table or json (default: table on a terminal, else json)")
	cmd.MarkFlagRequired("data")
	return cmd
}
