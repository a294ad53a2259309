package peers

import (
	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/telemetry"
)

// Collector reports the known peers by status (good, stale, never,
// bad) as amber_peers, read at scrape time.
func (m *Manager) Collector() prometheus.Collector {
	desc := prometheus.NewDesc(prometheus.BuildFQName(telemetry.Namespace, "", "peers"),
		"Known Electrum peers by status: good (verified within PEER_VERIFY_INTERVAL), stale, never verified, bad.",
		[]string{"status"}, nil)
	return telemetry.NewCollector([]*prometheus.Desc{desc}, func(ch chan<- prometheus.Metric) {
		for status, n := range m.Counts() {
			if status != "total" {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), status)
			}
		}
	})
}
