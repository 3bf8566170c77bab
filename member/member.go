// Package member runs one alliance member: its data directory (identity,
// genesis charter, config, own chain position, fold snapshot), founding an
// alliance, inviting and joining, and the run loop that connects to the
// ledger, folds it into the member's decision set, publishes the member's
// own detections as signed reports, and serves a local HTTP API that the
// CLI talks to.
package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
	"github.com/phalanx-defence/phalanx/source/file"
)

// Intervals of the run loop.
const (
	heartbeatEvery = 10 * time.Second
	snapshotEvery  = 30 * time.Second
	// reconcileEvery re-derives the mirrored set from the fold, so that a
	// ceasefire's end by expiry restores the decisions it suspended.
	reconcileEvery = 5 * time.Second
	publishTimeout = 5 * time.Second
	outboxSize     = 1024
	sightingEvery  = 5 * time.Second
	// reportLinger is how long the publisher waits for more reports to
	// seal with one in a burst (a report envelope sealed less than
	// burstGap before): a few milliseconds of time to protect buy one
	// signature, and one envelope to verify at every member, for tens of
	// reports. The first report after a quiet spell leaves at once.
	reportLinger = 20 * time.Millisecond
	burstGap     = time.Second
)

// Member is one alliance member, opened from its data directory.
type Member struct {
	dir      string
	log      *slog.Logger
	cfg      config
	id       ledger.Identity
	genesis  ledger.Envelope
	alliance string
	token    string
	roToken  string // api.readonly: GET routes only
	clock    phalanx.Clock
	ds       *decisions.Set
	sources  []file.Config
	// lineSources and detectOpts extend detection beyond member.yaml
	// (detection.go).
	lineSources []LineSource
	detectOpts  DetectOptions
	api         string
	// sightingEvery is how often sub-threshold events are published as
	// sightings; tests shorten it.
	sightingEvery time.Duration

	chain ledger.Chain // owned by the publisher goroutine once Run starts
	out   chan outgoing

	mu        sync.Mutex // guards fold, bus
	fold      *alliance.Fold
	bus       *natsbus.Bus
	restored  uint64 // the snapshot position Run restored from; 0 if none
	runners   []func(context.Context) error
	bouncers  http.Handler // the CrowdSec-compatible bouncer API, if mounted
	mounts    map[string]http.Handler
	ready     chan struct{}
	readyOnce sync.Once

	stats *stats // counters for /metrics

	drillMu sync.Mutex
	drills  map[string]chan struct{} // drill ID → signalled on each ack of it

	imp imported // decisions from fail2ban or CrowdSec (imported.go)
	own own      // this member's own detections (own.go)

	// publishErr is the publisher's last failed attempt while it retries
	// (nil once one succeeds), for the API's answer on a timeout.
	publishErr atomic.Pointer[error]
}

type outgoing struct {
	kind ledger.Kind
	body any
	done chan published // nil: nobody waits
	// rotate, with a KindKeyRotation, is the identity to sign with once
	// the rotation is in the ledger (see admin.go).
	rotate *ledger.Identity
	// paced: the pace already counted it (a report put back in line when
	// its batch was too large for one envelope).
	paced bool
}

// published is what publishing one envelope gave.
type published struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
	err error
}

// Open reads the member in dir. It does not connect to anything: Run does.
func Open(dir string, log *slog.Logger) (*Member, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	cfg, err := loadConfig(abs)
	if err != nil {
		return nil, err
	}
	id, err := ledger.LoadIdentity(filepath.Join(abs, fileIdentity))
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	genesis, err := loadGenesis(abs)
	if err != nil {
		return nil, err
	}
	if genesis.ID() != cfg.Alliance {
		return nil, fmt.Errorf("member: %s is not the charter of alliance %s named in %s", fileGenesis, cfg.Alliance, fileConfig)
	}
	chain, err := loadChain(abs)
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(abs, fileAPIToken))
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	roTok, err := readOnlyToken(abs)
	if err != nil {
		return nil, err
	}
	if cfg.API == "" {
		cfg.API = DefaultAPIListen
	}
	clock := phalanx.SystemClock{}
	return &Member{
		dir: abs, log: log.With("member", id.ID), cfg: cfg, id: id, genesis: genesis,
		alliance: cfg.Alliance, token: strings.TrimSpace(string(tok)), roToken: roTok, clock: clock,
		ds: decisions.New(clock), sources: cfg.Sources, api: cfg.API, chain: chain,
		out: make(chan outgoing, outboxSize), ready: make(chan struct{}),
		drills: make(map[string]chan struct{}), sightingEvery: sightingEvery,
		stats: newStats(),
	}, nil
}

// AddSource follows one more set of files (`phalanx up --source`), in
// addition to member.yaml's sources. Call before Run.
func (m *Member) AddSource(c file.Config) { m.sources = append(m.sources, c) }

