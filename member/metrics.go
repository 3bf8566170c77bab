package member

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ledger"
)

// Bounds on label values that come from what the member reads: a log line
// chooses its event kind (custom rules) and a glob chooses file names.
// Beyond them new values are counted under "other".
const (
	maxMetricKinds   = 64
	maxMetricSources = 256
	metricOther      = "other"
)

// stats are the counters the member keeps for /metrics that no other
// package keeps already. Everything else is read at scrape time from where
// it lives (the fold, the decision set, the detection engine, the bus).
type stats struct {
	mu       sync.Mutex
	sent     map[ledger.Kind]uint64 // envelopes this member published, by kind
	received map[ledger.Kind]uint64 // envelopes its fold accepted, by kind

	// ttp is the time-to-protect of every drill ack folded while running;
	// enforce is how long an enforcer took to apply a change.
	ttp     prometheus.Histogram
	enforce *prometheus.HistogramVec

	det detStats
}

// detStats is the detection loop's state that /metrics reads. The loop
// holds mu while it feeds one line (never while it publishes), so that a
// scrape reads the engine's counters consistently.
type detStats struct {
	mu      sync.Mutex
	engine  *detect.Engine // nil until detection starts, if it does
	events  map[phalanx.EventKind]uint64
	sources map[string]*sourceCount
}

type sourceCount struct{ read, parsed, truncated uint64 }

func newStats() *stats {
	return &stats{
		sent:     map[ledger.Kind]uint64{},
		received: map[ledger.Kind]uint64{},
		ttp: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "phalanx_time_to_protect_seconds",
			Help:    "Time from a drill entering the ledger to a member confirming its decision in force, for every drill ack this member folded.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		enforce: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phalanx_enforce_apply_seconds",
			Help:    "Time an enforcer took to apply a change of the decision set.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms … 16 s
		}, []string{"enforcer"}),
		det: detStats{
			events:  map[phalanx.EventKind]uint64{},
			sources: map[string]*sourceCount{},
		},
	}
}

func (s *stats) countSent(k ledger.Kind) {
	s.mu.Lock()
	s.sent[k]++
	s.mu.Unlock()
}

func (s *stats) countReceived(k ledger.Kind) {
	s.mu.Lock()
	s.received[k]++
	s.mu.Unlock()
}

// line counts one line of origin; ok says a parser recognised it as an
// event of kind. Call with d.mu held.
func (d *detStats) line(origin string, truncated, ok bool, kind phalanx.EventKind) {
	sc, found := d.sources[origin]
	if !found {
		if len(d.sources) >= maxMetricSources {
			origin = metricOther
			sc = d.sources[origin]
		}
		if sc == nil {
			sc = &sourceCount{}
			d.sources[origin] = sc
		}
	}
	sc.read++
	if truncated {
		sc.truncated++
	}
	if !ok {
		return
	}
	sc.parsed++
	if _, found := d.events[kind]; !found && len(d.events) >= maxMetricKinds {
		kind = metricOther
	}
	d.events[kind]++
}

// ObserveEnforce records that enforcer (e.g. "nft", "http") took d to apply
// a change of the decision set, into phalanx_enforce_apply_seconds. An
// enforcer that runs beside the member (AddRunner) calls it after each
// apply; safe for concurrent use. `phalanx up --enforce nft` feeds it from
// nft.Config.Observe: from the decision-set write to the netlink flush.
func (m *Member) ObserveEnforce(enforcer string, d time.Duration) {
	m.stats.enforce.WithLabelValues(enforcer).Observe(d.Seconds())
}

// ObserveSetWrites feeds phalanx_enforce_apply_seconds{enforcer} for an
// enforcer that reads the member's decision set directly and so has no
// apply step of its own — the in-process HTTP guard (`up --enforce
// http`): the time from the start of each decision-set write (its
// lock-free snapshot swap included) to a subscriber receiving the change.
// The guard sees the change when the swap is done, just before that, so
// this is an upper bound. Runs until ctx ends; start it with AddRunner.
func (m *Member) ObserveSetWrites(ctx context.Context, enforcer string) error {
	ch, cancel := m.ds.Subscribe(4096)
	defer cancel()
	h := m.stats.enforce.WithLabelValues(enforcer)
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-ch:
			if !ok {
				return nil
			}
			if !c.At.IsZero() {
				h.Observe(time.Since(c.At).Seconds())
			}
		}
	}
}

