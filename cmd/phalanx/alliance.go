package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// parsePrefixes parses a comma-separated list of addresses and ranges.
func parsePrefixes(flag string, vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := phalanx.ParsePrefixOrAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", flag, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func newAllianceCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alliance",
		Short: "Found, join and inspect an alliance of servers",
		Long: `An alliance is a group of servers with a guarantee: an attack on one member
is answered by all. The founder creates it (init), invites members (invite),
and each new member joins with the one-line token (join). Every member then
runs 'phalanx up --data DIR'.`,
	}
	cmd.AddCommand(newAllianceInitCmd(), newAllianceInviteCmd(), newAllianceJoinCmd(), newAllianceMembersCmd(),
		newAllianceExpelCmd(), newAllianceRotateKeyCmd())
	return cmd
}

func newAllianceInitCmd() *cobra.Command {
	var name, data, listen, creds string
	var territory, natsURLs []string
	var replicas int
	cmd := &cobra.Command{
		Use:   "init --name NAME --data DIR [--nats-url URL,... [--nats-creds FILE] [--nats-replicas 3]]",
		Short: "Found an alliance: identity, signed charter, embedded NATS hub or an external cluster",
		Long: `Init founds an alliance: this member's identity, the charter it signs, and
where the alliance's ledger lives. By default this member runs it in an
embedded NATS server (--nats-listen); with --nats-url the ledger is a
replicated stream on an external NATS cluster that every member connects to.`,
		Example: `  phalanx alliance init --name acme --data /var/lib/phalanx --territory 203.0.113.0/24
  phalanx up --data /var/lib/phalanx

  # the ledger on an external three-node JetStream cluster
  phalanx alliance init --name acme --data /var/lib/phalanx \
    --nats-url nats://n1.example.net:4222,nats://n2.example.net:4222,nats://n3.example.net:4222 \
    --nats-creds /etc/phalanx/acme.creds --nats-replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			terr, err := parsePrefixes("territory", territory)
			if err != nil {
				return err
			}
			var info member.Info
			where := "the ledger's hub will listen on"
			if len(natsURLs) > 0 {
				if cmd.Flags().Changed("nats-listen") {
					return fmt.Errorf("--nats-listen is for the embedded hub and --nats-url for an external cluster: give one of them")
				}
				var urls []string
				for _, u := range natsURLs {
					if u = strings.TrimSpace(u); u != "" {
						urls = append(urls, u)
					}
				}
				info, err = member.InitCluster(data, name, natsbus.Config{URLs: urls, CredsFile: creds, Replicas: replicas}, terr, time.Now())
				where = "the ledger is on the NATS cluster; invitations name"
			} else {
				if creds != "" || cmd.Flags().Changed("nats-replicas") {
					return fmt.Errorf("--nats-creds and --nats-replicas go with --nats-url: the embedded hub needs neither")
				}
				info, err = member.Init(data, name, listen, terr, time.Now())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Founded alliance %q (%s) in %s.\nYou are member %s (%s); %s %s.\nNext: phalanx up --data %s, then phalanx alliance invite --data %s\n",
				name, info.Alliance, info.Dir, info.Name, info.ID, where, info.Hub, info.Dir, info.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the alliance's name (required)")
	cmd.Flags().StringVar(&data, "data", "", "data directory to create (required)")
	cmd.Flags().StringVar(&listen, "nats-listen", "127.0.0.1:4222", "address the embedded NATS hub listens on for other members (loopback by default)")
	cmd.Flags().StringSliceVar(&natsURLs, "nats-url", nil, "client URLs of an external NATS cluster (URL,...) to keep the ledger on instead of an embedded hub")
	cmd.Flags().StringVar(&creds, "nats-creds", "", "with --nats-url: the NATS credentials file this member connects with")
	cmd.Flags().IntVar(&replicas, "nats-replicas", 3, "with --nats-url: how many cluster nodes keep a copy of the ledger (1 to 5)")
	cmd.Flags().StringSliceVar(&territory, "territory", nil, "this member's own addresses (CIDR,...): the alliance never decides against them")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("data")
	return cmd
}

func newAllianceInviteCmd() *cobra.Command {
	var data, role, guarantor string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite --data DIR [--role member|protected] [--guarantor MEMBER]",
		Short: "Print a one-line, single-use invitation token",
		Example: `  phalanx alliance invite --data /var/lib/phalanx
  phalanx alliance invite --data /var/lib/phalanx --role protected --guarantor 3f2a...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := ledger.Role(role)
			if r != ledger.RoleMember && r != ledger.RoleProtected {
				return fmt.Errorf("--role %q: use member or protected", role)
			}
			if r == ledger.RoleProtected && guarantor == "" {
				return fmt.Errorf("a protected party needs a --guarantor: the member that vouches for it")
			}
			tok, err := member.Invite(data, r, ledger.MemberID(guarantor), ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the inviting member's data directory (required)")
	cmd.Flags().StringVar(&role, "role", "member", "member, or protected (receives and enforces; its reports need its guarantor)")
	cmd.Flags().StringVar(&guarantor, "guarantor", "", "for a protected party: the member ID that vouches for it")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the invitation can be used")
	cmd.MarkFlagRequired("data")
	return cmd
}

func newAllianceJoinCmd() *cobra.Command {
	var data, name string
	var territory []string
	cmd := &cobra.Command{
		Use:     "join TOKEN --data DIR",
		Short:   "Join an alliance with an invitation token",
		Example: `  phalanx alliance join phalanx1.eyJ... --data /var/lib/phalanx --territory 198.51.100.7`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			terr, err := parsePrefixes("territory", territory)
			if err != nil {
				return err
			}
			info, err := member.Join(args[0], data, name, terr, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Joined alliance %s as member %s (%s); its ledger is on %s.\nNext: phalanx up --data %s\n", info.Alliance, info.Name, info.ID, info.Hub, info.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data directory to create (required)")
	cmd.Flags().StringVar(&name, "name", "", "this member's name (default: the host name)")
	cmd.Flags().StringSliceVar(&territory, "territory", nil, "this member's own addresses (CIDR,...)")
	cmd.MarkFlagRequired("data")
	return cmd
}

// client reaches the running member behind a data directory.
func client(data string) (*member.APIClient, error) {
	c, err := member.Client(data)
	if err != nil {
		return nil, fmt.Errorf("%w (is 'phalanx up --data %s' running?)", err, data)
	}
	return c, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAllianceMembersCmd() *cobra.Command {
	var data, output string
	cmd := &cobra.Command{
		Use:   "members --data DIR [-o json]",
		Short: "List members and protected parties with their health",
		Long: `Members lists every member and protected party of the alliance as the running
member knows them from the ledger: role, territory, guarantor, last heartbeat
and ledger lag (how many ledger entries behind this member it last said it
was).`,
		Example: `  phalanx alliance members --data /var/lib/phalanx
  phalanx alliance members --data /var/lib/phalanx -o json | jq '.[] | select(.lag > 100)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			ms, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			h, err := c.Health(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				ID            ledger.MemberID `json:"id"`
				Name          string          `json:"name"`
				Role          ledger.Role     `json:"role"`
				Council       bool            `json:"council,omitempty"`
				Guarantor     ledger.MemberID `json:"guarantor,omitempty"`
				Territory     []netip.Prefix  `json:"territory,omitempty"`
				LastHeartbeat time.Time       `json:"last_heartbeat,omitzero"`
				Applied       uint64          `json:"applied"`
				Lag           uint64          `json:"lag"`
				Flagged       string          `json:"flagged,omitempty"`
				Expelled      bool            `json:"expelled,omitempty"`
			}
			rows := make([]row, 0, len(ms))
			for _, m := range ms {
				r := row{ID: m.ID, Name: m.Name, Role: m.Role, Council: m.Council, Guarantor: m.Guarantor, Territory: m.Territory,
					LastHeartbeat: m.LastHeartbeat, Applied: m.Applied, Flagged: m.Flagged, Expelled: m.Expelled}
				if m.ID == h.Member {
					r.Applied = h.Applied
				}
				if h.Applied > r.Applied {
					r.Lag = h.Applied - r.Applied
				}
				rows = append(rows, r)
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tGUARANTOR\tTERRITORY\tLAST HEARTBEAT\tLAG\tFLAGS")
			for _, r := range rows {
				hb := "never"
				if !r.LastHeartbeat.IsZero() {
					hb = time.Since(r.LastHeartbeat).Round(time.Second).String() + " ago"
				}
				flags := r.Flagged
				if r.Expelled {
					flags = strings.TrimSpace(flags + " expelled")
				}
				if r.ID == h.Member {
					flags = strings.TrimSpace(flags + " (this member)")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, safe(r.Name), r.Role, r.Guarantor, prefixList(r.Territory), hb, r.Lag, flags)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or a table")
	cmd.MarkFlagRequired("data")
	return cmd
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func newAllianceExpelCmd() *cobra.Command {
	var data, reason, output string
	cmd := &cobra.Command{
		Use:   "expel MEMBER --data DIR --reason TEXT",
		Short: "Expel a member: every member refuses its envelopes from then on",
		Long: `Expel publishes a signed expulsion of MEMBER (its ID, as 'alliance members'
lists it). From its place in the ledger on, every member refuses MEMBER's
envelopes, and its reports still waiting for corroboration stop counting;
decisions already in force stay until they expire or are lifted.

Only a council member may expel (the charter says who: 'phalanx charter show');
the running member behind --data must be one. Expulsion is for a member whose
key leaked or that lies: for a false positive, a ceasefire or a lift is the
lighter tool. There is no undo: a member expelled by mistake joins again with
a new invitation (and a new key).`,
		Example: `  phalanx alliance members --data /var/lib/phalanx
  phalanx alliance expel 3f2a9c... --data /var/lib/phalanx --reason "key leaked with web3's backup"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			pub, err := c.Expel(cmd.Context(), ledger.MemberID(strings.TrimSpace(args[0])), reason)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), pub)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Expelled %s (ledger entry %d, %s).\nEvery member refuses its envelopes from that entry on; check with: phalanx alliance members --data %s\n", safe(args[0]), pub.Seq, pub.ID, data)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "a council member's data directory (required; its 'phalanx up' must be running)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, on the record for every member (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or a sentence")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func newAllianceRotateKeyCmd() *cobra.Command {
	var data, output string
	cmd := &cobra.Command{
		Use:   "rotate-key --data DIR",
		Short: "Replace this member's signing key (the member keeps its ID)",
		Long: `Rotate-key makes a fresh ed25519 key for the running member behind --data and
publishes the change signed with the old key. From its place in the ledger on,
every member verifies this member's envelopes with the new key only, and
refuses anything signed with the old one. The new key replaces identity.json
(same member ID) once the change is in the ledger; the old key is deleted.

Rotate after a backup of the data directory went somewhere it should not, when
an operator with access leaves, or on a schedule. If the key itself leaked and
someone may already be using it, ask a council member to expel the member
instead and join again: a rotation signed by a thief would lock you out.`,
		Example: `  phalanx alliance rotate-key --data /var/lib/phalanx
  phalanx alliance rotate-key --data /var/lib/phalanx -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(data)
			if err != nil {
				return err
			}
			k, err := c.RotateKey(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), k)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Rotated the key of member %s (ledger entry %d): new public key %x.\nThe old key is refused by every member from that entry on.\n", k.Member, k.Seq, k.PublicKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the member's data directory (required; its 'phalanx up' must be running)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or a sentence")
	cmd.MarkFlagRequired("data")
	return cmd
}
