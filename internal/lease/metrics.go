package lease

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/internal/promreg"
)

// Lease event label values of friendsync_lease_events_total.
const (
	EventAcquired   = "acquired"    // a Create won a free partition
	EventReleased   = "released"    // a graceful hand-back deleted the key
	EventLost       = "lost"        // a renew found the lease gone, or the fencing deadline passed
	EventRenewError = "renew_error" // a renew request failed and is retried
)

// Metrics are the lease gauges and counters. One Metrics belongs to one
// Manager (its gauges describe that worker).
type Metrics struct {
	owned   prometheus.Gauge
	members prometheus.Gauge
	unowned prometheus.Gauge
	events  *prometheus.CounterVec
}

// NewMetrics creates the lease metrics and registers them on reg (nil:
// not registered). Registering twice on one registry reuses the existing
// collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "friendsync_lease_owned_partitions",
			Help: "Partitions this worker holds a lease on.",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "friendsync_lease_members",
			Help: "Live workers seen in the lease bucket's heartbeats at the last poll.",
		}),
		unowned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "friendsync_lease_unowned_partitions",
			Help: "Partitions with no lease key at this worker's last poll.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_lease_events_total",
			Help: "Lease events by kind: acquired, released, lost, renew_error.",
		}, []string{"event"}),
	}
	for _, e := range []string{EventAcquired, EventReleased, EventLost, EventRenewError} {
		m.events.WithLabelValues(e)
	}
	if reg != nil {
		m.owned = promreg.Register(reg, m.owned)
		m.members = promreg.Register(reg, m.members)
		m.unowned = promreg.Register(reg, m.unowned)
		m.events = promreg.Register(reg, m.events)
	}
	return m
}
