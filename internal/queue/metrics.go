package queue

import (
	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

// Settle actions: the action label of friendsync_queue_settled_total.
const (
	actionAck      = "ack"
	actionNak      = "nak"
	actionNakDelay = "nak_delay"
	actionTerm     = "term"
)

// Metrics are the queue's Prometheus series. A nil *Metrics is valid and
// records nothing.
type Metrics struct {
	received    *prometheus.CounterVec   // lane
	settled     *prometheus.CounterVec   // lane, action
	dlq         *prometheus.CounterVec   // reason
	dlqErrors   prometheus.Counter       // failed dead-letter publishes
	inProgress  prometheus.Counter       // InProgress heartbeats sent
	pending     *prometheus.GaugeVec     // lane
	ackPending  *prometheus.GaugeVec     // lane
	e2eLatency  *prometheus.HistogramVec // lane, outcome
	maxDelivery prometheus.Counter       // safety-net dead letters (advisory or sweep)
}

// NewMetrics creates the queue metrics and registers them with reg (nil:
// not registered, e.g. in tests that do not look at them).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_queue_received_total",
			Help: "Messages delivered to this worker, by lane.",
		}, []string{"lane"}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_queue_settled_total",
			Help: "Messages settled, by lane and action (ack, nak, nak_delay, term).",
		}, []string{"lane", "action"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "friendsync_queue_dlq_total",
			Help: "Messages copied to the dead-letter stream, by reason.",
		}, []string{"reason"}),
		dlqErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "friendsync_queue_dlq_publish_errors_total",
			Help: "Dead-letter publishes that failed (the message was Nak'ed with a delay instead of Term'ed).",
		}),
		inProgress: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "friendsync_queue_in_progress_total",
			Help: "InProgress heartbeats sent for held messages.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "friendsync_queue_consumer_pending",
			Help: "Messages not yet delivered, summed over the partitions this worker owns, by lane.",
		}, []string{"lane"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "friendsync_queue_consumer_ack_pending",
			Help: "Messages delivered but not settled, summed over the partitions this worker owns, by lane.",
		}, []string{"lane"}),
		e2eLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "friendsync_queue_e2e_latency_seconds",
			Help:    "Time from JetStream publish to settle, by lane and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 14), // 10 ms .. ~25 min
		}, []string{"lane", "outcome"}),
		maxDelivery: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "friendsync_queue_stranded_total",
			Help: "Messages dead-lettered by the safety net (max-deliveries advisory or stranded-message sweep).",
		}),
	}
	for _, lane := range lanes {
		m.received.WithLabelValues(string(lane))
		for _, a := range []string{actionAck, actionNak, actionNakDelay, actionTerm} {
			m.settled.WithLabelValues(string(lane), a)
		}
		m.pending.WithLabelValues(string(lane))
		m.ackPending.WithLabelValues(string(lane))
	}
	for _, r := range []string{jobs.ReasonInvalid, jobs.ReasonVendor, jobs.ReasonMaxDeliver} {
		m.dlq.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.received, m.settled, m.dlq, m.dlqErrors, m.inProgress,
			m.pending, m.ackPending, m.e2eLatency, m.maxDelivery)
	}
	return m
}

func (m *Metrics) incReceived(lane event.Lane) {
	if m != nil {
		m.received.WithLabelValues(string(lane)).Inc()
	}
}

func (m *Metrics) incSettled(lane event.Lane, action string) {
	if m != nil {
		m.settled.WithLabelValues(string(lane), action).Inc()
	}
}

func (m *Metrics) incDLQ(reason string) {
	if m != nil {
		m.dlq.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) incDLQError() {
	if m != nil {
		m.dlqErrors.Inc()
	}
}

func (m *Metrics) incInProgress() {
	if m != nil {
		m.inProgress.Inc()
	}
}

func (m *Metrics) incStranded() {
	if m != nil {
		m.maxDelivery.Inc()
	}
}

func (m *Metrics) setLag(lane event.Lane, pending, ackPending float64) {
	if m != nil {
		m.pending.WithLabelValues(string(lane)).Set(pending)
		m.ackPending.WithLabelValues(string(lane)).Set(ackPending)
	}
}

func (m *Metrics) observeLatency(lane event.Lane, outcome string, seconds float64) {
	if m != nil {
		m.e2eLatency.WithLabelValues(string(lane), outcome).Observe(seconds)
	}
}
