package session

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"amber/server/cost"
	"amber/server/rpc"
)

// Metrics are the sessions' Prometheus metrics.
type Metrics struct {
	Requests    *prometheus.CounterVec   // by method
	Errors      *prometheus.CounterVec   // error replies by method
	Latency     *prometheus.HistogramVec // by method
	BytesIn     *prometheus.CounterVec   // by transport
	BytesOut    *prometheus.CounterVec   // by transport
	Opened      *prometheus.CounterVec   // sessions opened, by transport
	Throttled   prometheus.Counter       // requests delayed by the cost model
	Disconnects *prometheus.CounterVec   // sessions closed by the server, by reason
	Subs        prometheus.GaugeFunc
}

// NewMetrics registers the session metrics on reg under namespace ns;
// subs reports the subscriptions over all sessions.
func NewMetrics(reg prometheus.Registerer, ns string, subs func() float64) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Electrum requests answered, by method."}, []string{"method"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "request_errors_total",
			Help: "Electrum requests answered with an error, by method ((invalid) for messages that were not requests)."}, []string{"method"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time to answer an Electrum request, throttling delay included, by method.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"method"}),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total",
			Help: "Bytes of client messages received, by transport."}, []string{"transport"}),
		BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sent_bytes_total",
			Help: "Bytes of replies and notifications sent, by transport."}, []string{"transport"}),
		Opened: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sessions_opened_total",
			Help: "Sessions opened, by transport."}, []string{"transport"}),
		Throttled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "throttled_requests_total",
			Help: "Requests delayed because their session's cost was over COST_SOFT_LIMIT."}),
		Disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "session_disconnects_total",
			Help: "Sessions the server closed, by reason (excessive_usage, slow_reader)."}, []string{"reason"}),
		Subs: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "subscriptions",
			Help: "Script and outpoint subscriptions over all sessions."}, subs),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Errors, m.Latency, m.BytesIn, m.BytesOut, m.Opened, m.Throttled, m.Disconnects, m.Subs)
	}
	for _, r := range []string{"excessive_usage", "slow_reader"} {
		m.Disconnects.WithLabelValues(r)
	}
	return m
}

// method keeps label values bounded: unknown method names share one.
func method(name string) string {
	if cost.Known(name) {
		return name
	}
	return "(other)"
}

func (m *Metrics) observe(name string, took time.Duration, err error) {
	name = method(name)
	m.Requests.WithLabelValues(name).Inc()
	m.Latency.WithLabelValues(name).Observe(took.Seconds())
	var re *rpc.Error
	if err != nil && errors.As(err, &re) {
		m.Errors.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) bytesIn(transport string, n int) {
	m.BytesIn.WithLabelValues(transport).Add(float64(n))
}
func (m *Metrics) bytesOut(transport string, n int) {
	m.BytesOut.WithLabelValues(transport).Add(float64(n))
}
func (m *Metrics) sessionOpened(transport string) { m.Opened.WithLabelValues(transport).Inc() }