// AddRunner runs f alongside the member once its fold is restored (so
// that Never and Decisions are meaningful), until the member stops: how
// enforcers (nftables, the HTTP guard) attach to it. An error from f stops
// the member. Call before Run.
func (m *Member) AddRunner(f func(ctx context.Context) error) { m.runners = append(m.runners, f) }

// SetAPIListen overrides member.yaml's API address (`phalanx up --api`).
// Call before Run.
func (m *Member) SetAPIListen(addr string) { m.api = addr }

// Decisions is the member's decision set: alliance decisions (not
// suspended by a ceasefire) and its own local detections.
func (m *Member) Decisions() *decisions.Set { return m.ds }

// ID is the member's ID.
func (m *Member) ID() ledger.MemberID { return m.id.ID }

func (m *Member) natsConfig() natsbus.Config {
	c := m.cfg.NATS
	if c.Embedded && c.StoreDir != "" && !filepath.IsAbs(c.StoreDir) {
		c.StoreDir = filepath.Join(m.dir, c.StoreDir)
	}
	return c
}

// Run runs the member until ctx ends.
func (m *Member) Run(ctx context.Context) error {
	bus, err := natsbus.Open(ctx, m.natsConfig(), m.alliance, m.log)
	if err != nil {
		return fmt.Errorf("member: ledger: %w", err)
	}
	defer bus.Close()
	m.mu.Lock()
	m.bus = bus
	m.mu.Unlock()

	if m.genesis.Author == m.id.ID {
		// The founder publishes the charter into an empty ledger; the
		// stream de-duplicates by envelope ID should two starts race.
		last, err := bus.LastSeq(ctx)
		if err != nil {
			return fmt.Errorf("member: ledger: %w", err)
		}
		if last == 0 {
			if _, _, err := bus.Publish(ctx, m.genesis.ID(), m.genesis.Encode()); err != nil {
				return fmt.Errorf("member: publish the charter: %w", err)
			}
		}
	}
	if err := m.finishRotation(ctx, bus); err != nil {
		return err
	}
	if err := m.restore(); err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.ds.Run(ctx) })
	g.Go(func() error { return m.publisher(ctx, bus) })
	g.Go(func() error {
		m.mu.Lock()
		from := m.fold.Applied() + 1
		m.mu.Unlock()
		return bus.Consume(ctx, from, func(msg natsbus.Message) error { return m.apply(ctx, msg) })
	})
	g.Go(func() error { return m.housekeeping(ctx) })
	g.Go(func() error { return m.serveAPI(ctx) })
	if len(m.sources)+len(m.lineSources) > 0 {
		g.Go(func() error { return m.detect(ctx) })
	}
	for _, f := range m.runners {
		g.Go(func() error { return f(ctx) })
	}
	m.log.Info("member up", "alliance", m.alliance, "nats", bus.ClientURL(), "sources", len(m.sources)+len(m.lineSources))
	err = g.Wait()
	if serr := m.saveSnapshot(); serr != nil {
		m.log.Warn("member: snapshot on exit", "err", serr)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	m.log.Info("member stopped", "decisions_in_force", m.ds.Len())
	return err
}

