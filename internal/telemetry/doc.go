// Package telemetry sets up what operators watch: structured logs through
// log/slog, a Prometheus registry, and an HTTP listener serving /metrics,
// /healthz (the process is alive) and /readyz (the node should get
// traffic). Other packages add pages to the same listener with Handle.
package telemetry
