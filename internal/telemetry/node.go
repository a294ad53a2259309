package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/store"
)

// NodeMetrics are what builders and servers both export: the daemon
// client, snapshots and the DB.
type NodeMetrics struct {
	DaemonRequests  *prometheus.CounterVec   // by method and result
	DaemonLatency   *prometheus.HistogramVec // by method
	DaemonFailovers prometheus.Counter
	SnapshotSeconds *prometheus.GaugeVec   // last publish or restore, by op
	SnapshotBytes   *prometheus.CounterVec // bytes published or restored, by op
	SnapshotLast    *prometheus.GaugeVec   // unix time of the last success, by op
	SnapshotHeight  *prometheus.GaugeVec   // height of the last snapshot, by op
	SnapshotErrors  *prometheus.CounterVec // failed publishes or restores, by op
}

// NewNodeMetrics registers the node metrics on reg (nil registers
// nothing, for tests). The snapshot counters of ops start at zero, so
// alerts on their rate work before the first snapshot.
func NewNodeMetrics(reg prometheus.Registerer, ops ...string) *NodeMetrics {
	ns := Namespace
	m := &NodeMetrics{
		DaemonRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "daemon_requests_total",
			Help: "HTTP requests to the daemon, by JSON-RPC method and result (ok or error)."}, []string{"method", "result"}),
		DaemonLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "daemon_request_duration_seconds",
			Help: "Time of one HTTP request to the daemon, by method.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"method"}),
		DaemonFailovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "daemon_failovers_total",
			Help: "Switches to the next DAEMON_URL after the current one failed."}),
		SnapshotSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "snapshot_duration_seconds",
			Help: "Duration of the last snapshot publish or restore."}, []string{"op"}),
		SnapshotBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "snapshot_bytes_total",
			Help: "Bytes of snapshots published or restored."}, []string{"op"}),
		SnapshotLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "snapshot_last_success_timestamp_seconds",
			Help: "Unix time of the last successful snapshot publish or restore."}, []string{"op"}),
		SnapshotHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "snapshot_height",
			Help: "Block height of the last snapshot published or restored."}, []string{"op"}),
		SnapshotErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "snapshot_errors_total",
			Help: "Snapshot publishes or restores that failed."}, []string{"op"}),
	}
	for _, op := range ops {
		m.SnapshotBytes.WithLabelValues(op)
		m.SnapshotErrors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.DaemonRequests, m.DaemonLatency, m.DaemonFailovers, m.SnapshotSeconds, m.SnapshotBytes,
			m.SnapshotLast, m.SnapshotHeight, m.SnapshotErrors)
	}
	return m
}

// DaemonRequest is a daemon.Hooks.Request.
func (m *NodeMetrics) DaemonRequest(method string, n int, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.DaemonRequests.WithLabelValues(method, result).Inc()
	m.DaemonLatency.WithLabelValues(method).Observe(took.Seconds())
}

// DaemonFailover is a daemon.Hooks.Failover.
func (m *NodeMetrics) DaemonFailover(_, _ string) { m.DaemonFailovers.Inc() }

// Snapshot records one publish or restore (op) that took took, moved
// bytes and reached height, or failed with err.
func (m *NodeMetrics) Snapshot(op string, took time.Duration, bytes, height int64, err error) {
	if err != nil {
		m.SnapshotErrors.WithLabelValues(op).Inc()
		return
	}
	m.SnapshotSeconds.WithLabelValues(op).Set(took.Seconds())
	m.SnapshotBytes.WithLabelValues(op).Add(float64(bytes))
	m.SnapshotLast.WithLabelValues(op).SetToCurrentTime()
	m.SnapshotHeight.WithLabelValues(op).Set(float64(height))
}

// RegisterDB exports the DB's size, compactions and cache figures,
// read from metrics at each scrape.
func RegisterDB(reg prometheus.Registerer, metrics func() store.Metrics) {
	ns := Namespace
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "db", name), help, nil, nil)
	}
	var (
		size        = desc("size_bytes", "Bytes the index DB occupies on disk.")
		tables      = desc("tables", "Live SST files.")
		readAmp     = desc("read_amplification", "L0 sublevels plus non-empty lower levels.")
		debt        = desc("compaction_debt_bytes", "Bytes compactions must still rewrite.")
		compactions = desc("compactions_total", "Compactions since the DB was opened.")
		flushes     = desc("flushes_total", "Memtable flushes since the DB was opened.")
		stalls      = desc("write_stalls_total", "Writes that waited for flushes or compactions.")
		hits        = desc("cache_hits_total", "Block cache hits.")
		misses      = desc("cache_misses_total", "Block cache misses.")
	)
	reg.MustRegister(NewCollector([]*prometheus.Desc{size, tables, readAmp, debt, compactions, flushes, stalls, hits, misses},
		func(ch chan<- prometheus.Metric) {
			m := metrics()
			g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
			c := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
			}
			g(size, float64(m.DiskUsage))
			g(tables, float64(m.Tables))
			g(readAmp, float64(m.ReadAmp))
			g(debt, float64(m.CompactionDebt))
			c(compactions, float64(m.Compactions))
			c(flushes, float64(m.Flushes))
			c(stalls, float64(m.WriteStalls))
			c(hits, float64(m.CacheHits))
			c(misses, float64(m.CacheMisses))
		}))
}

// NewCollector is a collector of metrics computed at each scrape.
func NewCollector(descs []*prometheus.Desc, collect func(chan<- prometheus.Metric)) prometheus.Collector {
	return collector{descs: descs, collect: collect}
}

type collector struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
