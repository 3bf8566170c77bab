package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/member"
)

// statusReport is `phalanx status -o json`.
type statusReport struct {
	Member     ledger.MemberID   `json:"member"`
	Alliance   string            `json:"alliance"`
	Connected  bool              `json:"connected"`
	Applied    uint64            `json:"applied"`
	MaxLag     uint64            `json:"max_lag"` // the furthest any other member is behind this one
	Decisions  statusDecisions   `json:"decisions"`
	Rejections map[string]uint64 `json:"rejections"`
	Members    []statusMember    `json:"members"`
	LastDrill  *statusDrill      `json:"last_drill,omitempty"`
}

type statusDecisions struct {
	Total    int            `json:"total"`
	ByOrigin map[string]int `json:"by_origin"`
	ByType   map[string]int `json:"by_type"`
}

type statusMember struct {
	ID            ledger.MemberID `json:"id"`
	Name          string          `json:"name"`
	Role          ledger.Role     `json:"role"`
	Self          bool            `json:"self,omitempty"`
	LastHeartbeat time.Time       `json:"last_heartbeat,omitzero"`
	Applied       uint64          `json:"applied"`
	Lag           uint64          `json:"lag"`
	Flagged       string          `json:"flagged,omitempty"`
	Expelled      bool            `json:"expelled,omitempty"`
}

type statusDrill struct {
	Members int     `json:"members"` // members that confirmed it
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
}

