package worker

import (
	"embed"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The status page: /ui serves the embedded assets (no CDN), whose script
// polls /ui/api/stats. The figures are computed from the worker's own
// registry, so the page shows exactly what /metrics exports: rates and
// percentiles over the last StatusWindow, from the difference between the
// current gather and a remembered one.

//go:embed ui
var uiAssets embed.FS

// StatusWindow is the span the status page's rates and latency
// percentiles cover (the last samples taken at least this long ago).
const StatusWindow = 10 * time.Second

// Stats is the JSON document of /ui/api/stats. Rates are per second over
// WindowSeconds (0 on the first request: no rates yet); totals count since
// the worker started. Percentiles are null without observations.
type Stats struct {
	Worker        string    `json:"worker"`
	Time          time.Time `json:"time"`
	WindowSeconds float64   `json:"window_seconds"`

	Throughput  Flow            `json:"throughput"` // per second
	Totals      Flow            `json:"totals"`
	Backlog     Backlog         `json:"backlog"`
	Budgets     []BudgetUse     `json:"budgets"`
	Coalescing  Coalescing      `json:"coalescing"`
	Calls       []CallClass     `json:"calls"`    // vendor calls by vendor, api and class
	Retries     []CallClass     `json:"retries"`  // in-process retries by the class that caused them
	Outcomes    map[string]Rate `json:"outcomes"` // events by delivery outcome
	Latency     Latency         `json:"latency"`
	DeadLetters DeadLetters     `json:"dead_letters"`
	Partitions  Partitions      `json:"partitions"`
}

// Flow counts the data path's stages.
type Flow struct {
	Received     float64 `json:"received"`      // messages delivered to this worker
	Acked        float64 `json:"acked"`         // settled with Ack (final outcome)
	Retried      float64 `json:"retried"`       // settled with Nak or Nak-with-delay
	DeadLettered float64 `json:"dead_lettered"` // copied to the dead-letter stream
	VendorCalls  float64 `json:"vendor_calls"`  // vendor call attempts
	Items        float64 `json:"items"`         // items carried by those calls
}

// Backlog is the work waiting, now.
type Backlog struct {
	Pending    float64 `json:"pending"`     // not yet delivered, owned partitions
	AckPending float64 `json:"ack_pending"` // delivered, not settled
	Buffered   float64 `json:"buffered"`    // in coalescing buffers
	Accounts   float64 `json:"accounts"`    // accounts with buffered or in-flight events
	InFlight   float64 `json:"in_flight"`   // accounts with a vendor call in flight
}

// BudgetUse is one rate-limit budget: the calls this worker was granted per
// second against the budget's configured cluster-wide rate.
type BudgetUse struct {
	Budget   string   `json:"budget"`
	Vendor   string   `json:"vendor"`
	Rate     float64  `json:"rate"`     // configured calls/s (cluster-wide)
	Granted  float64  `json:"granted"`  // calls/s granted to this worker
	Use      float64  `json:"use"`      // Granted / Rate
	Factor   float64  `json:"factor"`   // adaptive share in use (1 = full)
	Fallback bool     `json:"fallback"` // the local fallback limiter is on
	WaitP50  *float64 `json:"wait_p50"` // seconds
	WaitP99  *float64 `json:"wait_p99"`
}

// Coalescing compares events with the vendor calls they became.
type Coalescing struct {
	Events        float64  `json:"events"`          // events received (total)
	Calls         float64  `json:"calls"`           // vendor calls (total)
	Saved         float64  `json:"saved"`           // Events - Calls, at least 0
	SavedFraction *float64 `json:"saved_fraction"`  // Saved / Events
	ItemsPerCall  *float64 `json:"items_per_call"`  // mean over the window (else total)
	EventsPerItem *float64 `json:"events_per_item"` // mean over the window (else total)
}

// CallClass is a counter of one (vendor, api, class).
type CallClass struct {
	Vendor string  `json:"vendor"`
	API    string  `json:"api"`
	Class  string  `json:"class"`
	Total  float64 `json:"total"`
	Rate   float64 `json:"rate"`
}

// Rate is a counter's total and its rate over the window.
type Rate struct {
	Total float64 `json:"total"`
	Rate  float64 `json:"rate"`
}

// Latency holds percentiles in seconds, over the window when it saw
// observations, else since start.
type Latency struct {
	E2E    Percentiles   `json:"e2e"` // publish to final settle
	Vendor []CallLatency `json:"vendor"`
}

// Percentiles of one histogram.
type Percentiles struct {
	P50   *float64 `json:"p50"`
	P90   *float64 `json:"p90"`
	P99   *float64 `json:"p99"`
	Count float64  `json:"count"` // observations the percentiles are computed from
}

// CallLatency is the vendor call duration of one (vendor, api).
type CallLatency struct {
	Vendor string `json:"vendor"`
	API    string `json:"api"`
	Percentiles
}

// DeadLetters counts dead-lettered messages.
type DeadLetters struct {
	ByReason      map[string]Rate `json:"by_reason"`
	Stranded      float64         `json:"stranded"`       // by the safety net
	PublishErrors float64         `json:"publish_errors"` // failed dead-letter publishes
}

// Partitions is this worker's view of the partition leases.
type Partitions struct {
	Owned   float64 `json:"owned"`
	Unowned float64 `json:"unowned"`
	Members float64 `json:"members"`
}

// statusPage computes Stats from a gatherer, remembering recent gathers to
// compute rates. It is safe for concurrent use.
type statusPage struct {
	gather prometheus.Gatherer
	worker string
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	samples []sample // oldest first, none older than 3 windows
}

type sample struct {
	at   time.Time
	snap snapshot
}

func newStatusPage(g prometheus.Gatherer, worker string, logger *slog.Logger) *statusPage {
	return &statusPage{gather: g, worker: worker, window: StatusWindow, now: time.Now, log: logger}
}

// mountStatus serves the page under /ui/ and its data at /ui/api/stats,
// and redirects / to /ui/.
func mountStatus(mux *http.ServeMux, g prometheus.Gatherer, worker string, logger *slog.Logger) {
	page := newStatusPage(g, worker, logger)
	// The embedded tree holds ui/…, so the request path maps onto it as is.
	mux.Handle("GET /ui/", http.FileServerFS(uiAssets))
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /ui/api/stats", page.serveStats)
}

func (p *statusPage) serveStats(w http.ResponseWriter, _ *http.Request) {
	st, err := p.Stats()
	if err != nil {
		p.log.Warn("status: gather", slog.Any("error", err))
		http.Error(w, "gather failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(st)
}

// Stats gathers the registry and computes the figures against the newest
// remembered gather at least one window old (or the oldest one).
func (p *statusPage) Stats() (Stats, error) {
	mfs, err := p.gather.Gather()
	if err != nil && len(mfs) == 0 {
		return Stats{}, err
	}
	now := p.now()
	cur := newSnapshot(mfs)

	p.mu.Lock()
	var base *snapshot
	var baseAt time.Time
	for i := len(p.samples) - 1; i >= 0; i-- {
		if now.Sub(p.samples[i].at) >= p.window {
			base, baseAt = &p.samples[i].snap, p.samples[i].at
			break
		}
	}
	if base == nil && len(p.samples) > 0 && now.Sub(p.samples[0].at) > 0 {
		base, baseAt = &p.samples[0].snap, p.samples[0].at
	}
	// Remember this gather; forget those older than any future base.
	keep := p.samples[:0]
	for _, s := range p.samples {
		if now.Sub(s.at) < 3*p.window {
			keep = append(keep, s)
		}
	}
	p.samples = append(keep, sample{at: now, snap: cur})
	p.mu.Unlock()

	var dt float64
	if base != nil {
		dt = now.Sub(baseAt).Seconds()
	}
	return compute(p.worker, now, cur, base, dt), nil
}

// compute derives Stats from the current snapshot and a base dt seconds
// older (nil: no rates; percentiles since start).
func compute(worker string, now time.Time, cur snapshot, base *snapshot, dt float64) Stats {
	rate := func(name string, match map[string]string) float64 {
		if base == nil || dt <= 0 {
			return 0
		}
		return max(0, cur.sum(name, match)-base.sum(name, match)) / dt
	}
	both := func(name string, match map[string]string) Rate {
		return Rate{Total: cur.sum(name, match), Rate: rate(name, match)}
	}
	flow := func(get func(name string, match map[string]string) float64) Flow {
		return Flow{
			Received:     get(mReceived, nil),
			Acked:        get(mSettled, map[string]string{"action": "ack"}),
			Retried:      get(mSettled, map[string]string{"action": "nak"}) + get(mSettled, map[string]string{"action": "nak_delay"}),
			DeadLettered: get(mDLQ, nil),
			VendorCalls:  get(mCalls, nil),
			Items:        get(mCallItems+"_sum", nil),
		}
	}
	st := Stats{
		Worker:     worker,
		Time:       now.UTC(),
		Throughput: flow(rate),
		Totals:     flow(cur.sum),
		Backlog: Backlog{
			Pending:    cur.sum(mPending, nil),
			AckPending: cur.sum(mAckPending, nil),
			Buffered:   cur.sum(mBuffered, nil),
			Accounts:   cur.sum(mKeys, nil),
			InFlight:   cur.sum(mInFlight, nil),
		},
		Outcomes: map[string]Rate{},
		DeadLetters: DeadLetters{
			ByReason:      map[string]Rate{},
			Stranded:      cur.sum(mStranded, nil),
			PublishErrors: cur.sum(mDLQErrors, nil),
		},
		Partitions: Partitions{
			Owned:   cur.sum(mOwned, nil),
			Unowned: cur.sum(mUnowned, nil),
			Members: cur.sum(mMembers, nil),
		},
	}
	if base != nil {
		st.WindowSeconds = dt
	}

	for _, b := range cur.labelValues(mBudgetRate, "budget") {
		m := map[string]string{"budget": b}
		u := BudgetUse{
			Budget:   b,
			Vendor:   strings.SplitN(b, ":", 2)[0],
			Rate:     cur.sum(mBudgetRate, m),
			Granted:  rate(mGranted, m),
			Factor:   cur.sum(mFactor, m),
			Fallback: cur.sum(mFallback, m) > 0,
		}
		if u.Rate > 0 {
			u.Use = u.Granted / u.Rate
		}
		w := windowed(cur, base, mWait, m)
		u.WaitP50, u.WaitP99 = num(w.quantile(0.5)), num(w.quantile(0.99))
		st.Budgets = append(st.Budgets, u)
	}

	events, calls := cur.sum(mReceived, nil), cur.sum(mCalls, nil)
	st.Coalescing = Coalescing{Events: events, Calls: calls, Saved: max(0, events-calls)}
	if events > 0 {
		st.Coalescing.SavedFraction = num(st.Coalescing.Saved / events)
	}
	st.Coalescing.ItemsPerCall = windowed(cur, base, mCallItems, nil).mean()
	st.Coalescing.EventsPerItem = windowed(cur, base, mItemEvents, nil).mean()

	for _, name := range []string{mCalls, mRetries} {
		var out []CallClass
		for _, s := range cur.series(name) {
			c := CallClass{Vendor: s.labels["vendor"], API: s.labels["api"], Class: s.labels["class"], Total: s.value}
			c.Rate = rate(name, s.labels)
			out = append(out, c)
		}
		if name == mCalls {
			st.Calls = out
		} else {
			st.Retries = out
		}
	}
	for _, o := range cur.labelValues(mOutcomes, "outcome") {
		st.Outcomes[o] = both(mOutcomes, map[string]string{"outcome": o})
	}
	for _, r := range cur.labelValues(mDLQ, "reason") {
		st.DeadLetters.ByReason[r] = both(mDLQ, map[string]string{"reason": r})
	}

	// End-to-end latency of final outcomes (acked or dead-lettered); the
	// queue also observes retry_later and released settles, which are not.
	e2e := histogram{}
	for _, o := range cur.labelValues(mE2E, "outcome") {
		if o != "retry_later" && o != "released" {
			e2e.add(windowed(cur, base, mE2E, map[string]string{"outcome": o}))
		}
	}
	st.Latency.E2E = e2e.percentiles()
	for _, s := range cur.histSeries(mDuration) {
		m := map[string]string{"vendor": s.labels["vendor"], "api": s.labels["api"]}
		st.Latency.Vendor = append(st.Latency.Vendor, CallLatency{
			Vendor: m["vendor"], API: m["api"], Percentiles: windowed(cur, base, mDuration, m).percentiles()})
	}
	return st
}

// Metric names the page reads (a test checks each is registered).
const (
	mReceived   = "friendsync_queue_received_total"
	mSettled    = "friendsync_queue_settled_total"
	mDLQ        = "friendsync_queue_dlq_total"
	mDLQErrors  = "friendsync_queue_dlq_publish_errors_total"
	mStranded   = "friendsync_queue_stranded_total"
	mPending    = "friendsync_queue_consumer_pending"
	mAckPending = "friendsync_queue_consumer_ack_pending"
	mE2E        = "friendsync_queue_e2e_latency_seconds"
	mCalls      = "friendsync_deliver_calls_total"
	mRetries    = "friendsync_deliver_retries_total"
	mOutcomes   = "friendsync_deliver_outcomes_total"
	mCallItems  = "friendsync_deliver_call_items"
	mItemEvents = "friendsync_deliver_item_events"
	mDuration   = "friendsync_deliver_call_duration_seconds"
	mBuffered   = "friendsync_coalesce_buffered_events"
	mKeys       = "friendsync_coalesce_keys"
	mInFlight   = "friendsync_coalesce_inflight_accounts"
	mBudgetRate = "friendsync_ratelimit_budget_rate"
	mGranted    = "friendsync_ratelimit_granted_total"
	mWait       = "friendsync_ratelimit_wait_seconds"
	mFallback   = "friendsync_ratelimit_fallback"
	mFactor     = "friendsync_ratelimit_rate_factor"
	mOwned      = "friendsync_lease_owned_partitions"
	mUnowned    = "friendsync_lease_unowned_partitions"
	mMembers    = "friendsync_lease_members"
)

// statusMetrics lists the metric names the status page reads.
var statusMetrics = []string{mReceived, mSettled, mDLQ, mDLQErrors, mStranded, mPending, mAckPending, mE2E,
	mCalls, mRetries, mOutcomes, mCallItems, mItemEvents, mDuration, mBuffered, mKeys, mInFlight,
	mBudgetRate, mGranted, mWait, mFallback, mFactor, mOwned, mUnowned, mMembers}

// num turns NaN into null.
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// snapshot is one gather, indexed by metric name.
type snapshot struct {
	scalars map[string][]scalar
	hists   map[string][]histSeries
}

type scalar struct {
	labels map[string]string
	value  float64
}

type histSeries struct {
	labels map[string]string
	h      histogram
}

// histogram is cumulative bucket counts by upper bound (ascending, +Inf
// last), with the sum and count of observations.
type histogram struct {
	bounds []float64
	counts []float64
	sum    float64
	count  float64
}

func newSnapshot(mfs []*dto.MetricFamily) snapshot {
	s := snapshot{scalars: map[string][]scalar{}, hists: map[string][]histSeries{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.scalars[mf.GetName()] = append(s.scalars[mf.GetName()], scalar{labels, m.Counter.GetValue()})
			case m.Gauge != nil:
				s.scalars[mf.GetName()] = append(s.scalars[mf.GetName()], scalar{labels, m.Gauge.GetValue()})
			case m.Untyped != nil:
				s.scalars[mf.GetName()] = append(s.scalars[mf.GetName()], scalar{labels, m.Untyped.GetValue()})
			case m.Histogram != nil:
				h := histogram{sum: m.Histogram.GetSampleSum(), count: float64(m.Histogram.GetSampleCount())}
				for _, b := range m.Histogram.GetBucket() {
					h.bounds = append(h.bounds, b.GetUpperBound())
					h.counts = append(h.counts, float64(b.GetCumulativeCount()))
				}
				if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
					h.bounds = append(h.bounds, math.Inf(1))
					h.counts = append(h.counts, h.count)
				}
				s.hists[mf.GetName()] = append(s.hists[mf.GetName()], histSeries{labels, h})
				// The _sum and _count series, as PromQL names them.
				s.scalars[mf.GetName()+"_sum"] = append(s.scalars[mf.GetName()+"_sum"], scalar{labels, h.sum})
				s.scalars[mf.GetName()+"_count"] = append(s.scalars[mf.GetName()+"_count"], scalar{labels, h.count})
			}
		}
	}
	return s
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sum adds the values of name's series whose labels include match.
func (s *snapshot) sum(name string, match map[string]string) float64 {
	var t float64
	for _, sc := range s.scalars[name] {
		if matches(sc.labels, match) {
			t += sc.value
		}
	}
	return t
}

func (s *snapshot) series(name string) []scalar {
	out := append([]scalar(nil), s.scalars[name]...)
	sort.Slice(out, func(i, j int) bool { return labelKey(out[i].labels) < labelKey(out[j].labels) })
	return out
}

func (s *snapshot) histSeries(name string) []histSeries {
	out := append([]histSeries(nil), s.hists[name]...)
	sort.Slice(out, func(i, j int) bool { return labelKey(out[i].labels) < labelKey(out[j].labels) })
	return out
}

// labelValues lists the distinct values of label among name's series
// (scalars or histograms), sorted.
func (s *snapshot) labelValues(name, label string) []string {
	seen := map[string]bool{}
	for _, sc := range s.scalars[name] {
		seen[sc.labels[label]] = true
	}
	for _, h := range s.hists[name] {
		seen[h.labels[label]] = true
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// hist merges name's histogram series whose labels include match.
func (s *snapshot) hist(name string, match map[string]string) histogram {
	var h histogram
	for _, hs := range s.hists[name] {
		if matches(hs.labels, match) {
			h.add(hs.h)
		}
	}
	return h
}

func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + ",")
	}
	return b.String()
}

// windowed is the histogram of the observations made since base when there
// were any, else of all observations.
func windowed(cur snapshot, base *snapshot, name string, match map[string]string) histogram {
	h := cur.hist(name, match)
	if base == nil {
		return h
	}
	d := h.minus(base.hist(name, match))
	if d.count <= 0 {
		return h
	}
	return d
}

// add merges o into h (same bucket layout; a different layout is ignored).
func (h *histogram) add(o histogram) {
	if len(o.bounds) == 0 {
		return
	}
	if len(h.bounds) == 0 {
		h.bounds = append([]float64(nil), o.bounds...)
		h.counts = make([]float64, len(o.counts))
	}
	if len(h.bounds) != len(o.bounds) {
		return
	}
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.sum += o.sum
	h.count += o.count
}

// minus is h − o bucket by bucket (o older; a reset or another layout
// yields h).
func (h histogram) minus(o histogram) histogram {
	if len(o.bounds) != len(h.bounds) || o.count > h.count {
		return h
	}
	d := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), sum: h.sum - o.sum, count: h.count - o.count}
	for i := range h.counts {
		d.counts[i] = max(0, h.counts[i]-o.counts[i])
	}
	return d
}

