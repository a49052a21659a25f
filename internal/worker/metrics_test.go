package worker

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// requiredMetrics are the series the operations issue asks for, by name
// and type (docs/OPERATIONS.md documents each).
var requiredMetrics = map[string]dto.MetricType{
	"friendsync_queue_received_total":           dto.MetricType_COUNTER,   // events received
	"friendsync_queue_settled_total":            dto.MetricType_COUNTER,   // acked / retried (action)
	"friendsync_queue_dlq_total":                dto.MetricType_COUNTER,   // dead-lettered by reason class
	"friendsync_deliver_calls_total":            dto.MetricType_COUNTER,   // vendor calls by vendor and class
	"friendsync_deliver_retries_total":          dto.MetricType_COUNTER,   // in-process retries by class
	"friendsync_deliver_outcomes_total":         dto.MetricType_COUNTER,   // events by outcome
	"friendsync_deliver_call_items":             dto.MetricType_HISTOGRAM, // items per call
	"friendsync_deliver_item_events":            dto.MetricType_HISTOGRAM, // events coalesced per item
	"friendsync_deliver_call_duration_seconds":  dto.MetricType_HISTOGRAM, // vendor request duration
	"friendsync_queue_e2e_latency_seconds":      dto.MetricType_HISTOGRAM, // publish → final outcome
	"friendsync_ratelimit_wait_seconds":         dto.MetricType_HISTOGRAM, // limiter wait
	"friendsync_ratelimit_fallback":             dto.MetricType_GAUGE,     // fallback state
	"friendsync_ratelimit_granted_total":        dto.MetricType_COUNTER,   // budget use, numerator
	"friendsync_ratelimit_budget_rate":          dto.MetricType_GAUGE,     // budget use, denominator
	"friendsync_coalesce_buffered_events":       dto.MetricType_GAUGE,     // buffered events
	"friendsync_coalesce_inflight_accounts":     dto.MetricType_GAUGE,     // in-flight accounts
	"friendsync_lease_owned_partitions":         dto.MetricType_GAUGE,     // partitions owned
	"friendsync_lease_unowned_partitions":       dto.MetricType_GAUGE,     // partitions without owner
	"friendsync_queue_consumer_pending":         dto.MetricType_GAUGE,     // consumer pending
	"friendsync_queue_consumer_ack_pending":     dto.MetricType_GAUGE,     // consumer ack-pending
	"friendsync_queue_dlq_publish_errors_total": dto.MetricType_COUNTER,
}

// allowedLabels are the only label names friendsync metrics may carry
// (STYLE: never user or account ids), plus the queue's settle action and
// the lease, version-store and delivery reason/op/result/event kinds.
var allowedLabels = []string{"vendor", "api", "lane", "class", "outcome", "reason", "budget",
	"action", "event", "op", "result"}

// TestWorkerMetrics runs one demo worker and checks its registry: promlint
// clean, every required series present with the right type, no summaries,
// label names from the allowed set, no account id of the traffic in any
// scraped label value, and JSON logs without secrets.
func TestWorkerMetrics(t *testing.T) {
	w := startDemoWorker(t, 300)

	// Record the accounts of the traffic as it is published.
	nc, err := nats.Connect("nats://" + w.cfg.EmbeddedNATSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	ids := map[string]bool{}
	sub, err := nc.Subscribe(w.cfg.Layout().Subjects(), func(m *nats.Msg) {
		ev, err := event.Decode(m.Data)
		if err != nil {
			return
		}
		mu.Lock()
		ids[ev.From], ids[ev.To] = true, true
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	page := newStatusPage(w.reg, "", nil)
	statusWaitFor(t, 30*time.Second, "vendor calls of every vendor", func() bool {
		st, err := page.Stats()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range st.Calls {
			if c.Total > 0 {
				seen[c.Vendor] = true
			}
		}
		return len(seen) == 3 && st.Totals.Acked > 0
	})

	t.Run("promlint", func(t *testing.T) {
		problems, err := testutil.GatherAndLint(w.reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	})

	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}

	t.Run("required series", func(t *testing.T) {
		if registered(w.reg, "friendsync_no_such_metric") {
			t.Fatal("registered() finds a metric that does not exist")
		}
		for name, typ := range requiredMetrics {
			if !registered(w.reg, name) {
				t.Errorf("%s is not registered", name)
				continue
			}
			// A vector without children (e.g. no retry yet) is not gathered.
			if mf, ok := byName[name]; ok && mf.GetType() != typ {
				t.Errorf("%s is a %v, want %v", name, mf.GetType(), typ)
			}
		}
		for _, name := range statusMetrics {
			if !registered(w.reg, name) {
				t.Errorf("the status page reads %s, which the worker does not export", name)
			}
		}
	})

	t.Run("conventions", func(t *testing.T) {
		for _, mf := range mfs {
			name := mf.GetName()
			if !strings.HasPrefix(name, "friendsync_") {
				continue
			}
			if mf.GetType() == dto.MetricType_SUMMARY {
				t.Errorf("%s is a summary; use a histogram", name)
			}
			if (mf.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
				t.Errorf("%s: type %v; _total is for counters only", name, mf.GetType())
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if !slices.Contains(allowedLabels, l.GetName()) {
						t.Errorf("%s has label %q outside %v", name, l.GetName(), allowedLabels)
					}
				}
			}
		}
	})

	t.Run("no account ids in labels", func(t *testing.T) {
		resp, err := http.Get(w.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		scraped, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		accounts := make([]string, 0, len(ids))
		for id := range ids {
			accounts = append(accounts, id)
		}
		mu.Unlock()
		if len(accounts) < 20 {
			t.Fatalf("only %d accounts seen in the traffic", len(accounts))
		}
		values := 0
		for name, mf := range scraped {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					values++
					for _, id := range accounts {
						if strings.Contains(l.GetValue(), id) {
							t.Errorf("%s{%s=%q} contains account id %q", name, l.GetName(), l.GetValue(), id)
						}
					}
				}
			}
		}
		if values == 0 {
			t.Fatal("scrape has no labels")
		}
	})

	t.Run("json logs without secrets", func(t *testing.T) {
		logs := w.logs.String()
		lines := strings.Split(strings.TrimSpace(logs), "\n")
		if len(lines) < 5 {
			t.Fatalf("only %d log lines", len(lines))
		}
		for i, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %d is not JSON: %v: %s", i, err, line)
			}
			for _, k := range []string{"time", "level", "msg", "worker"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("log line %d lacks %q: %s", i, k, line)
				}
			}
		}
		for _, secret := range []string{vendorsim.DemoTencentKey, vendorsim.DemoVolcSecretKey, vendorsim.DemoZegoServerSecret,
			"UserSig", "Authorization", "Signature="} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %q", secret)
			}
		}
	})
}

// registered reports whether reg holds a collector describing name: a probe
// of that name registers only when it does not.
func registered(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "registration probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}
