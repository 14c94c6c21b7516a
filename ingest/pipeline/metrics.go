package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	formatIn     *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	readings     prometheus.Counter
	heartbeats   prometheus.Counter
	ignored      prometheus.Counter
	clockSkew    prometheus.Counter
	unmapped     prometheus.Counter
	bridgeEvents *prometheus.CounterVec
	storeFailed  prometheus.Counter
	unstored     prometheus.Counter
	waiting      prometheus.Gauge
	latency      prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		formatIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_messages_total", Help: "MQTT messages routed to a device, by payload format."},
			[]string{"format"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_dead_lettered_total", Help: "Messages rejected and dead-lettered, by reason."},
			[]string{"reason"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_readings_total", Help: "Readings decoded and stored durably."}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_heartbeats_total", Help: "Messages that proved a device alive without carrying a reading."}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_ignored_total", Help: "Messages on infrastructure topics (bridge logs, discovery) dropped on purpose."}),
		unmapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_unmapped_readings_total", Help: "Readings of a board's sensor (channel) that no configured device claims, dropped."}),
		bridgeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_bridge_state_total", Help: "Bridge state messages (Zigbee2MQTT bridge/state), by state."}, []string{"state"}),
		clockSkew: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_clock_skew_total", Help: "Device timestamps replaced by the receive time because the device clock was off."}),
		storeFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_store_failures_total", Help: "Messages not acknowledged because the store could not write them."}),
		unstored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_ingest_unstored_readings_total", Help: "Readings the store refused, evaluated by the safety rules in memory while their message waits unacknowledged."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shelterwatch_ingest_waiting_for_disk", Help: "Messages held unacknowledged until the full disk has room for their readings."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shelterwatch_ingest_receive_to_stored_seconds", Help: "Time from taking a message off MQTT to its readings being fsynced.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	for _, r := range []string{ReasonOversized, ReasonUnknownDevice, ReasonBadTopic} {
		m.deadLettered.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.formatIn, m.deadLettered, m.readings, m.heartbeats, m.ignored, m.unmapped, m.bridgeEvents, m.clockSkew, m.storeFailed, m.unstored, m.waiting, m.latency} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
