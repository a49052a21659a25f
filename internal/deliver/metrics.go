package deliver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/promreg"
)

// Metrics are the delivery metrics. A nil *Metrics given to New is replaced
// by an unregistered set.
type Metrics struct {
	calls         *prometheus.CounterVec
	callItems     prometheus.Histogram
	itemEvents    prometheus.Histogram
	duration      *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	superseded    prometheus.Counter
	toppedUp      prometheus.Counter
	versionErrors *prometheus.CounterVec

	byKind [jobs.Released + 1]prometheus.Counter
}

// Values of the reason label of friendsync_deliver_version_errors_total.
const (
	versionLoad  = "load"
	versionRaise = "raise"
)

// NewMetrics creates the delivery metrics and registers them on reg (nil:
// not registered). Registering twice on one registry reuses the first set.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sizes := prometheus.ExponentialBuckets(1, 2, 11) // 1 .. 1024
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_deliver_calls_total",
			Help: "Vendor call attempts by the class of their answer (the worst item class for a partial answer).",
		}, []string{"vendor", "api", "class"}),
		callItems: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "friendsync_deliver_call_items",
			Help:    "Items carried by one vendor call attempt.",
			Buckets: sizes,
		}),
		itemEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "friendsync_deliver_item_events",
			Help:    "Events coalesced into one merged item (one friend of one account).",
			Buckets: sizes,
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "friendsync_deliver_call_duration_seconds",
			Help:    "Duration of one vendor call attempt (Send), without the rate-limit wait.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"vendor", "api"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_deliver_retries_total",
			Help: "In-process retries of vendor calls by the class of the failure that caused them.",
		}, []string{"vendor", "api", "class"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_deliver_outcomes_total",
			Help: "Events by the outcome delivery gave them.",
		}, []string{"outcome"}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "friendsync_deliver_superseded_total",
			Help: "Field values never sent because a newer version was already applied or is in the same batch.",
		}),
		toppedUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "friendsync_deliver_topped_up_events_total",
			Help: "Events added to a batch after its first call's rate-limit wait (they arrived while it waited and would otherwise have waited for the next batch).",
		}),
		versionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_deliver_version_errors_total",
			Help: "Version store failures: load (the batch is retried later) or raise (the vendor has the value; the stored version lags).",
		}, []string{"reason"}),
	}
	if reg != nil {
		m.calls = promreg.Register(reg, m.calls)
		m.callItems = promreg.Register(reg, m.callItems)
		m.itemEvents = promreg.Register(reg, m.itemEvents)
		m.duration = promreg.Register(reg, m.duration)
		m.retries = promreg.Register(reg, m.retries)
		m.outcomes = promreg.Register(reg, m.outcomes)
		m.superseded = promreg.Register(reg, m.superseded)
		m.toppedUp = promreg.Register(reg, m.toppedUp)
		m.versionErrors = promreg.Register(reg, m.versionErrors)
	}
	for k := jobs.Applied; k <= jobs.Released; k++ {
		m.byKind[k] = m.outcomes.WithLabelValues(k.String())
	}
	m.versionErrors.WithLabelValues(versionLoad)
	m.versionErrors.WithLabelValues(versionRaise)
	return m
}

func (m *Metrics) outcome(k jobs.Kind) {
	if k >= jobs.Applied && k <= jobs.Released {
		m.byKind[k].Inc()
	}
}
