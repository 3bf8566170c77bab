package member

import (
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics exports what the fold keeps — drills and their time-to-protect,
// rejections by reason, the applied position, decisions in force — as
// Prometheus metrics. It is a collector that reads the fold when scraped,
// so nothing is counted twice and the hot path does no metrics work. The
// full metrics set of issue 5 builds on this registry.
type metrics struct {
	m *Member

	drillTTP   *prometheus.Desc
	drillOK    *prometheus.Desc
	rejections *prometheus.Desc
	applied    *prometheus.Desc
	inForce    *prometheus.Desc
}

func newMetrics(m *Member) *metrics {
	return &metrics{
		m: m,
		drillTTP: prometheus.NewDesc("phalanx_drill_time_to_protect_seconds",
			"Time from a drill entering the ledger to each member confirming its decision in force, for the latest drill.",
			[]string{"member"}, nil),
		drillOK: prometheus.NewDesc("phalanx_drills_total",
			"Drills in the ledger (the fold keeps the most recent ones).", nil, nil),
		rejections: prometheus.NewDesc("phalanx_ledger_rejected_total",
			"Ledger envelopes this member's fold refused, by reason.", []string{"reason"}, nil),
		applied: prometheus.NewDesc("phalanx_ledger_applied_position",
			"The last ledger position this member applied.", nil, nil),
		inForce: prometheus.NewDesc("phalanx_decisions_in_force",
			"Decisions in this member's decision set.", nil, nil),
	}
}

func (c *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.drillTTP
	ch <- c.drillOK
	ch <- c.rejections
	ch <- c.applied
	ch <- c.inForce
}

func (c *metrics) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	drills := c.m.fold.Drills()
	rej := c.m.fold.Rejections()
	applied := c.m.fold.Applied()
	c.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.drillOK, prometheus.CounterValue, float64(len(drills)))
	if n := len(drills); n > 0 {
		for _, a := range drills[n-1].Acks {
			ch <- prometheus.MustNewConstMetric(c.drillTTP, prometheus.GaugeValue, a.Latency.Seconds(), string(a.Member))
		}
	}
	reasons := make([]string, 0, len(rej))
	for r := range rej {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		ch <- prometheus.MustNewConstMetric(c.rejections, prometheus.CounterValue, float64(rej[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(applied))
	ch <- prometheus.MustNewConstMetric(c.inForce, prometheus.GaugeValue, float64(c.m.ds.Len()))
}

// metricsHandler serves /metrics from a registry of this member's own: no
// package-level default registry.
func (m *Member) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics(m))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
