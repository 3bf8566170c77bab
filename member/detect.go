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
	"github.com/phalanx-defence/phalanx/parse/sshd"
	"github.com/phalanx-defence/phalanx/source"
	"github.com/phalanx-defence/phalanx/source/file"
)

// detect runs the member's own detection on its file sources, the way
// `phalanx up` does alone, and turns each local decision into a signed
// report: enforced here at once, proposed to the alliance.
//
// Crash safety: the file sources save as read only the lines this loop
// acknowledged, and a line is acknowledged once it went through parsing
// and detection and, if it led to a decision, once the report was in the
// ledger (the stream acknowledged it). A kill -9 therefore loses no line:
// what was in flight is read again on restart. Reading again is what
// makes this at-least-once rather than exactly-once, and its one visible
// effect — the same decision taken again from the same lines — is
// suppressed: detection waits until the fold has caught up with the
// ledger, and a decision the alliance already enforces on this member's
// own report is not reported twice (see alreadyReported).
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
	opts := m.detectOpts
	allow = append(allow, opts.Allowlist...)
	scenarios := opts.Scenarios
	if scenarios == nil {
		scenarios = detect.DefaultScenarios()
	}
	var mode sshd.Mode
	if opts.SSHDMode != "" {
		if mode, err = sshd.ParseMode(opts.SSHDMode); err != nil {
			return fmt.Errorf("member: detection: sshd mode: %w", err)
		}
	}
	engine, err := detect.New(detect.Config{
		Scenarios:        scenarios,
		Allowlist:        allow,
		BuiltinAllowlist: true,
		MaxSources:       opts.MaxSources,
		Escalation:       opts.Escalation,
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
		c.Ack = true
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
	budget := &reportBudget{}
	backlog := &reportBacklog{}
	// decide enforces d here at once and queues its report; the returned
	// channel says when the report is in the ledger (nil: nothing to
	// wait for).
	decide := func(ctx context.Context, d phalanx.Decision) <-chan published {
		d.Origin = phalanx.OriginLocal
		m.decideLocal(d)
		// The budget first: under a flood most decisions stop here,
		// without taking the member's lock that alreadyReported needs.
		if !budget.take(m.clock.Now(), budget.limit(m), 0) {
			budget.overLimit(m, d)
			return nil
		}
		if m.alreadyReported(d) {
			budget.refund()
			m.log.Info("decision already in the ledger on this member's report (its lines were read again after a restart): not reported twice",
				"value", d.ValueString(), "scenario", d.Scenario)
			return nil
		}
		m.log.Info("decision", "value", d.ValueString(), "type", d.Type, "scenario", d.Scenario,
			"duration", d.Duration.String(), "events", d.Events)
		done := make(chan published, 1)
		o := outgoing{kind: ledger.KindReport, done: done, body: ledger.Report{
			Value: d.Value, Type: d.Type, Scenario: d.Scenario, Duration: d.Duration,
			FirstSeen: d.FirstSeen.UTC(), LastSeen: d.LastSeen.UTC(), Events: d.Events, Evidence: d.Evidence,
		}}
		if !backlog.push(m.out, o) {
			backlog.dropped(m, d)
			return nil // enforced here; its lines count as read
		}
		return done
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
		p := ingest.New(parse.New(parse.Options{Type: typ, SSHDMode: mode, Rules: opts.Rules, Context: &logline.Context{}}), engine, emit)
		pipelines[hint] = p
		return p, nil
	}
	det := &m.stats.det
	det.mu.Lock()
	det.engine = engine
	det.mu.Unlock()
	m.awaitCatchUp(ctx)
	lines := make(chan source.Line, 4096)
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range sources {
		g.Go(func() error { return s.Run(ctx, lines) })
	}
	for _, s := range m.lineSources {
		g.Go(func() error { return s.Run(ctx, lines) })
	}
	g.Go(func() error {
		sightings := newSightings(maxSightingSources)
		tick := time.NewTicker(m.sightingEvery)
		defer tick.Stop()
		var acks ackQueue
		for {
			select {
			case <-ctx.Done():
				return nil
			case backlog.to(m.out) <- backlog.head():
				backlog.pop()
			case p := <-acks.head():
				if p.err != nil && ctx.Err() != nil {
					return nil // not in the ledger: its lines are read again next time
				}
				if p.err != nil {
					// Not a broker outage (the publisher retries those) but
					// a report that cannot be sealed: waiting would stop
					// every later acknowledgement for nothing.
					m.log.Error("member: a report could not be published; its lines count as read", "err", p.err)
				}
				acks.release(len(lines) == 0)
			case <-tick.C:
				for _, s := range sightings.flush() {
					// What this member already decided on was reported
					// in full; a sighting would count it twice.
					if _, ok := m.ds.Lookup(s.Source); ok {
						continue
					}
					// Sightings give way to reports: at most half the
					// charter's rate.
					if lim := budget.limit(m); !budget.take(m.clock.Now(), lim, lim/2) {
						break
					}
					// Sightings are approximate counts: with the outbox
					// full (the broker away), they are dropped, never
					// waited for.
					select {
					case m.out <- outgoing{kind: ledger.KindSighting, body: s}:
					default:
					}
				}
			case l := <-lines:
				det.mu.Lock()
				p, err := pipelineFor(l.Hint)
				if err != nil {
					det.mu.Unlock()
					return fmt.Errorf("member: source %s: %w", l.Origin, err)
				}
				ev, ok := p.SourceLine(l, m.clock)
				det.line(l.Origin, l.Truncated, ok, ev.Kind)
				det.mu.Unlock()
				acks.add(l)
				for _, d := range pending {
					if done := decide(ctx, d); done != nil {
						acks.wait(done)
					}
				}
				pending = pending[:0]
				if ctx.Err() != nil {
					return nil
				}
				acks.idle(len(lines) == 0)
				if ok && ev.Hostile() {
					sightings.add(ev.Source.Unmap(), sightingScenario(ev.Service), m.clock.Now())
				}
			}
		}
	})
	return g.Wait()
}

// ackBatch is how many processed lines are acknowledged at once while the
// channel stays busy; an idle channel acknowledges at once.
const ackBatch = 1024

// ackQueue holds the acknowledgements of processed lines until they may
// be handed back to the sources: at once, unless a decision taken on one
// of them (or on an earlier line) waits for its report to reach the
// ledger. Positions only ever move forward, so everything after such a
// line waits too; the queue is bounded by the reports in flight, which
// the publisher's outbox bounds.
type ackQueue struct {
	cur     source.Acks // acknowledgements after the last waiting report
	n       int         // lines in cur
	waiting []waitingAcks
}

type waitingAcks struct {
	done <-chan published
	acks source.Acks // released when done fires, before anything later
}

func (q *ackQueue) add(l source.Line) { q.cur.Add(l); q.n++ }

// wait holds everything added so far until done fires.
func (q *ackQueue) wait(done <-chan published) {
	q.waiting = append(q.waiting, waitingAcks{done: done, acks: q.cur.Take()})
	q.n = 0
}

// idle acknowledges what nothing waits for, when the consumer has caught
// up (empty) or a batch is full.
func (q *ackQueue) idle(empty bool) {
	if len(q.waiting) == 0 && (empty || q.n >= ackBatch) {
		q.cur.Flush()
		q.n = 0
	}
}

// head is the channel of the oldest waiting report (nil, never ready,
// when none waits).
func (q *ackQueue) head() <-chan published {
	if len(q.waiting) == 0 {
		return nil
	}
	return q.waiting[0].done
}

// release acknowledges the oldest waiting report's lines, once its done
// fired.
func (q *ackQueue) release(empty bool) {
	q.waiting[0].acks.Flush()
	q.waiting[0] = waitingAcks{}
	q.waiting = q.waiting[1:]
	q.idle(empty)
}

// reportBudget keeps this member's reports and sightings within the
// charter's rate (MaxReportsPerMinute over a sliding minute, as the fold
// counts them). What goes beyond it the fold refuses, and flags the
// member for; publishing it anyway would also slow local detection down
// to the broker's pace under a flood of distinct attackers, since each
// report waits its turn in the outbox. A decision over the budget is
// enforced here only.
type reportBudget struct {
	sent     []time.Time // within the last minute, oldest first; at most the charter's limit
	dropped  int         // over budget since the last warning
	lastWarn time.Time

	lim     int // the charter's limit, as last read
	limRead time.Time
}

// limit is the charter's MaxReportsPerMinute, read again at most once a
// second: reading it takes the member's lock, which a large decision set
// can keep busy (reconcile), and detection must not queue behind it for
// every decision of a flood.
func (b *reportBudget) limit(m *Member) int {
	if now := time.Now(); now.Sub(b.limRead) >= time.Second {
		b.lim, b.limRead = m.reportLimit(), now
	}
	return b.lim
}

// refund gives back the unit the last take spent.
func (b *reportBudget) refund() {
	if len(b.sent) > 0 {
		b.sent = b.sent[:len(b.sent)-1]
	}
}

// budgetMargin leaves room for clock differences between this member and
// the stream's timestamps, and for heartbeats and drill acks (which the
// fold does not count, but which share the outbox).
const budgetMargin = 0.9

// take spends one unit if fewer than limit·budgetMargin−reserve were
// spent in the minute before now.
func (b *reportBudget) take(now time.Time, limit, reserve int) bool {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(b.sent) && !b.sent[i].After(cut) {
		i++
	}
	b.sent = b.sent[i:]
	if len(b.sent) >= int(float64(limit)*budgetMargin)-reserve {
		return false
	}
	b.sent = append(b.sent, now)
	return true
}

// overLimit notes a decision enforced here but not reported, warning at
// most once a minute.
func (b *reportBudget) overLimit(m *Member, d phalanx.Decision) {
	b.dropped++
	if now := m.clock.Now(); now.Sub(b.lastWarn) >= time.Minute {
		m.log.Warn("member: more decisions than the charter lets this member report (max_reports_per_minute); enforced here only",
			"not_reported", b.dropped, "last", d.ValueString())
		b.dropped, b.lastWarn = 0, now
	}
}

// reportLimit is the charter's MaxReportsPerMinute.
func (m *Member) reportLimit() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fold == nil {
		return 0
	}
	return m.fold.Charter().Policy.MaxReportsPerMinute
}