// metrics exports the member's state as Prometheus metrics. It is a
// collector that reads counters where they live when scraped, so nothing
// is counted twice and the hot path does little metrics work.
type metrics struct {
	m *Member

	drillTTP   *prometheus.Desc
	drillOK    *prometheus.Desc
	rejections *prometheus.Desc
	applied    *prometheus.Desc
	inForce    *prometheus.Desc
	sent       *prometheus.Desc
	received   *prometheus.Desc
	lag        *prometheus.Desc
	lagMax     *prometheus.Desc
	connected  *prometheus.Desc

	linesRead      *prometheus.Desc
	linesParsed    *prometheus.Desc
	linesTruncated *prometheus.Desc
	events         *prometheus.Desc
	allowlisted    *prometheus.Desc
	overflows      *prometheus.Desc
	rangeDecisions *prometheus.Desc
	tracked        *prometheus.Desc
	trackedMax     *prometheus.Desc
	evicted        *prometheus.Desc

	ownEvicted *prometheus.Desc
}

func newMetrics(m *Member) *metrics {
	d := prometheus.NewDesc
	return &metrics{
		m: m,
		drillTTP: d("phalanx_drill_time_to_protect_seconds",
			"Time from a drill entering the ledger to each member confirming its decision in force, for the latest drill.",
			[]string{"member"}, nil),
		drillOK: d("phalanx_drills_total",
			"Drills in the ledger (the fold keeps the most recent ones).", nil, nil),
		rejections: d("phalanx_ledger_rejected_total",
			"Ledger envelopes this member's fold refused, by reason.", []string{"reason"}, nil),
		applied: d("phalanx_ledger_applied_position",
			"The last ledger position this member applied.", nil, nil),
		inForce: d("phalanx_decisions_in_force",
			"Decisions in this member's decision set, by type and origin.", []string{"type", "origin"}, nil),
		sent: d("phalanx_ledger_sent_total",
			"Envelopes this member published to the ledger since it started, by kind.", []string{"kind"}, nil),
		received: d("phalanx_ledger_received_total",
			"Ledger envelopes this member's fold accepted since it started, by kind.", []string{"kind"}, nil),
		lag: d("phalanx_ledger_lag_envelopes",
			"This member's applied position minus the position each member last reported in a heartbeat.", []string{"member"}, nil),
		lagMax: d("phalanx_ledger_lag_max_envelopes",
			"The largest phalanx_ledger_lag_envelopes over the alliance's members.", nil, nil),
		connected: d("phalanx_nats_connected",
			"1 while the connection to NATS is up, else 0.", nil, nil),

		linesRead: d("phalanx_source_lines_read_total",
			"Lines read, by source.", []string{"source"}, nil),
		linesParsed: d("phalanx_source_lines_parsed_total",
			"Lines a parser recognised as an event, by source.", []string{"source"}, nil),
		linesTruncated: d("phalanx_source_lines_truncated_total",
			"Lines cut to the maximum line length, by source.", []string{"source"}, nil),
		events: d("phalanx_events_total",
			"Events parsed, by kind.", []string{"kind"}, nil),
		allowlisted: d("phalanx_events_allowlisted_total",
			"Events a scenario would have counted, from an allowlisted source.", nil, nil),
		overflows: d("phalanx_scenario_overflows_total",
			"Local decisions taken, by scenario (a bucket overflowed).", []string{"scenario"}, nil),
		rangeDecisions: d("phalanx_range_decisions_total",
			"Local decisions against a range rather than an address.", nil, nil),
		tracked: d("phalanx_detection_states_tracked",
			"Per-source, per-scenario detection states held now.", nil, nil),
		trackedMax: d("phalanx_detection_states_max",
			"The memory bound on detection states.", nil, nil),
		evicted: d("phalanx_detection_states_evicted_total",
			"Detection states evicted to stay under the memory bound.", nil, nil),

		ownEvicted: d("phalanx_own_decisions_evicted_total",
			"This member's own decisions evicted to stay under their bound, the one expiring first each time.", nil, nil),
	}
}

