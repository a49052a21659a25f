package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/queue"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/worker"
	"github.com/friendsync/friendsync/producer"
)

// The simulated vendor accounts: one app per vendor.
const (
	appTencent = "tx"
	appVolc    = "vc"
	appZego    = "zg"

	tencentSDKAppID = 1400000201
	tencentKey      = "cluster-tencent-key-00112233445566778899aabbccddeeff"
	tencentAdmin    = "administrator"
	volcAK          = "AKLTclusterAccessKey01"
	volcSK          = "cluster-volc-secret-key"
	volcAppID       = 525252
	zegoAppID       = 41414
	zegoSecret      = "00112233445566778899aabbccddeeff"

	// Volcengine documents no QPS: the limiter's budget and the
	// simulator's limit.
	volcRate  = 300
	volcBurst = 10
	volcLimit = 330

	// Timings shortened for tests (production: TTL 30 s, vendor timeout
	// 5 s, failover 5 s). TTL > 2 × (vendor timeout + TTL/6) + failover:
	// 10 s > 2 × (1.5 s + 1.67 s) + 3 s. A worker keeps calling vendors for
	// a partition until 7.5 s after its last confirmed renew, so a NATS
	// node failover of a few seconds must not drop any lease.
	leaseTTL      = 10 * time.Second
	leaseFailover = 3 * time.Second
	vendorTimeout = 1500 * time.Millisecond
	ackWait       = 10 * time.Second
	partitions    = 8
	replicas      = 3

	// inProcessBase is the host the workers' clients address; the
	// simulator's Transport answers it without sockets.
	inProcessBase = "http://vendorsim.invalid"
)

// apps are the three apps as the workload and the comparison with the
// simulator's state see them.
var apps = prooftest.Apps{
	{Name: appTencent, Vendor: event.Tencent, SimID: strconv.Itoa(tencentSDKAppID)},
	{Name: appVolc, Vendor: event.Volc, SimID: strconv.Itoa(volcAppID)},
	{Name: appZego, Vendor: event.Zego, SimID: strconv.Itoa(zegoAppID)},
}

// vendorCalls maps the simulator's path prefix to the app using it and
// the body field naming the account (From_Account, UserId, FromUserId).
var vendorCalls = map[string]struct{ app, fromField string }{
	"/tencent/": {appTencent, "From_Account"},
	"/volc/":    {appVolc, "UserId"},
	"/zego/":    {appZego, "FromUserId"},
}

func newSim(t *testing.T) *vendorsim.Sim {
	t.Helper()
	// A little latency keeps calls in flight when the node stops.
	spec := vendorsim.FaultSpec{Latency: vendorsim.Duration(10 * time.Millisecond), Jitter: vendorsim.Duration(20 * time.Millisecond), Seed: 11}
	sim, err := vendorsim.New(vendorsim.Config{
		Tencent: map[uint64]vendorsim.TencentApp{tencentSDKAppID: {Key: tencentKey, Admin: tencentAdmin}},
		Volc:    map[string]vendorsim.VolcAccount{volcAK: {SecretKey: volcSK, AppIDs: []int64{volcAppID}}},
		Zego:    map[uint32]string{zegoAppID: zegoSecret},
		VolcQPS: volcLimit,
		Faults:  map[event.Vendor]vendorsim.FaultSpec{event.Tencent: spec, event.Volc: spec, event.Zego: spec},
	})
	if err != nil {
		t.Fatalf("vendorsim: %v", err)
	}
	return sim
}

func newProfiles(t *testing.T) config.Profiles {
	t.Helper()
	timeout := config.Duration(vendorTimeout)
	ps := config.Profiles{
		appTencent: {Name: appTencent, Vendor: event.Tencent, Timeout: timeout,
			Tencent:    &config.TencentProfile{BaseURL: inProcessBase + "/tencent", SDKAppID: tencentSDKAppID, Identifier: tencentAdmin},
			TencentKey: tencentKey},
		appVolc: {Name: appVolc, Vendor: event.Volc, Timeout: timeout,
			Volc:       &config.VolcProfile{BaseURL: inProcessBase + "/volc", AccessKey: volcAK, AppID: volcAppID, SendAlias: true},
			VolcSecret: volcSK, Budget: config.BudgetConfig{Rate: volcRate, Burst: volcBurst}},
		appZego: {Name: appZego, Vendor: event.Zego, Timeout: timeout,
			Zego:       &config.ZegoProfile{BaseURL: inProcessBase + "/zego", AppID: zegoAppID},
			ZegoSecret: zegoSecret},
	}
	if err := ps.Validate(); err != nil {
		t.Fatalf("profiles: %v", err)
	}
	return ps
}