// restore starts the fold from fold.snap when there is one (catch-up then
// reads only what came after it), else from the genesis, and fills the
// decision set with what the fold holds.
func (m *Member) restore() error {
	opts := alliance.Options{Self: m.id.ID, Log: m.log}
	var fold *alliance.Fold
	snap, err := os.ReadFile(filepath.Join(m.dir, fileSnapshot))
	switch {
	case err == nil:
		fold, err = alliance.Restore(m.genesis, snap, opts)
		if err != nil {
			// A snapshot is only a shortcut: the ledger is the truth.
			m.log.Warn("member: snapshot unusable, folding the ledger from the start", "err", err)
			fold = nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("member: %w", err)
	}
	if fold == nil {
		if fold, err = alliance.New(m.genesis, opts); err != nil {
			return fmt.Errorf("member: %w", err)
		}
	} else {
		m.restored = fold.Applied()
		m.log.Info("member: restored from snapshot", "applied", m.restored)
	}
	m.mu.Lock()
	m.fold = fold
	m.mu.Unlock()
	if err := m.loadImported(); err != nil {
		return err
	}
	m.reconcile()
	return nil
}

// apply folds one ledger message and mirrors what changed.
func (m *Member) apply(ctx context.Context, msg natsbus.Message) error {
	rec, err := ledger.DecodeReceived(msg.Data)
	if err != nil {
		// Not even an envelope: nobody signed it, so there is nothing to
		// fold; a broker or a non-member put it there.
		m.log.Warn("ledger: undecodable message skipped", "seq", msg.Seq, "err", err)
		return nil
	}
	env := rec.Envelope()
	now := m.clock.Now()
	m.mu.Lock()
	out := m.fold.ApplyReceived(rec, msg.Seq, msg.Time)
	for _, c := range out.Changes {
		switch c.Op {
		case alliance.ChangeAdd:
			if !m.fold.Suspended(c.Decision.Decision, now) {
				m.ds.Add(c.Decision.Decision)
			}
		case alliance.ChangeLift:
			m.ds.Delete(c.Decision.Value)
		case alliance.ChangeExpire:
			m.ds.Delete(c.Decision.Value)
			// This member's own detection of the value may last longer
			// than the alliance's decision did.
			m.restoreOwn(c.Decision.Value, now)
		}
	}
	if out.Accepted && env.Kind == ledger.KindDrillAck {
		m.observeDrillAck(env)
	}
	m.mu.Unlock()
	if !out.Accepted {
		// A flooding member's envelopes are refused by the thousand: the
		// fold logs the flag once and /metrics counts them, so one log
		// line each would only let a liar fill the journal.
		if out.Reason != alliance.ReasonRateLimit {
			m.log.Warn("ledger: envelope rejected", "seq", msg.Seq, "kind", env.Kind, "author", env.Author, "reason", out.Reason)
		}
		return nil
	}
	m.stats.countReceived(env.Kind)
	switch env.Kind {
	case ledger.KindLift:
		m.liftOwn(env)
		m.liftImported(env)
	case ledger.KindCeasefire, ledger.KindCeasefireEnd:
		m.reconcile()
		if c, err := ledger.DecodeBody[ledger.Ceasefire](env); env.Kind == ledger.KindCeasefire && err == nil {
			// A ceasefire ends by itself: enforcement comes back at its
			// end rather than at the next periodic reconcile, seconds later.
			if d := c.Until.Sub(m.clock.Now()); d > 0 {
				time.AfterFunc(d+time.Millisecond, m.reconcile)
			}
		}
	case ledger.KindDrill:
		d, err := ledger.DecodeBody[ledger.Drill](env)
		if err != nil {
			return nil
		}
		// Acknowledge only what is really in force here: the drill
		// measures enforcement, not receipt.
		if _, ok := m.ds.Lookup(d.Value); ok {
			m.send(ctx, outgoing{kind: ledger.KindDrillAck, body: ledger.DrillAck{DrillID: d.ID, InForceAt: m.clock.Now().UTC()}})
		}
	case ledger.KindDrillAck:
		a, err := ledger.DecodeBody[ledger.DrillAck](env)
		if err != nil {
			return nil
		}
		m.drillMu.Lock()
		if ch, ok := m.drills[a.DrillID]; ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		m.drillMu.Unlock()
	}
	return nil
}

// send queues an envelope for the publisher; it blocks while the outbox
// is full (backpressure on detection rather than unbounded memory).
func (m *Member) send(ctx context.Context, o outgoing) bool {
	select {
	case m.out <- o:
		return true
	case <-ctx.Done():
		return false
	}
}

// publish seals and publishes one envelope and waits for the stream's
// acknowledgement.
func (m *Member) publish(ctx context.Context, kind ledger.Kind, body any) (published, error) {
	return m.publishOutgoing(ctx, outgoing{kind: kind, body: body})
}

func (m *Member) publishOutgoing(ctx context.Context, o outgoing) (published, error) {
	kind := o.kind
	o.done = make(chan published, 1)
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if !m.send(ctx, o) {
		return published{}, fmt.Errorf("member: publish %s: %w", kind, ctx.Err())
	}
	select {
	case p := <-o.done:
		return p, p.err
	case <-ctx.Done():
		if e := m.publishErr.Load(); e != nil {
			// The broker answers but refuses (its store full, say): say
			// what it said rather than suggest it is unreachable.
			return published{}, fmt.Errorf("member: publish %s: %w (the broker keeps refusing: %v)", kind, ctx.Err(), *e)
		}
		return published{}, fmt.Errorf("member: publish %s: %w (is the NATS hub reachable?)", kind, ctx.Err())
	}
}

// publisher is the only goroutine that seals: the member's chain (Seq,
// Prev) must advance one envelope at a time.
func (m *Member) publisher(ctx context.Context, bus *natsbus.Bus) error {
	if !m.resyncChain(ctx, bus) {
		return nil
	}
	chainErr := false
	var budget reportBudget
	var held []outgoing       // taken from the outbox, not sealed yet: the next in line
	var lastReports time.Time // when the last report envelope was sealed
	for {
		var o outgoing
		if len(held) > 0 {
			o, held = held[0], held[1:]
		} else {
			select {
			case <-ctx.Done():
				return nil
			case o = <-m.out:
			}
		}
		if !o.paced && !m.pace(ctx, &budget, o.kind) {
			return nil
		}
		batch := []outgoing{o}
		if o.kind == ledger.KindReport {
			var until time.Time
			if now := m.clock.Now(); now.Sub(lastReports) < burstGap {
				until = now.Add(reportLinger)
			}
			batch, held = m.gatherReports(ctx, batch, held, &budget, until)
			lastReports = m.clock.Now()
		}
		kind, body := batchBody(batch)
		before := m.chain
		env, err := ledger.Seal(m.id, &m.chain, m.alliance, kind, body, m.clock.Now().UTC())
		for errors.Is(err, ledger.ErrTooLarge) && len(batch) > 1 {
			// Too many long reports for one envelope: the second half
			// goes first in line for the next one (already paced).
			half := len(batch) / 2
			back := slices.Clone(batch[half:])
			for i := range back {
				back[i].paced = true
			}
			held = append(back, held...)
			batch = batch[:half]
			kind, body = batchBody(batch)
			env, err = ledger.Seal(m.id, &m.chain, m.alliance, kind, body, m.clock.Now().UTC())
		}
		if err == nil && o.rotate != nil {
			// The new key is on disk before the envelope announcing it
			// leaves: a crash in between is finished at the next start.
			if err = m.stageRotation(*o.rotate, env); err != nil {
				m.chain = before
			}
		}
		if err != nil {
			for _, o := range batch {
				if o.done != nil {
					o.done <- published{err: fmt.Errorf("member: seal %s: %w", kind, err)}
				}
			}
			continue
		}
		// The chain position is saved before the envelope leaves: a crash
		// after publishing must not make the next start reuse its Seq.
		// A failed save (a full disk) does not stop publishing: the next
		// start resynchronises the chain from the ledger (resyncChain).
		if err := saveChain(m.dir, m.chain); err != nil && !chainErr {
			chainErr = true
			m.log.Error("member: cannot save the chain position; publishing goes on, and a restart takes it from the ledger. Free space in the data directory", "dir", m.dir, "err", err)
		} else if err == nil && chainErr {
			chainErr = false
			m.log.Info("member: chain position saved again", "dir", m.dir)
		}
		p := published{ID: env.ID()}
		data := env.Encode()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			p.Seq, _, err = bus.Publish(ctx, p.ID, data)
			if err == nil || ctx.Err() != nil {
				break
			}
			// The same ID is retried, so a publish that did land is not
			// appended twice: the stream de-duplicates by it.
			m.log.Warn("ledger: publish failed, retrying", "kind", kind, "err", err)
			m.publishErr.Store(&err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if err != nil {
			p.err = fmt.Errorf("member: publish %s: %w", kind, err)
		} else {
			m.publishErr.Store(nil)
			m.stats.countSent(kind)
			if o.rotate != nil {
				// Everything sealed from now on follows the rotation in
				// the ledger, so it must carry the new key's signature.
				m.id.Public, m.id.Private = o.rotate.Public, o.rotate.Private
				if err := m.commitRotation(); err != nil {
					m.log.Error("member: key rotated in the ledger but not saved; the next start finishes it", "err", err)
				}
			}
		}
		for _, o := range batch {
			if o.done != nil {
				o.done <- p
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// gatherReports adds to batch the reports queued right behind it (in held,
// then in the outbox) that the pace lets go now, up to ledger.MaxReports:
// a burst of detections leaves as one envelope, one signature for all,
// instead of one envelope each. It waits for more until until (zero: it
// takes only what is queued), and stops at the first envelope of another
// kind, so the outbox's order is kept.
func (m *Member) gatherReports(ctx context.Context, batch, held []outgoing, b *reportBudget, until time.Time) ([]outgoing, []outgoing) {
	limit := m.reportLimit()
	var timeout <-chan time.Time
	if d := until.Sub(m.clock.Now()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for len(batch) < ledger.MaxReports {
		if len(held) == 0 {
			select {
			case o := <-m.out:
				held = append(held, o)
			default:
				if timeout == nil {
					return batch, held
				}
				select {
				case o := <-m.out:
					held = append(held, o)
				case <-timeout:
					return batch, held
				case <-ctx.Done():
					return batch, held
				}
			}
		}
		if held[0].kind != ledger.KindReport || !held[0].paced && !b.take(m.clock.Now(), limit, 0) {
			return batch, held
		}
		batch = append(batch, held[0])
		held = held[1:]
	}
	return batch, held
}

// batchBody is what a batch is sealed as: one outgoing as itself, several
// reports as one KindReports.
func batchBody(batch []outgoing) (ledger.Kind, any) {
	if len(batch) == 1 {
		return batch[0].kind, batch[0].body
	}
	rs := make([]ledger.Report, len(batch))
	for i, o := range batch {
		rs[i] = o.body.(ledger.Report)
	}
	return ledger.KindReports, ledger.Reports{Reports: rs}
}
