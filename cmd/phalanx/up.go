package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/bouncerapi"
	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/dashboard"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/enforce/nft"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/parse/sshd"
	"github.com/phalanx-defence/phalanx/source"
	"github.com/phalanx-defence/phalanx/source/file"
	"github.com/phalanx-defence/phalanx/source/journald"
	"github.com/phalanx-defence/phalanx/source/reader"
	"github.com/phalanx-defence/phalanx/source/syslog"
)

type upFlags struct {
	enforce       []string
	guardListen   string
	guardUpstream string
	trusted       []string
	api           string
	config        string
	data          string
	sources       []string
	fromStart     bool
	memoryLimit   string
}

func newUpCmd(g *globalFlags) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up [--config FILE]",
		Short: "Run live: follow logs, detect attacks, keep the decision set",
		Long: `Up runs phalanx live. It follows the configured sources — files (across
rotation and truncation, resuming where it stopped after a restart),
journald, syslog over UDP/TCP — recognises attacks and keeps the set of
decisions in force, logging each decision with its evidence.

With --data DIR of an alliance member (made by 'phalanx alliance init' or
'join'), it runs that member: its sources and detection, its signed reports
to the ledger, the alliance's decision set and its local API. A --config
given with it adds the config's sources (files, journald, syslog), rules,
scenarios, sshd mode and allowlist to the member's own detection: what
'phalanx import fail2ban --out DIR' writes works the same with or without
an alliance.

Without --config it follows the usual logs that exist on this machine
(/var/log/auth.log or /var/log/secure, nginx and Apache logs, mail.log),
starting at their end. State (read offsets, journald cursors) is kept in the
data directory (--data, default /var/lib/phalanx).`,
		Example: `  # Follow the usual logs of this machine
  sudo phalanx up

  # Run an alliance member
  phalanx up --data /var/lib/phalanx --source /var/log/auth.log

  # An alliance member with the jails 'phalanx import fail2ban' translated
  phalanx up --data /var/lib/phalanx --config /etc/phalanx/phalanx.yaml

  # With a config file
  sudo phalanx up --config /etc/phalanx/phalanx.yaml

  # Try it without root on a file of your own, read from the start
  phalanx up --data /tmp/phalanx --source ./auth.log --from-start

  # From standard input
  tail -F /var/log/auth.log | phalanx up --data /tmp/phalanx --source -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if f.memoryLimit != "" {
				n, err := parseMemoryLimit(f.memoryLimit)
				if err != nil {
					return fmt.Errorf("--memory-limit: %w", err)
				}
				debug.SetMemoryLimit(n)
				log.Info("memory limit", "bytes", n)
			}
			if f.data != "" {
				if _, err := os.Stat(filepath.Join(f.data, "member.yaml")); err == nil {
					return runMember(cmd.Context(), f, cmd.InOrStdin(), log)
				}
			}
			cfg := config.Discover()
			if f.config != "" {
				if cfg, err = config.Load(f.config); err != nil {
					return err
				}
			} else if len(f.sources) > 0 {
				cfg.Files = nil
			}
			if f.data != "" {
				cfg.DataDir = f.data
			}
			var stdin io.Reader
			for _, s := range f.sources {
				if s == "-" {
					stdin = cmd.InOrStdin()
					continue
				}
				cfg.Files = append(cfg.Files, file.Config{Paths: []string{s}, FromStart: f.fromStart})
			}
			enf, err := parseEnforce(f.enforce)
			if err != nil {
				return err
			}
			if enf.http {
				return errors.New("--enforce http needs an alliance member's data directory (phalanx alliance init --data DIR, then phalanx up --data DIR --enforce http); without one, run the guard as Go middleware (enforce/httpguard)")
			}
			cfg.EnforceNFT = cfg.EnforceNFT || enf.nft
			return runUp(cmd.Context(), cfg, stdin, log)
		},
	}
	cmd.Flags().StringVar(&f.config, "config", "", "config file (YAML); see packaging/phalanx.yaml")
	cmd.Flags().StringVar(&f.data, "data", "", "data directory for state (default /var/lib/phalanx)")
	cmd.Flags().StringSliceVar(&f.sources, "source", nil, "a log file or glob to follow (repeatable; - for standard input); replaces the discovered files")
	cmd.Flags().BoolVar(&f.fromStart, "from-start", false, "read --source files seen for the first time from their start, not their end")
	cmd.Flags().StringSliceVar(&f.enforce, "enforce", nil, "enforce decisions: nft (an nftables table of phalanx's own; needs root), http (the HTTP guard on --guard-listen; alliance members)")
	cmd.Flags().StringVar(&f.guardListen, "guard-listen", "127.0.0.1:8081", "with --enforce http: where the guard listens")
	cmd.Flags().StringVar(&f.guardUpstream, "guard-upstream", "", "with --enforce http: the application to proxy to; without it the guard answers forward-auth sub-requests (nginx auth_request, Traefik forwardAuth, Caddy forward_auth)")
	cmd.Flags().StringSliceVar(&f.trusted, "trusted-proxy", nil, "with --enforce http: a proxy whose X-Forwarded-For is believed (address or CIDR, repeatable)")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "a soft limit on the memory the Go runtime uses, as GOMEMLIMIT (512MiB, 2GiB): the GC works harder as the heap nears it instead of letting it grow to twice what is live; not a hard cap; off for none (default: GOMEMLIMIT, else none)")
	cmd.Flags().StringVar(&f.api, "api", "", "alliance members: the local API's address (default 127.0.0.1, any free port; written to DIR/api.addr)")
	return cmd
}

// memoryUnits are the suffixes GOMEMLIMIT takes, longest first.
var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseMemoryLimit reads a memory limit as the Go runtime reads
// GOMEMLIMIT: a whole number of bytes with an optional unit (B, KiB, MiB,
// GiB, TiB), or off. Below 1 MiB it is refused: "2" is two bytes, not two
// gibibytes, and a limit that small would keep the GC running.
func parseMemoryLimit(s string) (int64, error) {
	if s == "off" {
		return math.MaxInt64, nil // as GOMEMLIMIT=off: no limit
	}
	num, shift := s, uint(0)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: give a whole number of bytes with a unit, as GOMEMLIMIT: 512MiB, 2GiB (B, KiB, MiB, GiB, TiB)", s)
	}
	if n <<= shift; n < 1<<20 {
		return 0, fmt.Errorf("%q is %d bytes: give at least 1MiB, with a unit (2GiB)", s, n)
	}
	return n, nil
}

// runner is what every source provides.
type runner interface {
	Run(ctx context.Context, out chan<- source.Line) error
}

// runUp runs a member until ctx ends. stdin, when not nil, is followed as
// one more source (`--source -`).
func runUp(ctx context.Context, cfg config.Config, stdin io.Reader, log *slog.Logger) error {
	if len(cfg.Files)+len(cfg.Journald)+len(cfg.Syslog) == 0 && stdin == nil {
		return errors.New("no log sources: none of the usual logs exist here; give --source FILE or a --config with files, journald or syslog sources")
	}
	stateDir := filepath.Join(cfg.DataDir, "state")
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w (choose another with --data)", err)
	}
	var set *rules.Set
	var extra []detect.Scenario
	var err error
	if cfg.Rules != "" {
		if set, extra, err = config.LoadRulesFile(cfg.Rules); err != nil {
			return err
		}
	}
	mode, err := sshd.ParseMode(cfg.SSHDMode)
	if err != nil {
		return fmt.Errorf("config sshd_mode: %w", err)
	}
	clock := phalanx.SystemClock{}
	engine, err := engineFor(extra, cfg.Scenarios, cfg.Allowlist, !cfg.NoBuiltinAllowlist, cfg.MaxSources, cfg.Escalation, clock)
	if err != nil {
		return err
	}
	ds := decisions.New(clock)

	var runners []runner
	for _, c := range cfg.Files {
		// Each file source keeps its offsets in a directory of its own,
		// named for its paths so that reordering the config keeps them.
		dir := filepath.Join(stateDir, "files-"+pathsKey(c.Paths))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		// Offsets cover only lines the loop below has processed: a kill
		// -9 reads the lines still in flight again rather than losing them.
		c.Ack = true
		s, err := file.New(c, dir, log)
		if err != nil {
			return err
		}
		defer s.Close()
		runners = append(runners, s)
	}
	for _, c := range cfg.Journald {
		s, err := journaldSource(c, stateDir, log)
		if err != nil {
			return err
		}
		runners = append(runners, s)
	}
	for _, c := range cfg.Syslog {
		s, err := syslog.New(c, log)
		if err != nil {
			return err
		}
		defer s.Close()
		runners = append(runners, s)
	}

	if stdin != nil {
		s, err := reader.New(stdin, reader.Config{}, log)
		if err != nil {
			return err
		}
		runners = append(runners, s)
	}

	bound := &boundedSet{ds: ds, cap: maxLocalDecisions}
	var warned time.Time
	emit := func(d phalanx.Decision) {
		if bound.add(d) > 0 && time.Since(warned) >= time.Minute {
			warned = time.Now()
			log.Warn("decisions at their bound: each new address evicts the decision expiring first",
				"bound", bound.cap, "evicted_total", bound.evicted)
		}
		log.Info("decision", "value", d.ValueString(), "type", d.Type, "scenario", d.Scenario,
			"duration", d.Duration.String(), "events", d.Events, "first_seen", d.FirstSeen, "evidence", d.Evidence)
	}
	// One parser per hint (each keeps its own per-process state); one
	// engine for all, fed from one goroutine.
	pipelines := map[string]*ingest.Pipeline{}
	pipelineFor := func(hint string) (*ingest.Pipeline, error) {
		if p, ok := pipelines[hint]; ok {
			return p, nil
		}
		typ, err := parse.ParseType(hint)
		if err != nil {
			return nil, err
		}
		p := ingest.New(parse.New(parse.Options{Type: typ, SSHDMode: mode, Rules: set, Context: &logline.Context{}}), engine, emit)
		pipelines[hint] = p
		return p, nil
	}

	lines := make(chan source.Line, 4096)
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range runners {
		g.Go(func() error { return r.Run(ctx, lines) })
	}
	g.Go(func() error { return ds.Run(ctx) })
	if cfg.EnforceNFT {
		never := append(builtinNever(cfg.NoBuiltinAllowlist), mustPrefixes(cfg.Allowlist)...)
		g.Go(func() error { return runNFT(ctx, never, ds, nil, log) })
	}
	g.Go(func() error {
		// Detection counters, logged every few minutes while they move:
		// until the metrics endpoint lands, this is where an operator sees
		// state evicted by the memory bound.
		tick := time.NewTicker(5 * time.Minute)
		defer tick.Stop()
		var last detect.Stats
		var acks source.Acks
		unacked := 0
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				st := engine.Stats()
				if st.Events != last.Events {
					log.Info("detection", "events", st.Events, "sources_tracked", st.Buckets, "cap", st.MaxBuckets,
						"evicted", st.Evictions, "allowlisted", st.Allowlisted, "decisions_in_force", ds.Len())
				}
				last = st
			case l := <-lines:
				p, err := pipelineFor(l.Hint)
				if err != nil {
					return fmt.Errorf("source %s: %w", l.Origin, err)
				}
				p.SourceLine(l, clock)
				// Decisions live in this process only: a line is done
				// once detection has seen it. Acknowledged in batches.
				acks.Add(l)
				if unacked++; unacked >= 1024 || len(lines) == 0 {
					acks.Flush()
					unacked = 0
				}
			}
		}
	})
	log.Info("phalanx up", "files", len(cfg.Files), "journald", len(cfg.Journald), "syslog", len(cfg.Syslog), "data", cfg.DataDir)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("phalanx stopped", "decisions_in_force", len(ds.List()))
	return err
}

// maxLocalDecisions bounds the decisions of `phalanx up` without a member:
// each is keyed by an address an attacker chooses. The bound is a
// member's on its own decisions, and so is the rule: when full, the one
// expiring first makes room for the new one.
const maxLocalDecisions = 1 << 20

// boundedSet adds decisions to ds, keeping at most cap values in it
// (decisions.Set.AddBounded), and counts the evictions.
type boundedSet struct {
	ds      *decisions.Set
	cap     int
	evicted uint64
}

// add adds d to the set and returns how many decisions it evicted to
// make room.
func (b *boundedSet) add(d phalanx.Decision) int {
	_, n := b.ds.AddBounded(d, b.cap)
	b.evicted += uint64(n)
	return n
}

// pathsKey names a source's state directory after what it reads.
func pathsKey(parts []string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:6])
}

// runMember runs the alliance member whose data directory is f.data.
func runMember(ctx context.Context, f *upFlags, stdin io.Reader, log *slog.Logger) error {
	m, err := member.Open(f.data, log)
	if err != nil {
		return err
	}
	var cfgNFT bool
	if f.config != "" {
		if cfgNFT, err = configureMember(m, f.config, f.data, log); err != nil {
			return err
		}
	}
	for _, s := range f.sources {
		if s == "-" {
			r, err := reader.New(stdin, reader.Config{}, log)
			if err != nil {
				return err
			}
			m.AddLineSource(r)
			continue
		}
		m.AddSource(file.Config{Paths: []string{s}, FromStart: f.fromStart})
	}
	if f.api != "" {
		m.SetAPIListen(f.api)
	}
	enf, err := parseEnforce(f.enforce)
	if err != nil {
		return err
	}
	if enf.nft || cfgNFT {
		observe := func(a nft.Applied) { m.ObserveEnforce("nft", a.Latency) }
		m.AddRunner(func(ctx context.Context) error { return runNFT(ctx, m.Never(), m.Decisions(), observe, log) })
	}
	if enf.http {
		setup, err := f.guardSetup()
		if err != nil {
			return err
		}
		m.AddRunner(func(ctx context.Context) error { return serveGuard(ctx, m.Decisions(), setup, log) })
		m.AddRunner(func(ctx context.Context) error { return m.ObserveSetWrites(ctx, "http") })
	}
	// Existing CrowdSec bouncers pull from the member's local API with the
	// keys 'phalanx bouncers add' made.
	keys, err := bouncerapi.OpenKeys(filepath.Join(f.data, "bouncers.json"))
	if err != nil {
		return err
	}
	m.MountBouncerAPI(bouncerapi.New(m.Decisions(), keys, log).Handler())
	// The dashboard's page at the API's address; its data calls need the token.
	dashboard.Mount(m)
	err = m.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// enforcers says which enforcers `--enforce` asked for.
type enforcers struct{ nft, http bool }

func parseEnforce(vals []string) (enforcers, error) {
	var e enforcers
	for _, v := range vals {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "nft", "nftables":
			e.nft = true
		case "http", "guard":
			e.http = true
		case "":
		default:
			return e, fmt.Errorf("--enforce %q: use nft, http or both (nft,http)", v)
		}
	}
	return e, nil
}

// runNFT keeps phalanx's nftables table in step with ds until ctx ends.
func runNFT(ctx context.Context, never []netip.Prefix, ds *decisions.Set, observe func(nft.Applied), log *slog.Logger) error {
	e, err := nft.New(nft.Config{Observe: observe}, never, log)
	if err != nil {
		return err
	}
	defer e.Close()
	log.Info("enforcing with nftables", "table", "inet phalanx", "never", len(never))
	return e.Run(ctx, ds)
}

// builtinNever is what must never be blocked on the host itself.
func builtinNever(off bool) []netip.Prefix {
	if off {
		return nil
	}
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
	}
}

// mustPrefixes parses an allowlist that engineFor has already validated.
func mustPrefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := phalanx.ParsePrefixOrAddr(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func newDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove phalanx's nftables table (and nothing else)",
		Long: `Down deletes the nftables table phalanx enforces with (inet phalanx), and
