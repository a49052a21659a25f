package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/lease"
	"github.com/friendsync/friendsync/internal/queue"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/worker"
	"github.com/friendsync/friendsync/producer"
)

// The simulated apps, one per vendor. The credentials are made up and
// only ever shown to the simulator.
const (
	appTencent = "bench-tencent"
	appVolc    = "bench-volc"
	appZego    = "bench-zego"

	tencentSDKAppID = 1400000301
	tencentAdmin    = "administrator"
	tencentKey      = "fsbench-tencent-key-00112233445566778899aabbccddeeff"
	volcAK          = "AKLTfsbenchAccessKey0001"
	volcSK          = "fsbench-volc-secret-key"
	volcAppID       = 515151
	zegoAppID       = 31339
	zegoSecret      = "fedcba9876543210fedcba9876543210"

	// Volcengine documents no QPS: the limiter's rate and burst, and the
	// simulator's limit (the same as the worker's proof tests).
	volcRate  = 300
	volcBurst = 10
	volcLimit = 330

	// inProcessBase is the host the in-process workers' clients address;
	// the simulator's Transport answers it without sockets.
	inProcessBase = "http://vendorsim.invalid"
)

// Batch caps per vendor API (the coalescer's MaxSize and the optimum's
// divisor): Tencent friend_update 1000, Volcengine UpdateFriend 10, ZEGO
// UpdateFriendsAlias 20.
var vendorCap = map[event.Vendor]int{event.Tencent: 1000, event.Volc: 10, event.Zego: 20}

var appOf = map[event.Vendor]string{event.Tencent: appTencent, event.Volc: appVolc, event.Zego: appZego}

// Simulator budget names (Counters.Vendor(v).Budgets keys).
var (
	simBudgetTencent   = fmt.Sprintf("tencent:%d", tencentSDKAppID)
	simBudgetZegoAlias = fmt.Sprintf("zego:%d:%s", zegoAppID, vendorsim.APIZegoAlias)
	simBudgetZegoAttrs = fmt.Sprintf("zego:%d:%s", zegoAppID, vendorsim.APIZegoAttributes)
)

// scale sizes every measurement; quick is the reduced run.
type scale struct {
	budgetWarm, budgetWindow time.Duration
	batch                    map[event.Vendor][2]int // events, accounts
	tputEvents, tputAccounts int
	latRate                  float64
	latDuration              time.Duration
	latAccounts              int
	memEvents, memAccounts   int
	memSample                time.Duration
	naiveEvents              int
	naiveAccounts            int
	naiveGoroutines          int
	microCount               int
	enqueueN                 int
}

func scaleFor(quick bool) scale {
	if quick {
		return scale{
			budgetWarm: 2 * time.Second, budgetWindow: 4 * time.Second,
			batch:      map[event.Vendor][2]int{event.Tencent: {4_000, 150}, event.Volc: {1_000, 50}, event.Zego: {200, 10}},
			tputEvents: 20_000, tputAccounts: 100,
			latRate: 100, latDuration: 4 * time.Second, latAccounts: 1000,
			memEvents: 100_000, memAccounts: 10_000, memSample: 4 * time.Second,
			naiveEvents: 1_000, naiveAccounts: 100, naiveGoroutines: 32,
			microCount: 1, enqueueN: 20_000,
		}
	}
	return scale{
		budgetWarm: 3 * time.Second, budgetWindow: 10 * time.Second,
		batch:      map[event.Vendor][2]int{event.Tencent: {30_000, 1000}, event.Volc: {6_000, 300}, event.Zego: {1_200, 60}},
		tputEvents: 200_000, tputAccounts: 100,
		latRate: 100, latDuration: 15 * time.Second, latAccounts: 1000,
		memEvents: 1_000_000, memAccounts: 100_000, memSample: 20 * time.Second,
		naiveEvents: 5_000, naiveAccounts: 500, naiveGoroutines: 32,
		microCount: 3, enqueueN: 100_000,
	}
}