// deployment is one test's system: a NATS cluster, a unique layout and
// Redis prefix, the simulator, the workers and the test's own connection.
type deployment struct {
	t        *testing.T
	nodes    *testenv.NATSCluster
	name     string
	layout   event.Layout
	redisURL string
	prefix   string
	sim      *vendorsim.Sim
	profiles config.Profiles
	nc       *nats.Conn
	js       jetstream.JetStream
	calls    *callLog
	logs     *prooftest.LogSink
	workers  []*inproc
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	name := strings.ToLower(testenv.Unique("scale"))
	d := &deployment{t: t, name: name, layout: event.Layout{Base: name}, prefix: name + ":",
		calls: &callLog{}, logs: prooftest.NewLogSink(t, prooftest.LogSinkOptions{Level: slog.LevelWarn, Tail: 60})}
	rdb := testenv.Redis(t, d.prefix) // fails with the start command; deletes the keys at cleanup
	d.redisURL = "redis://" + rdb.Options().Addr
	d.nodes = testenv.StartNATSCluster(t, 3)
	nc, err := nats.Connect(d.nodes.URL(), nats.Name("clustertest "+t.Name()), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", d.nodes.URL(), err)
	}
	t.Cleanup(nc.Close)
	d.nc = nc
	if d.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	d.sim = newSim(t)
	d.profiles = newProfiles(t)
	return d
}

// config is a worker's configuration: short timings, three replicas,
// NATS through url.
func (d *deployment) config(id, url string) config.Config {
	cfg := config.Defaults()
	cfg.WorkerID = id
	cfg.Name = d.name
	cfg.NATSURL = url
	cfg.RedisURL = config.Secret(d.redisURL)
	cfg.RedisPrefix = d.prefix
	cfg.Profiles = d.profiles
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Partitions = partitions
	cfg.Replicas = replicas
	cfg.AckWait = config.Duration(ackWait)
	cfg.Grace = config.Duration(20 * time.Millisecond)
	cfg.MaxDelay = config.Duration(200 * time.Millisecond)
	cfg.RetryBudget = config.Duration(2 * time.Second)
	cfg.LeaseTTL = config.Duration(leaseTTL)
	cfg.LeaseFailover = config.Duration(leaseFailover)
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	return cfg
}

