package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/parse/fail2ban"
)

type parseFlags struct {
	parserFlags
	output         string
	fail2banFilter string
}

func newParseCmd(g *globalFlags) *cobra.Command {
	f := &parseFlags{}
	cmd := &cobra.Command{
		Use:   "parse [flags] FILE...",
		Short: "Show how each log line is parsed (phalanx's fail2ban-regex)",
		Long: `Parse runs only the parsers over log files and reports what they recognise:
without -o, a summary of lines matched and missed by service and event kind,
with the throughput; with -o json, exactly one JSON object per input line,
in order:

  {"line":1,"match":true,"source":"203.0.113.7","service":"sshd","event":"invalid_user","user":"admin"}

"match" is true when the line is an attack-relevant failure that counts
toward a scenario. "source" is the remote address, or the host name as the
line writes it — never resolved: an attacker chooses its names, so only
addresses are ever decided against. "-" reads standard input.

--fail2ban-filter FILE.conf[:MODE] parses with that one fail2ban filter
instead of phalanx's parsers, with fail2ban's semantics (its date
detection, prefregex, ignoreregex, multi-line and connection tracking):
the way to check a filter against its own sample log. A filter in a
filter.d directory is read with its .local and includes, as fail2ban-regex
does; MODE sets its mode argument (FILE.conf[mode=aggressive,...] sets any
argument). The filter's expressions that RE2 cannot run are listed on
standard error: each runs on a backtracking engine with a 50 ms limit per
line, or, if neither engine can run it, not at all.`,
		Example: `  # How much of my auth.log does phalanx understand?
  phalanx parse /var/log/auth.log

  # Check a custom rule against a sample
  phalanx parse --rules rules.yaml -o json app.log | jq 'select(.match)'

  # From standard input
  journalctl -u ssh -o short | phalanx parse -t sshd -

  # A fail2ban filter, in aggressive mode, against its sample log
  phalanx parse --fail2ban-filter /etc/fail2ban/filter.d/sshd.conf:aggressive \
    -o json /var/log/auth.log`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runParse(cmd, f, args)
		},
	}
	f.parserFlags.register(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "json: one object per input line; empty: a summary")
	cmd.Flags().StringVar(&f.fail2banFilter, "fail2ban-filter", "", "parse with this fail2ban filter only: FILE.conf, FILE.conf:MODE or FILE.conf[name=value,...]")
	return cmd
}

type parsedLine struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line"`
	Match   bool   `json:"match"`
	Source  string `json:"source"`
	Service string `json:"service"`
	Event   string `json:"event"`
	User    string `json:"user,omitempty"`
	Path    string `json:"path,omitempty"`
	Status  int    `json:"status,omitempty"`
}

type countKey struct{ service, event string }

