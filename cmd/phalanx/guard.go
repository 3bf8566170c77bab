package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/enforce/httpguard"
	"github.com/phalanx-defence/phalanx/member"
)

// mirrorEvery is how often the guard copies the member's decisions: a
// decision reaches the web server at most this long (plus one API round
// trip) after the member takes it. The member's API has no stream yet.
const mirrorEvery = time.Second

func newGuardCmd(g *globalFlags) *cobra.Command {
	var (
		data, listen, upstream string
		trusted                []string
	)
	cmd := &cobra.Command{
		Use:   "guard --data DIR [--listen HOST:PORT] [--upstream URL] [--trusted-proxy CIDR]",
		Short: "Enforce decisions in front of a web application (reverse proxy or forward auth)",
		Long: `Guard enforces the decisions of the member running on DIR ('phalanx up --data
DIR') in front of a web application: a banned address gets 403, a throttled
one 429 once it has spent 10 requests a minute, and a captcha'd one a
proof-of-work page served by the guard itself (no third party).

With --upstream, guard is a reverse proxy to the application. Without it,
guard answers forward-auth sub-requests (nginx auth_request, Traefik
forwardAuth, Caddy forward_auth) on every path; /.phalanx/auth is the
conventional one, and /.phalanx/challenge must be routed to the guard.
See enforce/httpguard/README.md for each proxy's configuration.

Decisions are copied from the member every second, so a new one takes
effect within about a second. The challenge key is DIR/guard.secret.`,
		Example: `  # Reverse proxy on loopback in front of an app on port 3000
  phalanx guard --data /var/lib/phalanx --upstream http://127.0.0.1:3000

  # Forward auth for nginx on this host
  phalanx guard --data /var/lib/phalanx --listen 127.0.0.1:8081 --trusted-proxy 127.0.0.1/32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if data == "" {
				return errors.New("--data: give the data directory of a running member ('phalanx up --data DIR')")
			}
			var up *url.URL
			if upstream != "" {
				if up, err = url.Parse(upstream); err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
					return fmt.Errorf("--upstream %q: give a URL such as http://127.0.0.1:3000", upstream)
				}
			}
			var proxies []netip.Prefix
			for _, s := range trusted {
				p, err := phalanx.ParsePrefixOrAddr(s)
				if err != nil {
					return fmt.Errorf("--trusted-proxy %q: give an address or CIDR: %w", s, err)
				}
				proxies = append(proxies, p)
			}
			secret, err := guardSecret(data)
			if err != nil {
				return err
			}
			c, err := client(data)
			if err != nil {
				return err
			}
			return runGuard(cmd.Context(), guardSetup{
				listen: listen, upstream: up, source: c,
				cfg: httpguard.Config{TrustedProxies: proxies, Secret: secret},
			}, log)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data directory of the running member")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to listen on")
	cmd.Flags().StringVar(&upstream, "upstream", "", "the application to proxy to; without it, answer forward-auth sub-requests")
	cmd.Flags().StringSliceVar(&trusted, "trusted-proxy", nil, "a proxy whose X-Forwarded-For is believed (address or CIDR, repeatable)")
	return cmd
}

// decisionSource is what the guard needs from a member: its decisions.
type decisionSource interface {
	Decisions(ctx context.Context) ([]member.DecisionView, error)
}

type guardSetup struct {
	listen   string
	upstream *url.URL
	source   decisionSource
	cfg      httpguard.Config
}

func runGuard(ctx context.Context, s guardSetup, log *slog.Logger) error {
	set := decisions.New(nil)
	// A first copy before listening, so that the guard never opens with an
	// empty set in front of addresses the member already decided on.
	if err := mirrorOnce(ctx, s.source, set); err != nil {
		return err
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return set.Run(ctx) })
	eg.Go(func() error { return mirror(ctx, s.source, set, log) })
	eg.Go(func() error { return serveGuard(ctx, set, s, log) })
	return eg.Wait()
}

// serveGuard serves the guard in front of s.upstream (or as a forward-auth
// endpoint) on s.listen, judging by set, until ctx ends. `phalanx guard`
// feeds it a mirror of a running member's decisions; `phalanx up --enforce
// http` the member's own decision set.
func serveGuard(ctx context.Context, set httpguard.Lookup, s guardSetup, log *slog.Logger) error {
	guard := httpguard.New(set, s.cfg, log)
	mux := http.NewServeMux()
	mux.Handle("/.phalanx/auth", guard.ForwardAuth())
	if s.upstream != nil {
		mux.Handle("/", httpguard.NewProxy(s.upstream, guard))
	} else {
		mux.Handle("/", guard.ForwardAuth())
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("guard listening", "addr", ln.Addr().String(), "upstream", s.upstream)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	eg.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("guard: %w", err)
		}
		return nil
	})
	return eg.Wait()
}

// mirror keeps set a copy of the member's decisions until ctx ends. When
// the member is unreachable the last copy stays in force (and expires on
// its own): failing open on a restart would lift every ban at once.
func mirror(ctx context.Context, src decisionSource, set *decisions.Set, log *slog.Logger) error {
	tick := time.NewTicker(mirrorEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		err := mirrorOnce(ctx, src, set)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("guard: cannot read the member's decisions; keeping the last copy", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("guard: reading the member's decisions again")
			failing = false
		}
	}
}

// mirrorOnce makes set hold exactly the member's decisions.
func mirrorOnce(ctx context.Context, src decisionSource, set *decisions.Set) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	views, err := src.Decisions(ctx)
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	want := make(map[netip.Prefix]phalanx.Decision, len(views))
	for _, v := range views {
		p, err := phalanx.ParsePrefixOrAddr(v.Value)
		if err != nil || v.Until.IsZero() {
			continue // a value this version cannot read: not ours to guess at
		}
		// Carry the expiry exactly: Until is what the guard enforces.
		want[p.Masked()] = phalanx.Decision{
			Value: p.Masked(), Type: v.Type, Scenario: v.Scenario, Origin: v.Origin,
			FirstSeen: v.FirstSeen, LastSeen: v.LastSeen, Duration: v.Until.Sub(v.LastSeen), Events: v.Events,
		}
	}
	have := make(map[netip.Prefix]phalanx.Decision)
	for _, d := range set.List() {
		have[d.Value] = d
		if w, ok := want[d.Value]; !ok || w.Type != d.Type || !w.Until().Equal(d.Until()) {
			// Add merges toward the stronger type and later expiry; a lift
			// or a shortened decision must replace, not merge.
			set.Delete(d.Value)
			delete(have, d.Value)
		}
	}
	for p, d := range want {
		if _, ok := have[p]; !ok {
			set.Add(d)
		}
	}
	return nil
}

// guardSecret reads DIR/guard.secret, creating it on first use: a stable
// key keeps solved challenges valid across restarts.
func guardSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "guard.secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 16 {
			return nil, fmt.Errorf("guard: %s is too short; delete it to make a new one", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("guard: %w", err)
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another guard on the same directory made it first.
		return guardSecret(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("guard: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	return b, nil
}