// env holds a run's connections.
type env struct {
	opts  Options
	sc    scale
	log   *slog.Logger
	wlog  *slog.Logger // in-process workers
	nc    *nats.Conn
	js    jetstream.JetStream
	rdb   *redis.Client
	redis string // RedisURL for workers
}

func newEnv(ctx context.Context, opts Options) (*env, error) {
	e := &env{opts: opts, sc: scaleFor(opts.Quick), log: opts.Logger, redis: opts.RedisURL,
		wlog: slog.New(slog.NewTextHandler(opts.WorkerLogs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	nc, err := nats.Connect(opts.NATSURL, nats.Name("fsbench"), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("bench: connect nats %s: %w", opts.NATSURL, err)
	}
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	ro, err := redis.ParseURL(opts.RedisURL)
	if err != nil {
		nc.Close()
		return nil, errors.New("bench: redis url does not parse") // it may hold a password
	}
	e.rdb = redis.NewClient(ro)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.rdb.Ping(pctx).Err(); err != nil {
		e.close()
		return nil, fmt.Errorf("bench: redis at %s: %w", ro.Addr, err)
	}
	return e, nil
}

func (e *env) close() {
	if e.rdb != nil {
		e.rdb.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
}

// uniqueName is a fresh layout base ("fsbench-<hex>").
func uniqueName(kind string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "fsbench-" + kind + "-" + hex.EncodeToString(b[:])
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// deployment is one measurement's cluster: a unique layout and Redis
// prefix, one simulator, in-process workers.
type deployment struct {
	e          *env
	name       string
	layout     event.Layout
	prefix     string
	sim        *vendorsim.Sim
	profiles   config.Profiles
	partitions int
	workers    []*inproc
	regs       []*prometheus.Registry // the workers' metrics
	queue      queue.Config           // deployOpts.queue
}

type deployOpts struct {
	// sim adjusts the simulator's config (defaults: the documented QPS
	// limits, WriteTime 5 ms).
	sim func(*vendorsim.Config)
	// budgets overrides an app's limiter budget (default: the worker's
	// defaults, Tencent 180 + 10, ZEGO 17 + 2 per API).
	budgets map[string]config.BudgetConfig
	// queue overrides queue settings of the workers (worker.Deps.Queue);
	// zero fields keep the production defaults.
	queue queue.Config
}

func simConfig(mutate func(*vendorsim.Config)) vendorsim.Config {
	cfg := vendorsim.Config{
		Tencent: map[uint64]vendorsim.TencentApp{tencentSDKAppID: {Key: tencentKey, Admin: tencentAdmin}},
		Volc:    map[string]vendorsim.VolcAccount{volcAK: {SecretKey: volcSK, AppIDs: []int64{volcAppID}}},
		Zego:    map[uint32]string{zegoAppID: zegoSecret},
		VolcQPS: volcLimit,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// benchProfiles are the three apps with their vendors at base.
func benchProfiles(base string, budgets map[string]config.BudgetConfig) config.Profiles {
	ps := config.Profiles{
		appTencent: {Name: appTencent, Vendor: event.Tencent,
			Tencent:    &config.TencentProfile{BaseURL: base + "/tencent", SDKAppID: tencentSDKAppID, Identifier: tencentAdmin},
			TencentKey: tencentKey},
		appVolc: {Name: appVolc, Vendor: event.Volc,
			Volc:       &config.VolcProfile{BaseURL: base + "/volc", AccessKey: volcAK, AppID: volcAppID, SendAlias: true},
			VolcSecret: volcSK, Budget: config.BudgetConfig{Rate: volcRate, Burst: volcBurst}},
		appZego: {Name: appZego, Vendor: event.Zego,
			Zego:       &config.ZegoProfile{BaseURL: base + "/zego", AppID: zegoAppID},
			ZegoSecret: zegoSecret},
	}
	for app, b := range budgets {
		ps[app].Budget = b
	}
	return ps
}

func (e *env) deploy(kind string, o deployOpts) (*deployment, error) {
	name := uniqueName(kind)
	sim, err := vendorsim.New(simConfig(o.sim))
	if err != nil {
		return nil, fmt.Errorf("bench: simulator: %w", err)
	}
	d := &deployment{e: e, name: name, layout: event.Layout{Base: name}, prefix: name + ":", sim: sim,
		profiles: benchProfiles(inProcessBase, o.budgets), partitions: event.DefaultPartitions, queue: o.queue}
	if err := d.profiles.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// config is the worker configuration: the production defaults (lease TTL
// 30 s, grace 50 ms, max delay 1 s, 32 partitions, …) with the
// deployment's names.
func (d *deployment) config(id string) config.Config {
	cfg := config.Defaults()
	cfg.WorkerID = id
	cfg.Name = d.name
	cfg.NATSURL = d.e.opts.NATSURL
	cfg.RedisURL = config.Secret(d.e.redis)
	cfg.RedisPrefix = d.prefix
	cfg.Profiles = d.profiles
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Partitions = d.partitions
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.LogLevel = "warn"
	return cfg
}

// ensure creates the partition streams, their consumers and the meta
// bucket as a worker would, so a backlog can be published before any
// worker starts.
func (d *deployment) ensure(ctx context.Context) error {
	cfg := d.config("ensure")
	_, err := queue.Ensure(ctx, d.e.js, queue.Config{Layout: d.layout, Partitions: cfg.Partitions,
		Replicas: cfg.Replicas, AckWait: time.Duration(cfg.AckWait), MaxDeliver: cfg.MaxDeliver,
		MaxAckPendingLive: d.queue.MaxAckPendingLive, MaxAckPendingBulk: d.queue.MaxAckPendingBulk})
	return err
}

// inproc is one worker.Run in this process.
type inproc struct {
	id     string
	cancel context.CancelFunc
	done   chan error
}

// start runs n workers (w1…wn); tr gives worker i its vendor transport
// (nil: the simulator's).
func (d *deployment) start(ctx context.Context, n int, tr func(i int) http.RoundTripper) error {
	for i := range n {
		id := fmt.Sprintf("w%d", i+1)
		var t http.RoundTripper = d.sim.Transport()
		if tr != nil {
			t = tr(i)
		}
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		ready := make(chan struct{})
		w := &inproc{id: id, cancel: cancel, done: make(chan error, 1)}
		reg := prometheus.NewRegistry()
		d.regs = append(d.regs, reg)
		deps := worker.Deps{Logger: d.e.wlog.With(slog.String("w", id), slog.String("deployment", d.name)),
			Registry: reg, VendorTransport: t, Ready: ready, Queue: d.queue}
		go func() { w.done <- worker.Run(wctx, d.config(id), deps) }()
		select {
		case <-ready:
		case err := <-w.done:
			cancel()
			return fmt.Errorf("bench: worker %s did not start: %w", id, err)
		case <-time.After(30 * time.Second):
			cancel()
			return fmt.Errorf("bench: worker %s not ready after 30s", id)
		}
		d.workers = append(d.workers, w)
	}
	return d.waitOwned(ctx, 90*time.Second)
}

// waitOwned waits until every partition is leased and each worker owns
// its fair share (at most ceil(P/n), at least one).
func (d *deployment) waitOwned(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	n := len(d.workers)
	fair := (d.partitions + n - 1) / n
	var last map[string]int
	for {
		owners, err := d.leaseOwners(ctx)
		if err == nil && len(owners) == d.partitions {
			per := map[string]int{}
			for _, o := range owners {
				per[o]++
			}
			ok := true
			for _, w := range d.workers {
				if per[w.id] < 1 || per[w.id] > fair {
					ok = false
				}
			}
			if ok {
				return nil
			}
			last = per
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: partitions not balanced after %s: %v (err %v)", timeout, last, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *deployment) leaseOwners(ctx context.Context) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	kv, err := d.e.js.KeyValue(ctx, jobs.LeaseBucket(d.layout))
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for p := range d.partitions {
		en, err := kv.Get(ctx, lease.PartitionKey(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		owner, _, _ := strings.Cut(string(en.Value()), "/")
		out[p] = owner
	}
	return out, nil
}

// stop cancels every worker and waits for Run to return.
func (d *deployment) stop() error {
	for _, w := range d.workers {
		w.cancel()
	}
	var errs []error
	for _, w := range d.workers {
		select {
		case err := <-w.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("bench: worker %s: %w", w.id, err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("bench: worker %s did not stop 30s after cancel", w.id))
		}
	}
	d.workers = nil
	return errors.Join(errs...)
}

// cleanup stops the workers and deletes the deployment's streams, buckets
// and Redis keys.
func (d *deployment) cleanup() {
	if err := d.stop(); err != nil {
		d.e.log.Warn("stop workers", slog.Any("error", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range append(d.eventStreams(ctx), jobs.DLQStream(d.layout)) {
		if err := d.e.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			d.e.log.Warn("delete stream", slog.String("stream", s), slog.Any("error", err))
		}
	}
	for _, b := range []string{d.layout.MetaBucket(), jobs.LeaseBucket(d.layout)} {
		if err := d.e.js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			d.e.log.Warn("delete bucket", slog.String("bucket", b), slog.Any("error", err))
		}
	}
	deleteKeys(ctx, d.e.rdb, d.prefix)
}

// eventStreams names the streams that capture the deployment's event
// subjects: its partition streams (listed by subject, so that every one
// is found whatever P the meta bucket held), or, when they cannot be
// listed, the partition streams of d.partitions.
func (d *deployment) eventStreams(ctx context.Context) []string {
	names := d.e.js.StreamNames(ctx, jetstream.WithStreamListSubject(d.layout.Subjects()))
	var out []string
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		d.e.log.Warn("list streams", slog.String("subjects", d.layout.Subjects()), slog.Any("error", err))
		out = out[:0]
		for p := range d.partitions {
			out = append(out, d.layout.PartitionStream(p))
		}
	}
	return out
}

func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string) {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		_ = rdb.Del(ctx, keys[:n]...).Err()
		keys = keys[n:]
	}
}

// producer publishes to the deployment's partition streams (which must
// exist).
func (d *deployment) producer(ctx context.Context) (*producer.Producer, error) {
	return producer.New(ctx, d.e.nc, producer.Config{Layout: d.layout, Apps: d.profiles.Rules(), MaxPending: 4096})
}

// publishAll publishes evs in order, asynchronously, and waits for every
// ack.
func (d *deployment) publishAll(ctx context.Context, evs []event.Event) (time.Duration, error) {
	p, err := d.producer(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range evs {
		if _, err := p.PublishAsync(&evs[i]); err != nil {
			return 0, fmt.Errorf("bench: publish event %d: %w", i, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// undelivered sums the messages no consumer has been handed yet; -1 when
// a consumer cannot be read.
func (d *deployment) undelivered(ctx context.Context) int {
	return d.sumConsumers(ctx, func(info *jetstream.ConsumerInfo) int { return int(info.NumPending) })
}

// pending sums the unprocessed and unacknowledged messages of every
// consumer; -1 when one cannot be read.
func (d *deployment) pending(ctx context.Context) int {
	return d.sumConsumers(ctx, func(info *jetstream.ConsumerInfo) int { return int(info.NumPending) + info.NumAckPending })
}

// sumConsumers adds f over the consumers of both lanes of every partition;
// -1 when one cannot be read.
func (d *deployment) sumConsumers(ctx context.Context, f func(*jetstream.ConsumerInfo) int) int {
	n := 0
	for p := range d.partitions {
		for _, lane := range []event.Lane{event.LaneLive, event.LaneBulk} {
			c, err := d.e.js.Consumer(ctx, d.layout.PartitionStream(p), jobs.ConsumerName(lane, p))
			if err != nil {
				return -1
			}
			info, err := c.Info(ctx)
			if err != nil {
				return -1
			}
			n += f(info)
		}
	}
	return n
}

// waitDrained waits until the simulator applied at least want items per
// vendor and no consumer holds anything.
func (d *deployment) waitDrained(ctx context.Context, want map[event.Vendor]int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cs := d.sim.Counters()
		done := true
		for v, n := range want {
			if cs.Vendor(v).Applied < int64(n) {
				done = false
			}
		}
		if done {
			if p := d.pending(ctx); p == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for v := range want {
				got = append(got, fmt.Sprintf("%s %d/%d", v, cs.Vendor(v).Applied, want[v]))
			}
			return fmt.Errorf("bench: not drained after %s: applied %s, pending %d", timeout, strings.Join(got, ", "), d.pending(ctx))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// countingTransport counts the requests it forwards.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// invariantChecks records, for each vendor that received calls, that no
// account had two writes in flight, no write conflicted and no budget saw
// more calls in a 1-second window than its limit.
func invariantChecks(s *Section, label string, cs vendorsim.Counters) {
	if label != "" {
		label += " "
	}
	for _, v := range []event.Vendor{event.Tencent, event.Volc, event.Zego} {
		vc := cs.Vendor(v)
		if vc.Calls == 0 {
			continue
		}
		s.check(fmt.Sprintf("%s%s: overlapping writes for one account", label, v), itoa(vc.Overlaps), "0", vc.Overlaps == 0, true)
		s.check(fmt.Sprintf("%s%s: write conflicts (30008 / UPDATE_FREQUENT)", label, v), itoa(vc.Conflicts), "0", vc.Conflicts == 0, true)
		for _, name := range sortedKeys(vc.Budgets) {
			b := vc.Budgets[name]
			if b.Limit == 0 || b.Calls == 0 {
				continue
			}
			s.check(fmt.Sprintf("%s%s: busiest 1-s window / calls over the limit", label, maskBudget(name)),
				fmt.Sprintf("%d / %d", b.MaxWindow, b.OverBudgetWindows), fmt.Sprintf("≤ %d / 0", b.Limit),
				b.MaxWindow <= b.Limit && b.OverBudgetWindows == 0 && !b.Saturated, true)
		}
	}
}

// maskBudget shortens a Volcengine budget name (it holds the access key).
func maskBudget(n string) string {
	if strings.HasPrefix(n, "volc:") && len(n) > 11 {
		return n[:11] + "…"
	}
	return n
}

// metricSum adds up every series of the named counter or gauge over the
// workers' registries.
func (d *deployment) metricSum(name string) float64 {
	sum := 0.0
	for _, reg := range d.regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				switch {
				case m.GetCounter() != nil:
					sum += m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					sum += m.GetGauge().GetValue()
				}
			}
		}
	}
	return sum
}

// metricByLabel returns, per value of label, the named gauge's or
// counter's value in each worker's registry.
func (d *deployment) metricByLabel(name, label string) map[string][]float64 {
	out := map[string][]float64{}
	for _, reg := range d.regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				key := ""
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label {
						key = lp.GetValue()
					}
				}
				switch {
				case m.GetGauge() != nil:
					out[key] = append(out[key], m.GetGauge().GetValue())
				case m.GetCounter() != nil:
					out[key] = append(out[key], m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// histogramMean is the mean of the named histogram over every series and
// worker (0 when empty).
func (d *deployment) histogramMean(name string) float64 {
	var sum float64
	var n uint64
	for _, reg := range d.regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if h := m.GetHistogram(); h != nil {
					sum += h.GetSampleSum()
					n += h.GetSampleCount()
				}
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// meanDuration is histogramMean for a histogram in seconds.
func (d *deployment) meanDuration(name string) time.Duration {
	return time.Duration(d.histogramMean(name) * float64(time.Second))
}

// redisScriptCalls reads the server's EVAL + EVALSHA call count (the
// limiter's script runs); -1 when INFO fails. The Redis may be shared, so
// a difference includes other clients' scripts.
func (e *env) redisScriptCalls(ctx context.Context) int64 {
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return -1
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, cmd := range []string{"cmdstat_evalsha:", "cmdstat_eval:"} {
			rest, ok := strings.CutPrefix(line, cmd)
			if !ok {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "calls="); ok {
					if x, err := strconv.ParseInt(v, 10, 64); err == nil {
						n += x
					}
				}
			}
		}
	}
	return n
}