nothing else: other tables and rules are never touched. Bans then stop at
once instead of expiring by themselves. Run it when uninstalling.`,
		Example: `  sudo phalanx down`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := nft.Down(nft.Config{}); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Removed the nftables table inet phalanx.")
			return nil
		},
	}
}

// guardSetup builds the HTTP guard's settings from the --guard flags; the
// challenge key is the member's DIR/guard.secret, as for 'phalanx guard'.
func (f *upFlags) guardSetup() (guardSetup, error) {
	s := guardSetup{listen: f.guardListen}
	if f.guardUpstream != "" {
		u, err := url.Parse(f.guardUpstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, fmt.Errorf("--guard-upstream %q: give a URL such as http://127.0.0.1:3000", f.guardUpstream)
		}
		s.upstream = u
	}
	for _, t := range f.trusted {
		p, err := phalanx.ParsePrefixOrAddr(t)
		if err != nil {
			return s, fmt.Errorf("--trusted-proxy %q: %w", t, err)
		}
		s.cfg.TrustedProxies = append(s.cfg.TrustedProxies, p)
	}
	secret, err := guardSecret(f.data)
	if err != nil {
		return s, err
	}
	s.cfg.Secret = secret
	return s, nil
}

// configureMember adds what a phalanx config file says about detection to
// an alliance member: its sources, rules, scenarios, sshd mode, memory
// bound and allowlist. Its data_dir is not used: the member's is (--data).
// It returns whether the config asks for nftables enforcement.
func configureMember(m *member.Member, path, dataDir string, log *slog.Logger) (enforceNFT bool, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return false, err
	}
	var opts member.DetectOptions
	var extra []detect.Scenario
	if cfg.Rules != "" {
		if opts.Rules, extra, err = config.LoadRulesFile(cfg.Rules); err != nil {
			return false, err
		}
	}
	if cfg.Scenarios != "" || len(extra) > 0 {
		if opts.Scenarios, err = scenariosFor(extra, cfg.Scenarios); err != nil {
			return false, err
		}
	}
	opts.SSHDMode = cfg.SSHDMode
	opts.MaxSources = cfg.MaxSources
	opts.Escalation = cfg.Escalation
	for _, a := range cfg.Allowlist {
		p, err := phalanx.ParsePrefixOrAddr(a)
		if err != nil {
			return false, fmt.Errorf("config %s: allowlist: %w", path, err)
		}
		opts.Allowlist = append(opts.Allowlist, p)
	}
	m.SetDetection(opts)
	for _, c := range cfg.Files {
		m.AddSource(c)
	}
	for _, c := range cfg.Journald {
		s, err := journaldSource(c, filepath.Join(dataDir, "state"), log)
		if err != nil {
			return false, err
		}
		m.AddLineSource(s)
	}
	for _, c := range cfg.Syslog {
		s, err := syslog.New(c, log)
		if err != nil {
			return false, err
		}
		m.AddLineSource(s)
	}
	return cfg.EnforceNFT, nil
}

// journaldSource follows journald as c says, its cursor kept in a
// directory of stateDir named for its matches (reordering the config keeps
// it).
func journaldSource(c journald.Config, stateDir string, log *slog.Logger) (*journald.Source, error) {
	dir := filepath.Join(stateDir, "journald-"+pathsKey(c.Matches))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return journald.New(c, dir, log)
}
