package whep

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	started, keyRequests, resyncs, lagResyncs, bytes prometheus.Counter
	probes, probesAborted, paddingBytes              prometheus.Counter
	active                                           prometheus.Gauge
	refused, switches                                *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_sessions_started_total",
			Help: "WebRTC viewing sessions started."}),
		keyRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_keyframe_requests_total",
			Help: "Keyframe requests (PLI/FIR) received from viewers."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_resyncs_total",
			Help: "Keyframe requests answered from the GOP cache."}),
		lagResyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_lag_resyncs_total",
			Help: "Times a viewer fell more than 2 s behind the camera and skipped to the newest keyframe."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_sent_bytes_total",
			Help: "Video payload bytes sent to viewers."}),
		probes: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_probes_total",
			Help: "Link probes (padding up to the main stream's rate) by sessions on the sub stream."}),
		probesAborted: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_probes_aborted_total",
			Help: "Link probes stopped early because the bandwidth estimator saw the link's queue grow."}),
		paddingBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_video_padding_bytes_total",
			Help: "RTP padding bytes sent to probe viewers' links."}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelterwatch_video_stream_switches_total",
			Help: "Sessions moved between a camera's main and sub streams, by the stream moved to and outcome (done, abandoned)."},
			[]string{"stream", "outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shelterwatch_video_sessions",
			Help: "WebRTC viewing sessions now."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelterwatch_video_sessions_refused_total",
			Help: "WHEP offers refused, by reason."}, []string{"reason"}),
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.started, m.keyRequests, m.resyncs, m.lagResyncs, m.bytes, m.probes, m.probesAborted, m.paddingBytes, m.active, m.refused, m.switches}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