// catchUpWait bounds how long detection waits for the fold to read the
// ledger as far as it went at start.
const catchUpWait = 10 * time.Second

// awaitCatchUp waits until the fold has applied the ledger up to its last
// entry at the time of the call, so that reports this member published
// before a crash are known before the lines behind them, read again, can
// decide the same thing again. It gives up (and detection starts anyway)
// after catchUpWait: an unreachable broker must not stop local detection.
func (m *Member) awaitCatchUp(ctx context.Context) {
	m.mu.Lock()
	bus := m.bus
	m.mu.Unlock()
	if bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	last, err := bus.LastSeq(ctx)
	if err != nil {
		m.log.Warn("member: detection starts before the ledger was read (a decision taken before a crash may be reported again)", "err", err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m.mu.Lock()
		applied := m.fold.Applied()
		m.mu.Unlock()
		if applied >= last {
			return
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				m.log.Warn("member: detection starts before the fold caught up with the ledger",
					"applied", applied, "last", last)
			}
			return
		case <-tick.C:
		}
	}
}

// alreadyReported says whether the alliance already enforces a decision on
// exactly d's value, reported by this member, at least as strong as d.
// Reporting d again would add nothing but a later expiry; what it usually
// means is that the lines behind d were read again after a crash (offsets
// are saved only for processed lines, so the last ones before a kill -9
// come again). An attacker who goes on while banned locally is still
// blocked; the decision expires as first reported.
func (m *Member) alreadyReported(d phalanx.Decision) bool {
	if !d.Value.IsSingleIP() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fold == nil {
		return false
	}
	fd, ok := m.fold.Lookup(d.Value.Addr(), m.clock.Now())
	return ok && fd.Value == d.Value && slices.Contains(fd.Reporters, m.id.ID) && fd.Type.Strength() >= d.Type.Strength()
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

// maxBacklog bounds the reports detection holds when the publisher's
// outbox is full: at the charter's default rate (600 a minute) that is
// about half an hour of a broker outage under a sustained attack.
const maxBacklog = 16384

// reportBacklog holds, in order, the reports the publisher's outbox had
// no room for, so that detection — and local enforcement of new attackers
// — never waits on an unreachable broker. Used by the detection goroutine
// only.
type reportBacklog struct {
	q        []outgoing
	lost     int
	lastWarn time.Time
}

// push hands o to out at once when nothing waits before it and out has
// room, else queues it; false when the backlog is full.
func (b *reportBacklog) push(out chan<- outgoing, o outgoing) bool {
	if len(b.q) == 0 {
		select {
		case out <- o:
			return true
		default:
		}
	}
	if len(b.q) >= maxBacklog {
		return false
	}
	b.q = append(b.q, o)
	return true
}

// to is out while reports wait, else nil (a select case never ready).
func (b *reportBacklog) to(out chan<- outgoing) chan<- outgoing {
	if len(b.q) == 0 {
		return nil
	}
	return out
}

// head is the oldest waiting report (zero when none waits: to is nil then).
func (b *reportBacklog) head() outgoing {
	if len(b.q) == 0 {
		return outgoing{}
	}
	return b.q[0]
}

func (b *reportBacklog) pop() {
	b.q[0] = outgoing{}
	b.q = b.q[1:]
	if len(b.q) == 0 {
		b.q = nil // let the grown array go
	}
}

// dropped logs, at most once a minute, the reports lost to a full backlog:
// the decisions are enforced here, the alliance does not hear of them.
func (b *reportBacklog) dropped(m *Member, d phalanx.Decision) {
	b.lost++
	if now := m.clock.Now(); now.Sub(b.lastWarn) >= time.Minute {
		b.lastWarn = now
		m.log.Warn("member: reports waiting for the broker exceed the backlog; decisions are enforced here only",
			"backlog", maxBacklog, "lost_reports", b.lost, "last", d.ValueString())
	}
}
