package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appends            prometheus.Counter
	commits            prometheus.Counter
	writeErrors        prometheus.Counter
	refusedFull        prometheus.Counter
	batchSize          prometheus.Histogram
	commitSeconds      prometheus.Histogram
	dropped            *prometheus.CounterVec
	droppedUnforwarded prometheus.Counter
	deadLetters        prometheus.Counter
	deadLettersDropped prometheus.Counter
	collectors         []prometheus.Collector
}

func newMetrics(s *Store) *metrics {
	m := &metrics{
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_appends_total", Help: "Readings appended durably to the store."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_commits_total", Help: "Group commits (one fsync each)."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_write_errors_total", Help: "Group commits that failed; their readings were not acknowledged."}),
		refusedFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_refused_disk_full_total", Help: "Readings refused (not acknowledged) because the disk's free space was below the reserve."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shelterwatch_store_commit_batch_readings", Help: "Readings per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shelterwatch_store_fsync_seconds", Help: "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_store_dropped_total", Help: "Readings deleted from the store, by reason (retention, disk_budget)."},
			[]string{"reason"}),
		droppedUnforwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_dropped_unforwarded_total", Help: "Readings deleted before every consumer had read them: data lost to the disk budget."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_dead_letters_total", Help: "Dead letters written."}),
		deadLettersDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_store_dead_letters_dropped_total", Help: "Dead letters not kept because their queue was full."}),
	}
	m.dropped.WithLabelValues("retention")
	m.dropped.WithLabelValues("disk_budget")
	m.collectors = []prometheus.Collector{
		m.appends, m.commits, m.writeErrors, m.refusedFull, m.batchSize, m.commitSeconds, m.dropped,
		m.droppedUnforwarded, m.deadLetters, m.deadLettersDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shelterwatch_store_size_bytes", Help: "Bytes the store occupies on disk."},
			func() float64 { return float64(s.DiskUsage()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shelterwatch_store_disk_full", Help: "1 while readings are refused because the disk is full."},
			func() float64 {
				if s.Full() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shelterwatch_store_last_seq", Help: "Sequence number of the newest durable reading."},
			func() float64 { return float64(s.LastSeq()) }),
	}
	return m
}

// Register registers the store's metrics with reg.
func (s *Store) Register(reg prometheus.Registerer) error {
	for _, c := range s.metrics.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
