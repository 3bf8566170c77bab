package member

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/source"
	"github.com/phalanx-defence/phalanx/source/file"
)

// detect runs the member's own detection on its file sources, the way
// `phalanx up` does alone, and turns each local decision into a signed
// report: enforced here at once, proposed to the alliance.
func (m *Member) detect(ctx context.Context) error {
	territory, err := m.cfg.territory()
	if err != nil {
		return err
	}
	allow := territory
	for _, a := range m.cfg.Allowlist {
		p, err := phalanx.ParsePrefixOrAddr(a)
		if err != nil {
			return fmt.Errorf("member: %s allowlist: %w", fileConfig, err)
		}
		allow = append(allow, p)
	}
	engine, err := detect.New(detect.Config{
		Scenarios:        detect.DefaultScenarios(),
		Allowlist:        allow,
		BuiltinAllowlist: true,
		Clock:            m.clock,
	})
	if err != nil {
		return fmt.Errorf("member: detection: %w", err)
	}
	stateDir := filepath.Join(m.dir, dirState)
	var sources []*file.Source
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	for _, c := range m.sources {
		// Each source keeps its offsets in a directory named for its
		// paths, so that reordering the config keeps them.
		dir := filepath.Join(stateDir, "files-"+pathsKey(c.Paths))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("member: data directory: %w", err)
		}
		s, err := file.New(c, dir, m.log)
		if err != nil {
			return fmt.Errorf("member: source: %w", err)
		}
		sources = append(sources, s)
	}

	// Decisions are taken while the loop holds the metrics lock, and
	// published after it lets go: publishing may wait on a full outbox.
	var pending []phalanx.Decision
	emit := func(d phalanx.Decision) { pending = append(pending, d) }
	decide := func(d phalanx.Decision) {
		d.Origin = phalanx.OriginLocal
		m.ds.Add(d)
		m.log.Info("decision", "value", d.ValueString(), "type", d.Type, "scenario", d.Scenario,
			"duration", d.Duration.String(), "events", d.Events)
		m.send(ctx, outgoing{kind: ledger.KindReport, body: ledger.Report{
			Value: d.Value, Type: d.Type, Scenario: d.Scenario, Duration: d.Duration,
			FirstSeen: d.FirstSeen.UTC(), LastSeen: d.LastSeen.UTC(), Events: d.Events, Evidence: d.Evidence,
		}})
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
		p := ingest.New(parse.New(parse.Options{Type: typ, Context: &logline.Context{}}), engine, emit)
		pipelines[hint] = p
		return p, nil
	}
	det := &m.stats.det
	det.mu.Lock()
	det.engine = engine
	det.mu.Unlock()
	lines := make(chan source.Line, 4096)
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range sources {
		g.Go(func() error { return s.Run(ctx, lines) })
	}
	g.Go(func() error {
		sightings := newSightings(maxSightingSources)
		tick := time.NewTicker(m.sightingEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				for _, s := range sightings.flush() {
					// What this member already decided on was reported
					// in full; a sighting would count it twice.
					if _, ok := m.ds.Lookup(s.Source); ok {
						continue
					}
					if !m.send(ctx, outgoing{kind: ledger.KindSighting, body: s}) {
						return nil
					}
				}
			case l := <-lines:
				det.mu.Lock()
				p, err := pipelineFor(l.Hint)
				if err != nil {
					det.mu.Unlock()
					return fmt.Errorf("member: source %s: %w", l.Origin, err)
				}
				ev, ok := p.Line(l.Text)
				det.line(l.Origin, l.Truncated, ok, ev.Kind)
				det.mu.Unlock()
				for _, d := range pending {
					decide(d)
				}
				pending = pending[:0]
				if ok && ev.Hostile() {
					sightings.add(ev.Source.Unmap(), sightingScenario(ev.Service), m.clock.Now())
				}
			}
		}
	})
	return g.Wait()
}

// maxSightingSources bounds the addresses counted between two flushes: an
// attacker chooses them. Beyond it new addresses wait for the next flush.
const maxSightingSources = 10_000

// sightings counts hostile events per source between two flushes; every
// source becomes one KindSighting per flush, so that events below this
// member's own threshold still add up across the alliance.
type sightings struct {
	max int
	m   map[netip.Addr]*ledger.Sighting
}

func newSightings(max int) *sightings {
	return &sightings{max: max, m: make(map[netip.Addr]*ledger.Sighting)}
}

func (s *sightings) add(a netip.Addr, scenario string, at time.Time) {
	if e, ok := s.m[a]; ok {
		e.Events++
		return
	}
	if len(s.m) >= s.max {
		return
	}
	s.m[a] = &ledger.Sighting{Source: a, Scenario: scenario, Events: 1, Since: at.UTC()}
}

// maxSightingsPerFlush bounds what one flush publishes: the charter caps
// every member's envelopes per minute (600 by default), and sightings must
// leave most of that to reports. 25 every 5 s is 300 a minute; the sources
// with the most events go first, the rest are counted again if they go on.
const maxSightingsPerFlush = 25

func (s *sightings) flush() []ledger.Sighting {
	out := make([]ledger.Sighting, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, *e)
	}
	clear(s.m)
	slices.SortFunc(out, func(a, b ledger.Sighting) int {
		if a.Events != b.Events {
			return b.Events - a.Events
		}
		return a.Source.Compare(b.Source)
	})
	return out[:min(len(out), maxSightingsPerFlush)]
}

// sightingScenario names what the events counted toward, by service: the
// fold sums sightings of one source whatever the scenario.
func sightingScenario(svc phalanx.Service) string {
	switch svc {
	case phalanx.ServiceSSHD:
		return "ssh"
	case phalanx.ServiceNginx, phalanx.ServiceApache, phalanx.ServiceHTTP:
		return "http"
	case phalanx.ServicePostfix, phalanx.ServiceDovecot:
		return "mail"
	}
	return "other"
}

// pathsKey names a source's state directory after what it reads (the
// same naming as `phalanx up` alone, so offsets carry over).
func pathsKey(parts []string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:6])
}
