package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
)

// Short test timing: 2 × (300ms + 200ms) + 500ms = 1.5s < TTL 2s; the fence
// is 2s − 300ms − 100ms = 1.6s after each confirmed renew.
func testConfig(id string, p int) Config {
	return Config{
		WorkerID: id, Partitions: p,
		TTL: 2 * time.Second, RenewEvery: 200 * time.Millisecond, PollEvery: 200 * time.Millisecond,
		VendorTimeout: 300 * time.Millisecond, Margin: 100 * time.Millisecond, Failover: 500 * time.Millisecond,
		ReleaseTimeout: 2 * time.Second,
	}
}

// event kinds recorded by the callbacks.
const (
	kAcquired = "acquired" // Acquired called
	kCtxDone  = "ctx-done" // the partition's context ended (lost or released)
	kRelease  = "release"  // Release called
)

type record struct {
	at     time.Time
	worker string
	p      int
	kind   string
}

// recorder keeps a timeline of callback events across managers.
type recorder struct {
	mu      sync.Mutex
	records []record
	// failRelease makes a worker's Release report "not drained".
	failRelease map[string]bool
}

func (r *recorder) add(worker string, p int, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, record{at: time.Now(), worker: worker, p: p, kind: kind})
}

func (r *recorder) snapshot() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

func (r *recorder) count(worker, kind string) int { return r.countSince(worker, kind, time.Time{}) }

// countSince counts worker's records of kind at or after t.
func (r *recorder) countSince(worker, kind string, t time.Time) int {
	n := 0
	for _, rec := range r.snapshot() {
		if rec.worker == worker && rec.kind == kind && !rec.at.Before(t) {
			n++
		}
	}
	return n
}

// firstAfter is the first record of kind for p by a worker other than not,
// at or after t.
func (r *recorder) firstAfter(p int, kind, not string, t time.Time) (record, bool) {
	for _, rec := range r.snapshot() {
		if rec.p == p && rec.kind == kind && rec.worker != not && !rec.at.Before(t) {
			return rec, true
		}
	}
	return record{}, false
}

func (r *recorder) callbacks(worker string) Callbacks {
	return Callbacks{
		Acquired: func(ctx context.Context, p int) {
			r.add(worker, p, kAcquired)
			go func() {
				<-ctx.Done()
				r.add(worker, p, kCtxDone)
			}()
		},
		Release: func(ctx context.Context, p int) error {
			r.add(worker, p, kRelease)
			r.mu.Lock()
			fail := r.failRelease[worker]
			r.mu.Unlock()
			if fail {
				return errors.New("in-flight call did not finish")
			}
			return nil
		},
	}
}

// cluster is a set of managers over one per-test bucket.
type cluster struct {
	t      *testing.T
	js     jetstream.JetStream
	layout event.Layout
	p      int
	rec    *recorder
	// keepBucket skips deleting the bucket at cleanup (a throwaway server
	// that is already down by then).
	keepBucket bool

	mu    sync.Mutex
	nodes []*node
}

type node struct {
	id     string
	m      *Manager
	met    *Metrics
	cancel context.CancelFunc
	done   chan error
}

func newCluster(t *testing.T, js jetstream.JetStream, p int) *cluster {
	t.Helper()
	c := &cluster{t: t, js: js, layout: event.Layout{Base: strings.ToLower(testenv.Unique("lease"))}, p: p, rec: &recorder{failRelease: map[string]bool{}}}
	t.Cleanup(func() {
		if c.keepBucket {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, jobs.LeaseBucket(c.layout))
	})
	return c
}

func (c *cluster) bucket() string { return jobs.LeaseBucket(c.layout) }

