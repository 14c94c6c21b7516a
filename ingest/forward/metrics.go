package forward

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the status of a set of forwarders as Prometheus
// metrics, labelled by target. It reads the forwarders' counters at scrape
// time, so the figures are never stale.
type Collector struct {
	fws []*Forwarder

	written, deadLettered, retries    *prometheus.Desc
	backlogPoints, backlogAge, lastOK *prometheus.Desc
	authFailing, draining, cursor     *prometheus.Desc
}

// NewCollector returns a collector for fws.
func NewCollector(fws ...*Forwarder) *Collector {
	l := []string{"target"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shelterwatch_forward_"+name, help, labels, nil)
	}
	return &Collector{
		fws:           fws,
		written:       d("points_written_total", "Readings InfluxDB confirmed.", l...),
		deadLettered:  d("dead_lettered_total", "Readings InfluxDB refused, kept in the dead-letter store.", l...),
		retries:       d("retries_total", "Failed writes that were retried, by reason.", "target", "reason"),
		backlogPoints: d("backlog_points", "Readings stored but not yet confirmed by InfluxDB.", l...),
		backlogAge:    d("backlog_seconds", "How long the oldest unconfirmed reading has waited (0 when none).", l...),
		lastOK:        d("last_success_timestamp_seconds", "Unix time of the last confirmed write (0: none since start).", l...),
		authFailing:   d("auth_failing", "1 while InfluxDB refuses the target's credentials.", l...),
		draining:      d("draining", "1 while a backlog drains in its own lane.", l...),
		cursor:        d("cursor", "Log sequence number up to which every reading is confirmed.", l...),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.written, c.deadLettered, c.retries, c.backlogPoints, c.backlogAge, c.lastOK, c.authFailing, c.draining, c.cursor} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, f := range c.fws {
		s := f.Status()
		n := s.Target
		ch <- prometheus.MustNewConstMetric(c.written, prometheus.CounterValue, float64(s.Written), n)
		ch <- prometheus.MustNewConstMetric(c.deadLettered, prometheus.CounterValue, float64(s.DeadLettered), n)
		for _, r := range retryReasons {
			ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(f.retries[r].Load()), n, r)
		}
		ch <- prometheus.MustNewConstMetric(c.backlogPoints, prometheus.GaugeValue, float64(s.BacklogPoints), n)
		ch <- prometheus.MustNewConstMetric(c.backlogAge, prometheus.GaugeValue, s.BacklogAge.Seconds(), n)
		var last float64
		if !s.LastSuccess.IsZero() {
			last = float64(s.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, last, n)
		ch <- prometheus.MustNewConstMetric(c.authFailing, prometheus.GaugeValue, b(s.AuthFailing), n)
		ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, b(s.Draining), n)
		ch <- prometheus.MustNewConstMetric(c.cursor, prometheus.GaugeValue, float64(s.Cursor), n)
	}
}