func (c *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.drillTTP, c.drillOK, c.rejections, c.applied, c.inForce, c.sent, c.received, c.lag, c.lagMax,
		c.connected, c.linesRead, c.linesParsed, c.linesTruncated, c.events, c.allowlisted, c.overflows,
		c.rangeDecisions, c.tracked, c.trackedMax, c.evicted, c.ownEvicted,
	} {
		ch <- d
	}
}

func (c *metrics) Collect(ch chan<- prometheus.Metric) {
	c.collectLedger(ch)
	c.collectDetection(ch)
	ch <- prometheus.MustNewConstMetric(c.ownEvicted, prometheus.CounterValue, float64(c.m.own.evicted.Load()))
}

func (c *metrics) collectLedger(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	m := c.m
	m.mu.Lock()
	if m.fold == nil {
		m.mu.Unlock()
		return
	}
	drills := m.fold.Drills()
	rej := m.fold.Rejections()
	applied := m.fold.Applied()
	members := m.fold.Members()
	connected := m.bus != nil && m.bus.Connected()
	m.mu.Unlock()

	counter(c.drillOK, float64(len(drills)))
	if n := len(drills); n > 0 {
		for _, a := range drills[n-1].Acks {
			gauge(c.drillTTP, a.Latency.Seconds(), string(a.Member))
		}
	}
	for _, r := range sortedKeys(rej) {
		counter(c.rejections, float64(rej[r]), r)
	}
	gauge(c.applied, float64(applied))
	var maxLag uint64
	for _, ms := range members {
		if ms.Expelled {
			continue
		}
		var lag uint64
		if applied > ms.Applied {
			lag = applied - ms.Applied
		}
		maxLag = max(maxLag, lag)
		gauge(c.lag, float64(lag), string(ms.ID))
	}
	gauge(c.lagMax, float64(maxLag))
	gauge(c.connected, map[bool]float64{true: 1}[connected])

	type typeOrigin struct{ typ, origin string }
	inForce := map[typeOrigin]int{}
	for _, d := range m.ds.List() {
		inForce[typeOrigin{string(d.Type), string(d.Origin)}]++
	}
	for k, n := range inForce {
		gauge(c.inForce, float64(n), k.typ, k.origin)
	}

	m.stats.mu.Lock()
	for k, n := range m.stats.sent {
		counter(c.sent, float64(n), string(k))
	}
	for k, n := range m.stats.received {
		counter(c.received, float64(n), string(k))
	}
	m.stats.mu.Unlock()
}

func (c *metrics) collectDetection(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	d := &c.m.stats.det
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.engine == nil {
		return // no sources: the member does no detection of its own
	}
	for origin, sc := range d.sources {
		counter(c.linesRead, float64(sc.read), origin)
		counter(c.linesParsed, float64(sc.parsed), origin)
		counter(c.linesTruncated, float64(sc.truncated), origin)
	}
	for k, n := range d.events {
		counter(c.events, float64(n), string(k))
	}
	st := d.engine.Stats()
	counter(c.allowlisted, float64(st.Allowlisted))
	for s, n := range st.Decisions {
		counter(c.overflows, float64(n), s)
	}
	counter(c.rangeDecisions, float64(st.RangeDecisions))
	gauge(c.tracked, float64(st.Buckets))
	gauge(c.trackedMax, float64(st.MaxBuckets))
	counter(c.evicted, float64(st.Evictions))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricsHandler serves /metrics from a registry of this member's own: no
// package-level default registry.
func (m *Member) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics(m), m.stats.ttp, m.stats.enforce)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// observeDrillAck records the time-to-protect of env, a drill ack the
// fold just accepted. Call with m.mu held.
func (m *Member) observeDrillAck(env ledger.Envelope) {
	a, err := ledger.DecodeBody[ledger.DrillAck](env)
	if err != nil {
		return
	}
	for _, d := range m.fold.Drills() {
		if d.ID != a.DrillID {
			continue
		}
		for _, k := range d.Acks {
			if k.Member == env.Author {
				m.stats.ttp.Observe(k.Latency.Seconds())
			}
		}
		return
	}
}
