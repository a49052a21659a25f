package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/testenv"
)

// demoWorker is a worker.Run in process with the embedded NATS server, the
// in-process simulator and demo traffic, on free ports, with a unique name.
type demoWorker struct {
	cfg  config.Config
	reg  *prometheus.Registry
	base string           // http://127.0.0.1:<port>
	logs *statusLogBuffer // the worker's JSON logs
}

// statusLogBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type statusLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *statusLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *statusLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDemoWorker runs a demo worker until the test ends (then it must stop
// cleanly within its shutdown timeout).
func startDemoWorker(t *testing.T, rate float64) *demoWorker {
	t.Helper()
	cfg := config.Defaults()
	cfg.WorkerID = "uitest-" + strings.ToLower(testenv.Unique("w"))
	cfg.Name = strings.ToLower(testenv.Unique("fsui"))
	cfg.EmbeddedNATSAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Partitions = 4
	cfg.Profiles = DemoProfiles()
	cfg.Simulated = true
	cfg.Demo = true
	cfg.DemoRate = rate
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.LogLevel = "debug"

	w := &demoWorker{cfg: cfg, reg: prometheus.NewRegistry(), base: "http://" + cfg.HTTPAddr, logs: &statusLogBuffer{}}
	w.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Deps{Logger: NewLogger(w.logs, "json", "debug"), Registry: w.reg, Ready: ready})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker.Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop within 30s")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker.Run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not ready within 30s")
	}
	return w
}

// stats fetches /ui/api/stats.
func (w *demoWorker) stats(t *testing.T) Stats {
	t.Helper()
	resp, err := http.Get(w.base + "/ui/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stats: %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("stats: decode: %v", err)
	}
	return st
}

// waitFor polls cond every 100 ms until it holds or the deadline passes.
func statusWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		bounds []float64
		counts []float64 // cumulative
		q      float64
		want   float64 // NaN: no estimate
	}{
		{"median in second bucket", []float64{1, 2, 4, inf}, []float64{10, 20, 30, 40}, 0.5, 2},
		{"quarter at first bound", []float64{1, 2, 4, inf}, []float64{10, 20, 30, 40}, 0.25, 1},
		{"interpolated", []float64{1, 2, 4, inf}, []float64{10, 20, 30, 40}, 0.625, 3},
		{"rank in +Inf bucket: highest finite bound", []float64{1, 2, 4, inf}, []float64{10, 20, 30, 40}, 0.9, 4},
		{"first bucket from zero", []float64{0.1, 1, inf}, []float64{4, 4, 4}, 0.5, 0.05},
		{"empty", []float64{1, inf}, []float64{0, 0}, 0.5, math.NaN()},
		{"only +Inf", []float64{inf}, []float64{3}, 0.5, math.NaN()},
		{"q 0", []float64{1, inf}, []float64{1, 1}, 0, 0},
		{"q NaN", []float64{1, inf}, []float64{1, 1}, math.NaN(), math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := histogram{bounds: tc.bounds, counts: tc.counts}.quantile(tc.q)
			if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// fakeMetrics registers stand-ins named like the real series, so Stats can
// be checked against exact figures. (metrics_test.go checks that a real
// worker registers every name the page reads.)
type fakeMetrics struct {
	received, settled, dlq, calls, granted, outcomes *prometheus.CounterVec
	pending, buffered, owned, budgetRate, fallback   *prometheus.GaugeVec
	items, e2e                                       *prometheus.HistogramVec
}

func newFakeMetrics(reg *prometheus.Registry) *fakeMetrics {
	cv := func(name string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "h"}, labels)
		reg.MustRegister(c)
		return c
	}
	gv := func(name string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "h"}, labels)
		reg.MustRegister(g)
		return g
	}
	hv := func(name string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: "h", Buckets: buckets}, labels)
		reg.MustRegister(h)
		return h
	}
	return &fakeMetrics{
		received:   cv(mReceived, "lane"),
		settled:    cv(mSettled, "lane", "action"),
		dlq:        cv(mDLQ, "reason"),
		calls:      cv(mCalls, "vendor", "api", "class"),
		granted:    cv(mGranted, "budget", "lane"),
		outcomes:   cv(mOutcomes, "outcome"),
		pending:    gv(mPending, "lane"),
		buffered:   gv(mBuffered),
		owned:      gv(mOwned),
		budgetRate: gv(mBudgetRate, "budget"),
		fallback:   gv(mFallback, "budget"),
		items:      hv(mCallItems, []float64{1, 2, 4, 8}),
		e2e:        hv(mE2E, []float64{0.1, 1, 10}, "lane", "outcome"),
	}
}

func TestStatsFromRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newFakeMetrics(reg)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	page := newStatusPage(reg, "w1", slog.New(slog.DiscardHandler))
	page.now = func() time.Time { return clock }

	// Before: 100 events, 40 calls carrying 1 item each, slow latencies.
	m.received.WithLabelValues("live").Add(100)
	m.settled.WithLabelValues("live", "ack").Add(90)
	m.calls.WithLabelValues("tencent", "friend_update", "ok").Add(40)
	m.budgetRate.WithLabelValues("tencent:1:friend_update").Set(180)
	m.fallback.WithLabelValues("tencent:1:friend_update").Set(0)
	m.budgetRate.WithLabelValues("zego:2:UpdateFriendsAlias").Set(18)
	m.fallback.WithLabelValues("zego:2:UpdateFriendsAlias").Set(1)
	for range 40 {
		m.items.WithLabelValues().Observe(1)
		m.e2e.WithLabelValues("live", "applied").Observe(5)
	}
	first, err := page.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if first.WindowSeconds != 0 || first.Throughput.Received != 0 {
		t.Fatalf("first sample has rates: window %v, received/s %v", first.WindowSeconds, first.Throughput.Received)
	}
	if first.Totals.Received != 100 || first.Totals.Acked != 90 || first.Coalescing.Saved != 60 {
		t.Fatalf("first totals = %+v, coalescing %+v", first.Totals, first.Coalescing)
	}
	if p := first.Latency.E2E.P50; p == nil || *p <= 1 || *p > 10 {
		t.Fatalf("first e2e p50 = %v, want in (1, 10]", p)
	}

	// 10 s later: +300 events, +50 calls of 4 items, +90 grants on tencent,
	// fast latencies, a dead letter, a backlog.
	clock = clock.Add(10 * time.Second)
	m.received.WithLabelValues("live").Add(300)
	m.settled.WithLabelValues("live", "ack").Add(200)
	m.settled.WithLabelValues("live", "nak_delay").Add(20)
	m.settled.WithLabelValues("bulk", "nak").Add(10)
	m.dlq.WithLabelValues("vendor").Add(5)
	m.calls.WithLabelValues("tencent", "friend_update", "ok").Add(45)
	m.calls.WithLabelValues("tencent", "friend_update", "throttled").Add(5)
	m.granted.WithLabelValues("tencent:1:friend_update", "live").Add(90)
	m.outcomes.WithLabelValues("applied").Add(200)
	m.pending.WithLabelValues("live").Set(7)
	m.pending.WithLabelValues("bulk").Set(3)
	m.buffered.WithLabelValues().Set(12)
	m.owned.WithLabelValues().Set(16)
	for range 50 {
		m.items.WithLabelValues().Observe(4)
		m.e2e.WithLabelValues("live", "applied").Observe(0.05)
		m.e2e.WithLabelValues("live", "retry_later").Observe(5) // not a final outcome: not counted
	}
	st, err := page.Stats()
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	ptr := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil {
			t.Errorf("%s = null, want %v", name, want)
			return
		}
		near(name, *got, want)
	}
	near("window", st.WindowSeconds, 10)
	near("received/s", st.Throughput.Received, 30)
	near("acked/s", st.Throughput.Acked, 20)
	near("retried/s", st.Throughput.Retried, 3)
	near("dead-lettered/s", st.Throughput.DeadLettered, 0.5)
	near("calls/s", st.Throughput.VendorCalls, 5)
	near("items/s", st.Throughput.Items, 20)
	near("total received", st.Totals.Received, 400)
	near("total calls", st.Totals.VendorCalls, 90)
	near("pending", st.Backlog.Pending, 10)
	near("buffered", st.Backlog.Buffered, 12)
	near("owned", st.Partitions.Owned, 16)
	near("saved", st.Coalescing.Saved, 310)
	ptr("saved fraction", st.Coalescing.SavedFraction, 310.0/400)
	ptr("items per call (window)", st.Coalescing.ItemsPerCall, 4)
	if st.Coalescing.EventsPerItem != nil {
		t.Errorf("events per item = %v, want null (no observations)", *st.Coalescing.EventsPerItem)
	}
	// The window's latencies are all 50 ms: p50 interpolates inside (0, 0.1].
	ptr("e2e p50 (window)", st.Latency.E2E.P50, 0.05)
	near("e2e count (window)", st.Latency.E2E.Count, 50)
	if len(st.Budgets) != 2 {
		t.Fatalf("budgets = %+v", st.Budgets)
	}
	tb, zb := st.Budgets[0], st.Budgets[1]
	if tb.Budget != "tencent:1:friend_update" || tb.Vendor != "tencent" || tb.Fallback {
		t.Errorf("tencent budget = %+v", tb)
	}
	near("tencent granted/s", tb.Granted, 9)
	near("tencent use", tb.Use, 9.0/180)
	if zb.Vendor != "zego" || !zb.Fallback || zb.Use != 0 {
		t.Errorf("zego budget = %+v", zb)
	}
	if len(st.Calls) != 2 || st.Calls[1].Class != "throttled" || st.Calls[1].Total != 5 {
		t.Errorf("calls = %+v", st.Calls)
	}
	near("throttled/s", st.Calls[1].Rate, 0.5)
	if r := st.DeadLetters.ByReason["vendor"]; r.Total != 5 || r.Rate != 0.5 {
		t.Errorf("dead letters = %+v", st.DeadLetters)
	}
	if o := st.Outcomes["applied"]; o.Total != 200 || o.Rate != 20 {
		t.Errorf("outcomes = %+v", st.Outcomes)
	}

	// The base is the newest sample at least a window old: 5 s later the
	// rates still cover the first gather (15 s), not the last (5 s).
	clock = clock.Add(5 * time.Second)
	m.received.WithLabelValues("live").Add(150)
	st, err = page.Stats()
	if err != nil {
		t.Fatal(err)
	}
	near("window after 5 s", st.WindowSeconds, 15)
	near("received/s over 15 s", st.Throughput.Received, 450.0/15)

	// The JSON carries null, not NaN, for missing percentiles.
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"events_per_item":null`)) {
		t.Errorf("JSON lacks events_per_item null: %s", b)
	}
}

func TestStatusAPIOnDemoWorker(t *testing.T) {
	w := startDemoWorker(t, 300)

	var first Stats
	statusWaitFor(t, 20*time.Second, "events delivered and all partitions owned", func() bool {
		first = w.stats(t)
		return first.Totals.VendorCalls > 0 && first.Partitions.Owned == 4
	})
	var second Stats
	statusWaitFor(t, 20*time.Second, "rates over a window", func() bool {
		second = w.stats(t)
		return second.WindowSeconds > 0 && second.Totals.Received > first.Totals.Received &&
			second.Totals.VendorCalls > first.Totals.VendorCalls
	})
	if second.Worker != w.cfg.WorkerID {
		t.Errorf("worker = %q, want %q", second.Worker, w.cfg.WorkerID)
	}
	if second.Throughput.Received <= 0 || second.Throughput.VendorCalls <= 0 {
		t.Errorf("throughput = %+v, want events and calls per second > 0", second.Throughput)
	}
	if second.Coalescing.Events != second.Totals.Received || second.Coalescing.SavedFraction == nil ||
		second.Coalescing.ItemsPerCall == nil || *second.Coalescing.ItemsPerCall < 1 {
		t.Errorf("coalescing = %+v", second.Coalescing)
	}
	vendors := map[string]bool{}
	for _, b := range second.Budgets {
		vendors[b.Vendor] = true
		if b.Rate <= 0 {
			t.Errorf("budget %s: rate %v", b.Budget, b.Rate)
		}
	}
	if len(second.Budgets) != 4 || !vendors["tencent"] || !vendors["volc"] || !vendors["zego"] {
		t.Errorf("budgets = %+v, want the 4 demo budgets", second.Budgets)
	}
	if second.Latency.E2E.P50 == nil || len(second.Latency.Vendor) == 0 {
		t.Errorf("latency = %+v", second.Latency)
	}
	for _, r := range []string{"invalid", "vendor", "max_deliver"} {
		if _, ok := second.DeadLetters.ByReason[r]; !ok {
			t.Errorf("dead letters lack reason %q: %+v", r, second.DeadLetters)
		}
	}

	// The page and its assets are served; / leads to it.
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/ui/", "text/html", `src="app.js"`},
		{"/ui/app.js", "text/javascript", "api/stats"},
		{"/ui/style.css", "text/css", ".card"},
		{"/", "text/html", `src="app.js"`},
	} {
		resp, err := http.Get(w.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !bytes.Contains(b, []byte(tc.contains)) {
			t.Errorf("GET %s: %s %q, body contains %q: %v", tc.path, resp.Status, resp.Header.Get("Content-Type"), tc.contains, bytes.Contains(b, []byte(tc.contains)))
		}
	}
}
