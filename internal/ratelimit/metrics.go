package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/internal/promreg"
)

// Metrics are the limiter's Prometheus collectors. Labels: budget (a quota
// name made of app ids, never user ids) and lane.
type Metrics struct {
	wait     *prometheus.HistogramVec
	granted  *prometheus.CounterVec
	fallback *prometheus.GaugeVec
	errors   *prometheus.CounterVec
	factor   *prometheus.GaugeVec
	rate     *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Registering twice on one registry reuses the existing
// collectors; it never panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "friendsync_ratelimit_wait_seconds",
			Help:    "Time a vendor call waited for its rate-limit token.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"budget", "lane"}),
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_ratelimit_granted_total",
			Help: "Rate-limit tokens granted (one per vendor call).",
		}, []string{"budget", "lane"}),
		fallback: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "friendsync_ratelimit_fallback",
			Help: "1 while the budget uses the local fallback limiter because Redis is unavailable.",
		}, []string{"budget"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_ratelimit_errors_total",
			Help: "Redis errors and timeouts met by the limiter.",
		}, []string{"budget"}),
		factor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "friendsync_ratelimit_rate_factor",
			Help: "Adaptive share of the budget's rate in use (1 = full rate; lowered by vendor throttling).",
		}, []string{"budget"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "friendsync_ratelimit_budget_rate",
			Help: "Configured cluster-wide rate of the budget in calls per second (divide the granted rate by it for budget use).",
		}, []string{"budget"}),
	}
	if reg != nil {
		m.wait = promreg.Register(reg, m.wait)
		m.granted = promreg.Register(reg, m.granted)
		m.fallback = promreg.Register(reg, m.fallback)
		m.errors = promreg.Register(reg, m.errors)
		m.factor = promreg.Register(reg, m.factor)
		m.rate = promreg.Register(reg, m.rate)
	}
	return m
}
