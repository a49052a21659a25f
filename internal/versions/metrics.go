package versions

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/internal/promreg"
)

// Label values of friendsync_versions_ops_total.
const (
	opLoad  = "load"
	opRaise = "raise"
	opFlush = "flush"

	resultOK          = "ok"          // answered by Redis
	resultCache       = "cache"       // Load answered from the cache during an outage
	resultPending     = "pending"     // Raise kept in memory during an outage
	resultUnavailable = "unavailable" // failed closed: ErrUnavailable (or a flush stopped by the outage)
	resultError       = "error"       // rejected: bad arguments or a Redis error reply
)

// Metrics are the version store's Prometheus collectors.
type Metrics struct {
	ops     *prometheus.CounterVec
	pending prometheus.Gauge
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Registering twice on one registry reuses the existing
// collectors; it never panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_versions_ops_total",
			Help: "Version store operations by op (load, raise, flush) and result (ok, cache, pending, unavailable, error).",
		}, []string{"op", "result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "friendsync_versions_pending_raises",
			Help: "Raised fields kept in memory while Redis is unavailable, applied when it is back.",
		}),
	}
	for _, op := range []string{opLoad, opRaise, opFlush} {
		for _, r := range []string{resultOK, resultCache, resultPending, resultUnavailable, resultError} {
			if op == opFlush && (r == resultCache || r == resultPending) ||
				op == opLoad && r == resultPending || op == opRaise && r == resultCache {
				continue
			}
			m.ops.WithLabelValues(op, r)
		}
	}
	if reg != nil {
		m.ops = promreg.Register(reg, m.ops)
		m.pending = promreg.Register(reg, m.pending)
	}
	return m
}