func runParse(cmd *cobra.Command, f *parseFlags, files []string) error {
	if f.output != "" && f.output != "json" {
		return fmt.Errorf("-o %q: use json, or leave it out for a summary", f.output)
	}
	var parseLine func(string) (*phalanx.Event, bool)
	var stats func() ingest.Stats
	var next func() // a new log: the fail2ban filter's per-log state starts afresh
	if f.fail2banFilter != "" {
		for _, other := range []string{"type", "sshd-mode", "rules"} {
			if cmd.Flags().Changed(other) {
				return fmt.Errorf("--fail2ban-filter parses with that filter alone: leave out --%s, or run parse without --fail2ban-filter", other)
			}
		}
		fl, err := fail2ban.LoadFilterFile(f.fail2banFilter, fail2ban.LoadOptions{})
		if err != nil {
			return fmt.Errorf("--fail2ban-filter: %w", err)
		}
		for _, pr := range fl.Problems {
			fmt.Fprintf(cmd.ErrOrStderr(), "fail2ban filter %s\n", pr)
		}
		fp := newFilterParser(fl)
		parseLine, stats, next = fp.line, fp.statsFn, fp.next
	} else {
		parser, _, _, err := f.build()
		if err != nil {
			return err
		}
		p := ingest.New(parser, nil, nil)
		parseLine, stats, next = p.Line, p.Stats, func() {}
	}
	w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer w.Flush()
	enc := json.NewEncoder(w)
	counts := map[countKey]int{}
	var matched, missed int
	start := time.Now()
	var prog *progress // not with -o json: that output is for a pipe
	if f.output != "json" {
		prog = newProgress(cmd.ErrOrStderr(), files)
	}
	defer prog.done()
	for _, name := range files {
		r, err := prog.open(name, cmd.InOrStdin())
		if err != nil {
			return err
		}
		next()
		n := 0
		label := ""
		if len(files) > 1 {
			label = name
		}
		_, err = ingest.ScanLines(r, func(line string) {
			n++
			prog.line()
			ev, ok := parseLine(line)
			hostile := ok && ev.Failure()
			if f.output == "json" {
				pl := parsedLine{File: label, Line: n, Match: hostile}
				if ok {
					pl.Service, pl.Event, pl.User = string(ev.Service), string(ev.Kind), ev.User
					pl.Path, pl.Status = ev.Path, ev.Status
					if ev.Source.IsValid() {
						pl.Source = ev.Source.String()
					} else {
						pl.Source = ev.SourceName // a host name, never resolved
					}
				}
				_ = enc.Encode(pl) // a write error surfaces at Flush
				return
			}
			switch {
			case !ok:
				missed++
			case hostile:
				matched++
			}
			if ok {
				counts[countKey{string(ev.Service), string(ev.Kind)}]++
			}
		})
		r.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
	prog.done()
	if f.output != "json" {
		printParseSummary(w, stats(), matched, missed, counts, time.Since(start))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func printParseSummary(w io.Writer, s ingest.Stats, matched, missed int, counts map[countKey]int, elapsed time.Duration) {
	fmt.Fprintf(w, "Lines:    %d\n", s.Lines)
	fmt.Fprintf(w, "Matched:  %d (attack-relevant failures that count toward a scenario)\n", matched)
	fmt.Fprintf(w, "Benign:   %d (recognised, not hostile: logins, ordinary requests)\n", int(s.Recognised)-matched)
	fmt.Fprintf(w, "Missed:   %d (not recognised by any parser or rule)\n", missed)
	fmt.Fprintf(w, "Speed:    %.0f lines/s (%s)\n\n", float64(s.Lines)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	keys := make([]countKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i].service+keys[i].event < keys[j].service+keys[j].event
	})
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tEVENT\tLINES")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", safe(k.service), safe(k.event), counts[k])
	}
	tw.Flush()
}

// filterParser runs one fail2ban filter over lines, as `phalanx parse`
// runs its parsers, counting the same statistics.
type filterParser struct {
	f     *fail2ban.Filter
	m     *fail2ban.Matcher
	ev    phalanx.Event
	stats ingest.Stats
}

func newFilterParser(f *fail2ban.Filter) *filterParser {
	return &filterParser{f: f, m: f.NewMatcher()}
}

func (p *filterParser) next() { p.m = p.f.NewMatcher() }

func (p *filterParser) statsFn() ingest.Stats { return p.stats }

// line returns the event of the first failure the filter finds in line;
// a match that is not a failure (<F-NOFAIL>) is a benign event.
func (p *filterParser) line(line string) (*phalanx.Event, bool) {
	p.stats.Lines++
	p.stats.Bytes += int64(len(line)) + 1
	res := p.m.Line(line)
	if len(res) == 0 {
		p.ev.Reset()
		return &p.ev, false
	}
	pick := res[0]
	for _, r := range res {
		if !r.NoFail && !r.Pending {
			pick = r
			break
		}
	}
	pick.Event(p.f.Name, &p.ev)
	p.stats.Recognised++
	if p.ev.Hostile() {
		p.stats.Hostile++
	}
	return &p.ev, true
}