func newStatusCmd() *cobra.Command {
	var data, output string
	cmd := &cobra.Command{
		Use:   "status --data DIR [-o json]",
		Short: "One screen on a running member: connection, lag, decisions, members, drills",
		Long: `Status asks the member running on a data directory ('phalanx up --data DIR')
how it is: its member and alliance IDs, whether it is connected to the
alliance's bus, the ledger position it applied and how far the others are
behind it, the decisions in force by origin and type, every member's last
heartbeat, the ledger entries it refused and why, and the last drill's
time-to-protect.`,
		Example: `  phalanx status --data /var/lib/phalanx
  phalanx status --data /var/lib/phalanx -o json | jq '.max_lag'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := outputFormat(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			rep, err := memberStatus(cmd.Context(), data)
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return printStatus(cmd.OutOrStdout(), rep, data)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the member's data directory (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, or a table (default on a terminal)")
	cmd.MarkFlagRequired("data")
	return cmd
}

// memberStatus gathers the report from the member's API.
func memberStatus(ctx context.Context, data string) (statusReport, error) {
	c, err := member.Client(data)
	if err != nil {
		return statusReport{}, fmt.Errorf("no member on %s: %w; start it with 'phalanx up --data %s'", data, err, data)
	}
	h, err := c.Health(ctx)
	if err != nil {
		// api.addr outlives a member that was killed: say so rather than
		// only "connection refused".
		return statusReport{}, fmt.Errorf("the member on %s does not answer: %w; start it with 'phalanx up --data %s'", data, err, data)
	}
	ms, err := c.Members(ctx)
	if err != nil {
		return statusReport{}, err
	}
	ds, err := c.Decisions(ctx)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{
		Member: h.Member, Alliance: h.Alliance, Connected: h.Connected, Applied: h.Applied,
		Decisions:  statusDecisions{Total: len(ds), ByOrigin: map[string]int{}, ByType: map[string]int{}},
		Rejections: h.Rejections, Members: []statusMember{},
	}
	if rep.Rejections == nil {
		rep.Rejections = map[string]uint64{}
	}
	for _, d := range ds {
		rep.Decisions.ByOrigin[string(d.Origin)]++
		rep.Decisions.ByType[string(d.Type)]++
	}
	for _, m := range ms {
		sm := statusMember{ID: m.ID, Name: m.Name, Role: m.Role, LastHeartbeat: m.LastHeartbeat,
			Applied: m.Applied, Flagged: m.Flagged, Expelled: m.Expelled, Self: m.ID == h.Member}
		if sm.Self {
			sm.Applied = h.Applied
		}
		if h.Applied > sm.Applied {
			sm.Lag = h.Applied - sm.Applied
		}
		if !sm.Expelled {
			rep.MaxLag = max(rep.MaxLag, sm.Lag)
		}
		rep.Members = append(rep.Members, sm)
	}
	// The client has no drill history; /metrics exports the latest drill's
	// per-member time-to-protect, read from the fold at scrape time.
	ttp, err := drillTTP(ctx, data)
	if err != nil {
		return statusReport{}, err
	}
	if len(ttp) > 0 {
		slices.Sort(ttp)
		rep.LastDrill = &statusDrill{Members: len(ttp), P50MS: nearestRank(ttp, 0.50), P99MS: nearestRank(ttp, 0.99)}
	}
	return rep, nil
}

// drillTTP scrapes the member's /metrics for the latest drill's
// time-to-protect per member, in milliseconds.
func drillTTP(ctx context.Context, data string) ([]float64, error) {
	addr, err := os.ReadFile(filepath.Join(data, "api.addr"))
	if err != nil {
		return nil, fmt.Errorf("%w; start the member with 'phalanx up --data %s'", err, data)
	}
	tok, err := os.ReadFile(filepath.Join(data, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("%w (is %s a member's data directory?)", err, data)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimSpace(string(addr))+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	// Ask for the text format: it is the one parsed below.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w; is 'phalanx up --data %s' running?", err, data)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s (is api.token in %s the running member's?)", resp.Status, data)
	}
	return parseDrillTTP(io.LimitReader(resp.Body, 16<<20))
}

// parseDrillTTP reads phalanx_drill_time_to_protect_seconds samples from
// the Prometheus text format.
func parseDrillTTP(r io.Reader) ([]float64, error) {
	const name = "phalanx_drill_time_to_protect_seconds"
	var ms []float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fields := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		ms = append(ms, v*1000)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ms, nil
}

// nearestRank is the nearest-rank quantile of sorted values, as the drill
// API computes its p50/p99.
func nearestRank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func printStatus(out io.Writer, rep statusReport, data string) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Member\t%s\n", rep.Member)
	fmt.Fprintf(tw, "Alliance\t%s\n", rep.Alliance)
	if rep.Connected {
		fmt.Fprintf(tw, "Bus\tconnected\n")
	} else {
		fmt.Fprintf(tw, "Bus\tNOT CONNECTED: it neither receives nor publishes; check the hub in member.yaml and the logs of 'phalanx up'\n")
	}
	fmt.Fprintf(tw, "Applied\tledger position %d; the furthest member behind is %d entries behind\n", rep.Applied, rep.MaxLag)
	fmt.Fprintf(tw, "Decisions\t%d in force%s\n", rep.Decisions.Total, breakdown(rep.Decisions))
	if len(rep.Rejections) == 0 {
		fmt.Fprintf(tw, "Rejections\tnone\n")
	} else {
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(rep.Rejections)) {
			parts = append(parts, fmt.Sprintf("%s %d", safe(r), rep.Rejections[r]))
		}
		fmt.Fprintf(tw, "Rejections\t%s (see 'phalanx ledger verify --data %s')\n", strings.Join(parts, ", "), data)
	}
	if d := rep.LastDrill; d != nil {
		fmt.Fprintf(tw, "Last drill\tp50 %.1f ms, p99 %.1f ms over %d members\n", d.P50MS, d.P99MS, d.Members)
	} else {
		fmt.Fprintf(tw, "Last drill\tnone yet: measure time-to-protect with 'phalanx drill --data %s'\n", data)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tNAME\tROLE\tLAST HEARTBEAT\tLAG\tFLAGS")
	for _, m := range rep.Members {
		hb := "never"
		if !m.LastHeartbeat.IsZero() {
			hb = time.Since(m.LastHeartbeat).Round(time.Second).String() + " ago"
		}
		var flags []string
		if m.Self {
			flags = append(flags, "this member")
			hb = "-"
		}
		if m.Flagged != "" {
			flags = append(flags, "flagged: "+safe(m.Flagged))
		}
		if m.Expelled {
			flags = append(flags, "expelled")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", statusID(m.ID), safe(m.Name), m.Role, hb, m.Lag, strings.Join(flags, ", "))
	}
	return tw.Flush()
}

func breakdown(d statusDecisions) string {
	if d.Total == 0 {
		return ""
	}
	var origins, types []string
	for _, k := range slices.Sorted(maps.Keys(d.ByOrigin)) {
		origins = append(origins, fmt.Sprintf("%s %d", k, d.ByOrigin[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(d.ByType)) {
		types = append(types, fmt.Sprintf("%s %d", k, d.ByType[k]))
	}
	return ": " + strings.Join(origins, ", ") + "; " + strings.Join(types, ", ")
}

// statusID keeps a member ID to a width the table can hold; -o json has it whole.
func statusID(id ledger.MemberID) string {
	if len(id) > 16 {
		return string(id[:16])
	}
	return string(id)
}
