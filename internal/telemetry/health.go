package telemetry

import (
	"sync"
)

// Health tracks whether the node should receive traffic. A node starts not
// ready; it becomes ready when its owner says so (at the daemon's tip) and
// stops being ready for good once draining starts.
type Health struct {
	mu       sync.Mutex
	ready    bool
	reason   string
	draining bool
}

// NewHealth returns a Health that is not ready, for reason.
func NewHealth(reason string) *Health { return &Health{reason: reason} }

// SetReady records readiness and, when not ready, why.
func (h *Health) SetReady(ready bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready, h.reason = ready, reason
}

// Drain marks the node not ready from now on, so load balancers stop
// sending it new connections before it shuts down.
func (h *Health) Drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.draining = true
}

// Ready reports readiness and, when not ready, the reason.
func (h *Health) Ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.draining:
		return false, "draining"
	case !h.ready:
		return false, h.reason
	}
	return true, "ready"
}