func (h histogram) mean() *float64 {
	if h.count <= 0 {
		return nil
	}
	return num(h.sum / h.count)
}

func (h histogram) percentiles() Percentiles {
	return Percentiles{P50: num(h.quantile(0.5)), P90: num(h.quantile(0.9)), P99: num(h.quantile(0.99)), Count: h.count}
}

// quantile estimates the q-quantile like PromQL's histogram_quantile:
// linear interpolation inside the bucket holding the rank, the lower bound
// of the first bucket taken as 0, the highest finite bound returned when
// the rank falls in the +Inf bucket. NaN without observations.
func (h histogram) quantile(q float64) float64 {
	n := len(h.counts)
	if n == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	total := h.counts[n-1]
	if total <= 0 {
		return math.NaN()
	}
	if q <= 0 {
		return 0
	}
	if q >= 1 {
		q = 1
	}
	rank := q * total
	i := sort.Search(n, func(i int) bool { return h.counts[i] >= rank })
	if i >= n-1 && math.IsInf(h.bounds[n-1], 1) {
		if n < 2 {
			return math.NaN()
		}
		return h.bounds[n-2]
	}
	lower, prev := 0.0, 0.0
	if i > 0 {
		lower, prev = h.bounds[i-1], h.counts[i-1]
	} else if h.bounds[0] <= 0 {
		return h.bounds[0]
	}
	inBucket := h.counts[i] - prev
	if inBucket <= 0 {
		return h.bounds[i]
	}
	return lower + (h.bounds[i]-lower)*(rank-prev)/inBucket
}