// ensureTopology creates the partition streams, their consumers and the
// meta bucket as a worker does at start, retrying for up to 30 s, and
// returns the errors of the attempts that failed. On a fresh three-node
// cluster the first read of the just-created R3 meta bucket can fail with
// "no responders" (its replicas are not serving yet), which would stop a
// worker at start.
func (d *deployment) ensureTopology() []string {
	d.t.Helper()
	cfg := d.config("ensure", d.nodes.URL())
	qcfg := queue.Config{Layout: d.layout, Partitions: cfg.Partitions, Replicas: cfg.Replicas,
		AckWait: time.Duration(cfg.AckWait), MaxDeliver: cfg.MaxDeliver}
	var failed []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := queue.Ensure(ctx, d.js, qcfg)
		cancel()
		if err == nil {
			return failed
		}
		failed = append(failed, err.Error())
		if time.Now().After(deadline) {
			d.t.Fatalf("queue.Ensure on the cluster failed for 30s: %s", strings.Join(failed, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// inproc is a worker.Run in this process.
type inproc struct {
	id     string
	node   int // the node it was given
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

// startWorker runs worker id connected to node (its only seed URL: the
// client learns the other nodes from the server and fails over to them;
// a list would be shuffled by the client, so the node would be random).
func (d *deployment) startWorker(id string, node int) *inproc {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	w := &inproc{id: id, node: node, cancel: cancel, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	deps := worker.Deps{
		Logger:          d.logs.Logger(id),
		Registry:        w.reg,
		VendorTransport: d.calls.transport(id, d.sim.Transport()),
		Queue:           queue.Config{IdleWait: 250 * time.Millisecond, RetryBase: 500 * time.Millisecond, RetryMax: 4 * time.Second},
		Ready:           ready,
	}
	go func() { w.done <- worker.Run(ctx, d.config(id, d.nodes.URLs()[node]), deps) }()
	select {
	case <-ready:
	case err := <-w.done:
		cancel()
		d.t.Fatalf("worker %s did not start: %v", id, err)
	case <-time.After(60 * time.Second):
		cancel()
		d.t.Fatalf("worker %s not ready after 60s", id)
	}
	d.workers = append(d.workers, w)
	return w
}

// stopWorkers cancels every worker and waits for them (in parallel).
func (d *deployment) stopWorkers() {
	for _, w := range d.workers {
		w.cancel()
	}
	for _, w := range d.workers {
		select {
		case err := <-w.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				d.t.Errorf("worker %s: Run: %v", w.id, err)
			}
		case <-time.After(30 * time.Second):
			d.t.Errorf("worker %s: Run did not return 30s after cancel", w.id)
		}
	}
	d.workers = nil
}

// metric sums the series of a metric family in the worker's registry
// whose labels include every pair of match.
func (w *inproc) metric(name string, match map[string]string) float64 {
	mfs, err := w.reg.Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == k && lp.GetValue() == v
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// connectedTo returns, per worker id, the name of the node its NATS
// connection is on (from each running node's connection list).
func (d *deployment) connectedTo() map[string]string {
	out := map[string]string{}
	for _, s := range d.nodes.Servers {
		if !s.Running() {
			continue
		}
		cz, err := s.Connz(&server.ConnzOptions{Limit: 1000})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if id, ok := strings.CutPrefix(c.Name, "friendsync-worker "); ok {
				out[id] = s.Name()
			}
		}
	}
	return out
}

// roles is who leads the replicated streams at one moment.
type roles struct {
	partitions []string // the leader of each partition stream
	leases     string   // the leader of the lease bucket's stream
}

// leads is the number of partition streams node leads.
func (r roles) leads(node string) int {
	n := 0
	for _, l := range r.partitions {
		if l == node {
			n++
		}
	}
	return n
}

// led names the partition streams node leads, for the log.
func (r roles) led(l event.Layout, node string) []string {
	var out []string
	for p, n := range r.partitions {
		if n == node {
			out = append(out, l.PartitionStream(p))
		}
	}
	return out
}

// leaders reads the leader of every partition stream and of the lease
// bucket, checking that each has its replicas.
func (d *deployment) leaders(ctx context.Context) (roles, error) {
	names := make([]string, 0, partitions+1)
	for p := range partitions {
		names = append(names, d.layout.PartitionStream(p))
	}
	names = append(names, "KV_"+jobs.LeaseBucket(d.layout))
	var r roles
	for i, name := range names {
		s, err := d.js.Stream(ctx, name)
		if err != nil {
			return roles{}, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return roles{}, fmt.Errorf("stream %s: info: %w", name, err)
		}
		if info.Config.Replicas != replicas {
			return roles{}, fmt.Errorf("stream %s has %d replicas, want %d", name, info.Config.Replicas, replicas)
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return roles{}, fmt.Errorf("stream %s has no leader", name)
		}
		if i < partitions {
			r.partitions = append(r.partitions, info.Cluster.Leader)
		} else {
			r.leases = info.Cluster.Leader
		}
	}
	return r, nil
}

// vacate asks every partition stream that node leads to step down (the
// server hands the leadership to another replica, as an operator does
// before taking a node down) and waits until node leads none.
func (d *deployment) vacate(node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r, err := d.leaders(ctx)
		cancel()
		if err == nil && r.leads(node) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("vacate %s: %w", node, err)
			}
			return fmt.Errorf("vacate %s: it still leads %v after %s", node, r.led(d.layout, node), timeout)
		}
		if err == nil {
			for _, name := range r.led(d.layout, node) {
				resp, err := d.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+name, nil, 3*time.Second)
				if err != nil {
					d.t.Logf("step down %s: %v", name, err)
					continue
				}
				var res struct {
					Success bool `json:"success"`
					Error   *struct {
						Description string `json:"description"`
					} `json:"error"`
				}
				if err := json.Unmarshal(resp.Data, &res); err != nil || !res.Success {
					d.t.Logf("step down %s: %s", name, resp.Data)
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// leaseOwners reads the owner (worker id) of every partition's lease key.
func (d *deployment) leaseOwners(ctx context.Context) (map[int]string, error) {
	return prooftest.LeaseOwners(ctx, d.js, d.layout, partitions)
}

// waitOwned waits until every partition is leased and every worker owns
// at least one.
func (d *deployment) waitOwned(timeout time.Duration) map[int]string {
	d.t.Helper()
	ids := make([]string, 0, len(d.workers))
	for _, w := range d.workers {
		ids = append(ids, w.id)
	}
	return prooftest.WaitOwned(d.t, d.js, d.layout, partitions, ids, timeout)
}

// ownershipSampler reads each worker's own count of held leases
// (friendsync_lease_owned_partitions) every 50 ms, and the lease bucket
// every 250 ms. Read its figures after end.
type ownershipSampler struct {
	mu      sync.Mutex // guards the figures below while sampling
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
	samples int
	maxSum  float64
	over    []string // samples where the workers together claimed more than P
	kvErrs  int
	moves   int // changes of a partition's owner seen in the bucket
}

func (d *deployment) sampleOwnership() *ownershipSampler {
	s := &ownershipSampler{stop: make(chan struct{}), done: make(chan struct{})}
	workers := slices.Clone(d.workers)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the workers' own counts, every 50 ms
		defer wg.Done()
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
			sum, per := 0.0, make([]string, 0, len(workers))
			for _, w := range workers {
				n := w.metric("friendsync_lease_owned_partitions", nil)
				sum += n
				per = append(per, fmt.Sprintf("%s=%.0f", w.id, n))
			}
			s.mu.Lock()
			s.samples++
			s.maxSum = max(s.maxSum, sum)
			if sum > partitions && len(s.over) < 5 {
				s.over = append(s.over, fmt.Sprintf("%s: %s", time.Now().Format("15:04:05.000"), strings.Join(per, " ")))
			}
			s.mu.Unlock()
		}
	}()
	go func() { // the bucket, every 250 ms
		defer wg.Done()
		last := map[int]string{}
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			owners, err := d.leaseOwners(ctx)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.kvErrs++
			}
			for p, o := range owners {
				if prev, ok := last[p]; ok && prev != o {
					s.moves++
				}
				last[p] = o
			}
			s.mu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s
}

// end stops the sampling (once) and waits for it.
func (s *ownershipSampler) end() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// ---- vendor calls per partition ----

// call is one vendor request a worker made: which partition it was for
// and when it was in flight (from before the request was handed to the
// transport until the answer came back, so never shorter than the call).
type call struct {
	worker     string
	partition  int
	start, end time.Time
}

// callLog records every vendor request of every worker.
type callLog struct {
	mu       sync.Mutex
	calls    []call
	unparsed int
}

// transport wraps next, recording worker's requests.
func (l *callLog) transport(worker string, next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		p, ok := partitionOf(r)
		resp, err := next.RoundTrip(r)
		end := time.Now()
		l.mu.Lock()
		if ok {
			l.calls = append(l.calls, call{worker: worker, partition: p, start: start, end: end})
		} else {
			l.unparsed++
		}
		l.mu.Unlock()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// partitionOf reads the app from the path and the account from the body
// (Tencent From_Account, Volcengine UserId, ZEGO FromUserId) and returns
// the account's partition. It puts the body back.
func partitionOf(r *http.Request) (int, bool) {
	app, field := "", ""
	for prefix, v := range vendorCalls {
		if strings.HasPrefix(r.URL.Path, prefix) {
			app, field = v.app, v.fromField
		}
	}
	if app == "" || r.Body == nil {
		return 0, false
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return 0, false
	}
	from := strings.Trim(string(top[field]), `"`)
	if from == "" {
		return 0, false
	}
	return event.Partition(app, from, partitions), true
}

// overlaps returns the pairs of calls for one partition from two workers
// that were in flight at the same time (up to 5 examples), the number of
// partitions whose calls came from more than one worker, and the calls.
func (l *callLog) overlaps() (bad []string, handedOver, total int) {
	l.mu.Lock()
	calls := slices.Clone(l.calls)
	l.mu.Unlock()
	slices.SortFunc(calls, func(a, b call) int { return a.start.Compare(b.start) })
	type open struct {
		end time.Time
		c   call
	}
	latest := map[int]map[string]open{} // partition → worker → its call ending last so far
	n := 0
	for _, c := range calls {
		ws := latest[c.partition]
		if ws == nil {
			ws = map[string]open{}
			latest[c.partition] = ws
		}
		for w, o := range ws {
			if w != c.worker && o.end.After(c.start) {
				n++
				if len(bad) < 5 {
					bad = append(bad, fmt.Sprintf("partition %d: %s in flight %s–%s, %s started %s",
						c.partition, w, o.c.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"),
						c.worker, c.start.Format("15:04:05.000")))
				}
			}
		}
		if o, ok := ws[c.worker]; !ok || c.end.After(o.end) {
			ws[c.worker] = open{c.end, c}
		}
	}
	for _, ws := range latest {
		if len(ws) > 1 {
			handedOver++
		}
	}
	if n > len(bad) {
		bad = append(bad, fmt.Sprintf("… %d overlapping pairs in all", n))
	}
	return bad, handedOver, len(calls)
}

// ---- workload ----

// newWorkload makes a mixed workload: accounts of the three apps (shares
// 45/47/8 %), 1–2 friends each, 1–3 updates per friend of remark, groups
// (Tencent) and attributes, with clears; 10 % on the bulk lane with ts an
// hour or two old, the rest live with ts within the last ten minutes;
// shuffled. Every event carries an explicit, unique ts, unrelated to the
// publish order, so the newest value wins only if the worker compares
// versions, and the events can be published asynchronously (a retried
// publish may land out of order).
func newWorkload(accounts int, seed uint64) *prooftest.Workload {
	return prooftest.NewWorkload(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), prooftest.Mix{
		Accounts: accounts,
		Apps:     apps,
		Shares:   []float64{0.45, 0.47, 0.08},
		Versions: prooftest.AllExplicit,
	})
}

// publishPaced publishes evs spread over about dur, asynchronously in
// chunks; a publish that fails or is not acknowledged within 5 s (a node
// going away) is retried with the same event id, so the partition
// stream's deduplication keeps one copy. onProgress gets the count after
// each chunk.
func (d *deployment) publishPaced(ctx context.Context, evs []prooftest.Planned, dur time.Duration, onProgress func(int)) error {
	p, err := producer.New(ctx, d.nc, producer.Config{Layout: d.layout, Apps: d.profiles.Rules(), Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	start := time.Now()
	per := dur / time.Duration(max(1, len(evs)))
	const chunk = 100
	retried := 0
	for i := 0; i < len(evs); i += chunk {
		var todo []int
		for j := i; j < min(i+chunk, len(evs)); j++ {
			todo = append(todo, j)
		}
		for len(todo) > 0 {
			futures := make(map[int]jetstream.PubAckFuture, len(todo))
			var failed []int
			for _, j := range todo {
				f, err := p.PublishAsync(&evs[j].Ev, producer.WithLane(evs[j].Lane))
				if err != nil {
					failed = append(failed, j)
					continue
				}
				futures[j] = f
			}
			ackCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			for j, f := range futures {
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, j)
				case <-ackCtx.Done():
					failed = append(failed, j)
				}
			}
			cancel()
			if ctx.Err() != nil {
				return fmt.Errorf("publish: %w (after %d retries)", ctx.Err(), retried)
			}
			if len(failed) > 0 {
				retried += len(failed)
				select {
				case <-ctx.Done():
					return fmt.Errorf("publish: %w (after %d retries)", ctx.Err(), retried)
				case <-time.After(100 * time.Millisecond):
				}
			}
			todo = failed
		}
		n := min(i+chunk, len(evs))
		onProgress(n)
		if wait := time.Until(start.Add(per * time.Duration(n))); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// ---- observing the result ----

// pending sums the unprocessed and unacknowledged messages of every
// consumer; -1 when one cannot be read.
func (d *deployment) pending(ctx context.Context) int {
	return prooftest.Pending(ctx, d.js, d.layout, partitions)
}

// diff counts the friends whose simulator state differs from want, with
// up to 5 examples.
func (d *deployment) diff(want map[prooftest.FriendKey]vendorsim.Friend) (int, []string) {
	return prooftest.Diff(d.sim, apps, want)
}

// waitApplied waits until the simulator holds want and nothing is pending.
func (d *deployment) waitApplied(want map[prooftest.FriendKey]vendorsim.Friend, timeout time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pend := d.pending(ctx)
		cancel()
		bad, ex := d.diff(want)
		if bad == 0 && pend == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			d.t.Fatalf("not applied after %s: %d of %d friends differ, %d messages pending; e.g.\n  %s",
				timeout, bad, len(want), pend, strings.Join(ex, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// deadLetters reads every entry of the DLQ stream as "reason detail".
func (d *deployment) deadLetters() []string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := prooftest.ReadDLQ(ctx, d.js, d.layout)
	if err != nil {
		d.t.Fatalf("dlq: %v", err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s %s (worker %s, delivered %s): %.100s", m.Header.Get(jobs.HdrReason),
			m.Header.Get(jobs.HdrDetail), m.Header.Get(jobs.HdrWorker), m.Header.Get(jobs.HdrDelivered), m.Data))
	}
	return out
}

// checkVendorInvariants asserts what the simulator saw: every vendor was
// called, no overlapping writes for one account, no write conflicts, no
// 1-second window over a budget's limit. It logs the figures.
func (d *deployment) checkVendorInvariants() {
	d.t.Helper()
	prooftest.CheckVendorInvariants(d.t, d.sim.Counters(), true)
}
