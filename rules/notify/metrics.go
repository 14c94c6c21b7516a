package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Delivery outcomes counted in shelterwatch_notify_deliveries_total.
const (
	outcomeDelivered = "delivered" // sent
	outcomeRetry     = "retry"     // an attempt failed; it will be tried again
	outcomeFailed    = "failed"    // refused for good by the receiver
	outcomeExpired   = "expired"   // max_age or max_attempts reached
	outcomeDropped   = "dropped"   // its channel is no longer configured
)

type metrics struct {
	deliveries *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	latency    *prometheus.HistogramVec
	enqueue    prometheus.Histogram
}

func newMetrics(channels []string) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_notify_deliveries_total",
			Help: "Delivery attempts by channel and outcome (delivered, retry, failed, expired, dropped).",
		}, []string{"channel", "outcome"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shelterwatch_notify_queue_depth",
			Help: "Deliveries not yet delivered or failed, by channel and alarm severity.",
		}, []string{"channel", "severity"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shelterwatch_notify_delivery_latency_seconds",
			Help: "Time from Enqueue to a successful delivery, by channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60,
				300, 900, 3600},
		}, []string{"channel"}),
		enqueue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shelterwatch_notify_enqueue_seconds",
			Help:    "Time Enqueue takes to persist an event's deliveries (fsync included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	// Export zeros for every series a dashboard expects to see.
	for _, c := range channels {
		for _, o := range []string{outcomeDelivered, outcomeRetry, outcomeFailed, outcomeExpired} {
			m.deliveries.WithLabelValues(c, o)
		}
		for _, s := range []alarm.Severity{alarm.SeverityInfo, alarm.SeverityTrouble, alarm.SeverityWarning,
			alarm.SeverityCritical, alarm.SeverityFire} {
			m.depth.WithLabelValues(c, string(s))
		}
		m.latency.WithLabelValues(c)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.deliveries, m.depth, m.latency, m.enqueue}
}