func (c *cluster) kv() jetstream.KeyValue {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, jobs.LeaseBucket(c.layout))
	if err != nil {
		c.t.Fatalf("open bucket: %v", err)
	}
	return kv
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("LEASE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// start runs a manager with testConfig timing (mod may change it).
func (c *cluster) start(id string, mod func(*Config)) *node {
	c.t.Helper()
	cfg := testConfig(id, c.p)
	cfg.Layout = c.layout
	if mod != nil {
		mod(&cfg)
	}
	met := NewMetrics(prometheus.NewRegistry())
	m, err := New(c.js, cfg, c.rec.callbacks(id), testLogger(c.t), met)
	if err != nil {
		c.t.Fatalf("New(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{id: id, m: m, met: met, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- m.Run(ctx) }()
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.t.Cleanup(func() {
		m.crash() // no-op after a graceful stop; ends a crashed-or-running node fast
		cancel()
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			c.t.Errorf("manager %s did not stop", id)
		}
	})
	return n
}

// stop ends Run gracefully and returns its result.
func (n *node) stop(t *testing.T) error {
	t.Helper()
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err // keep it for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("manager %s: Run did not return after cancel", n.id)
		return nil
	}
}

func (c *cluster) all() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// owners maps each partition to the nodes that hold it (Owned) among ns.
func owners(ns []*node, p int) [][]string {
	out := make([][]string, p)
	for _, n := range ns {
		for _, q := range n.m.Owned() {
			if q >= 0 && q < p {
				out[q] = append(out[q], n.id)
			}
		}
	}
	return out
}

// balanced reports whether every partition is held and valid at exactly
// one of ns, and each holds want partitions.
func balanced(ns []*node, p int, want []int) (bool, string) {
	own := owners(ns, p)
	for q, o := range own {
		if len(o) != 1 {
			return false, fmt.Sprintf("partition %d owners %v", q, o)
		}
	}
	for i, n := range ns {
		got := n.m.Owned()
		if len(got) != want[i] {
			return false, fmt.Sprintf("%s owns %v, want %d partitions", n.id, got, want[i])
		}
		for _, q := range got {
			if !n.m.Valid(q) {
				return false, fmt.Sprintf("%s holds %d but Valid is false", n.id, q)
			}
		}
	}
	return true, ""
}

// eventually polls cond every 10ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s: %s", timeout, what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sampler checks Valid on every node for every partition every ~1ms and
// records any instant where two nodes both consider a partition valid, and
// the last instant each node considered each partition valid.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}

	mu         sync.Mutex
	samples    int
	violations []string
	lastValid  map[string]map[int]time.Time
	invalidRun map[string]map[int]bool // a node saw p invalid while holding it
}

func startSampler(t *testing.T, c *cluster) *sampler {
	t.Helper()
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{}), lastValid: map[string]map[int]time.Time{}}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-tk.C:
			}
			ns := c.all()
			for p := 0; p < c.p; p++ {
				var valid []string
				for _, n := range ns {
					if n.m.Valid(p) {
						valid = append(valid, n.id)
					}
				}
				now := time.Now()
				s.mu.Lock()
				s.samples++
				for _, id := range valid {
					if s.lastValid[id] == nil {
						s.lastValid[id] = map[int]time.Time{}
					}
					s.lastValid[id][p] = now
				}
				if len(valid) > 1 && len(s.violations) < 20 {
					s.violations = append(s.violations, fmt.Sprintf("%s: partition %d valid at %v", now.Format("15:04:05.000"), p, valid))
				}
				s.mu.Unlock()
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *sampler) stop() {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
}

func (s *sampler) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 {
		t.Fatal("sampler took no samples")
	}
	if len(s.violations) > 0 {
		t.Fatalf("two owners valid at once (%d samples):\n%s", s.samples, strings.Join(s.violations, "\n"))
	}
}

func (s *sampler) last(id string, p int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastValid[id][p]
}

// value reads a gauge or counter (testutil would add dependencies).
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func gauge(g prometheus.Gauge) float64 { return value(g) }

func counter(m *Metrics, ev string) int { return int(value(m.events.WithLabelValues(ev))) }

// natsServer is the environment a test runs on.
type natsServer struct {
	name string
	js   func(t *testing.T) jetstream.JetStream
}

var servers = []natsServer{
	{"machine nats-server 2.9", func(t *testing.T) jetstream.JetStream {
		_, js := testenv.JetStream(t)
		return js
	}},
	{"in-process current nats-server", func(t *testing.T) jetstream.JetStream {
		s := testenv.StartNATSServer(t, testenv.ServerOptions{})
		return connect(t, s.ClientURL())
	}},
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.ReconnectWait(20*time.Millisecond),
		nats.MaxReconnects(-1), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
