package worker_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// Test flags (go test ./internal/worker -args -proof.redis-outage=30s).
var (
	redisOutage   = flag.Duration("proof.redis-outage", 30*time.Second, "how long TestProofNATSRestartAndRedisOutage keeps Redis down (the issue's 30s)")
	proofAccounts = flag.Int("proof.accounts", 0, "accounts in TestProofMixedWorkload (default 10000, 3000 with -race)")
	proofLogLevel = flag.String("proof.log-level", "warn", "level of the worker logs kept (and printed when a test fails)")
	proofLogFile  = flag.String("proof.log-file", "", "also append the in-process workers' logs to this file")
)

// workerBin is cmd/worker, built once by TestMain for the subprocess tests.
var workerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "friendsync-proof-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker_test: temp dir:", err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-o", workerBin, "github.com/friendsync/friendsync/cmd/worker")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "worker_test: go build ./cmd/worker: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The simulated vendor accounts. Four apps: two Tencent SDKAppIDs (each
// its own 200 calls/s quota), one Volcengine account, one ZEGO AppID.
//
// Budgets leave headroom below each limit for the time between a token's
// grant and the call's arrival at the vendor: a GCRA bucket grants up to
// rate + burst calls in a 1-second window, exactly the documented QPS with
// the defaults (Tencent 180 + 20), and with the defaults the simulator
// saw 203 calls in one window (reported; see the test log figures).
const (
	appT1   = "t1"
	appT2   = "t2"
	appVolc = "rtc"
	appZego = "zim"

	sdkT1        = 1400000101
	sdkT2        = 1400000102
	tencentKey   = "proof-tencent-key-0123456789abcdef0123456789abcdef"
	tencentAdmin = "administrator"
	volcAK       = "AKLTproofAccessKey0001"
	volcSK       = "proof-volc-secret-key"
	volcAppID    = 424242
	zegoAppID    = 31337
	zegoSecret   = "0123456789abcdef0123456789abcdef"

	// The Volcengine budget (it documents no QPS): the limiter's rate and
	// burst, and the simulator's limit.
	volcRate  = 300
	volcBurst = 10
	volcLimit = 330

	// Timings shortened for tests (production: 30s TTL, 5s vendor timeout).
	// TTL > 2 × (vendor timeout + TTL/6) + failover: 6s > 2 × 2.5s + 0.9s.
	// The vendor timeout stays well above the scheduling stalls of a loaded
	// test machine (up to ~1s seen): a call abandoned at its timeout may
	// still be applied by the simulator when the retry arrives (an overlap).
	leaseTTL      = 6 * time.Second
	leaseFailover = 900 * time.Millisecond
	vendorTimeout = 1500 * time.Millisecond
	ackWait       = 6 * time.Second
	partitions    = 8
)

// apps are the four apps as the workload and the comparison with the
// simulator's state see them.
var apps = prooftest.Apps{
	{Name: appT1, Vendor: event.Tencent, SimID: strconv.Itoa(sdkT1)},
	{Name: appT2, Vendor: event.Tencent, SimID: strconv.Itoa(sdkT2)},
	{Name: appVolc, Vendor: event.Volc, SimID: strconv.Itoa(volcAppID)},
	{Name: appZego, Vendor: event.Zego, SimID: strconv.Itoa(zegoAppID), MostlyOneFriend: true},
}

// secretEnv holds the profile secrets, read through {env: ...} refs.
var secretEnv = map[string]string{
	"PROOF_TENCENT_KEY": tencentKey,
	"PROOF_VOLC_SECRET": volcSK,
	"PROOF_ZEGO_SECRET": zegoSecret,
}

// simConfig is the simulator with the apps above; mutate adjusts it.
func newSim(t *testing.T, mutate func(*vendorsim.Config)) *vendorsim.Sim {
	t.Helper()
	cfg := vendorsim.Config{
		Tencent: map[uint64]vendorsim.TencentApp{
			sdkT1: {Key: tencentKey, Admin: tencentAdmin},
			sdkT2: {Key: tencentKey, Admin: tencentAdmin},
		},
		Volc:    map[string]vendorsim.VolcAccount{volcAK: {SecretKey: volcSK, AppIDs: []int64{volcAppID}}},
		Zego:    map[uint32]string{zegoAppID: zegoSecret},
		VolcQPS: volcLimit,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := vendorsim.New(cfg)
	if err != nil {
		t.Fatalf("vendorsim: %v", err)
	}
	return sim
}

// profilesYAML is the profiles file of the four apps, every vendor under
// base (the simulator's URL).
func profilesYAML(base string) string {
	return fmt.Sprintf(`apps:
  %[1]s:
    vendor: tencent
    timeout: %[9]s
    tencent: {base_url: "%[5]s/tencent", sdkappid: %[6]d, identifier: %[8]s, key: {env: PROOF_TENCENT_KEY}}
    budget: {rate: 180, burst: 10}
  %[2]s:
    vendor: tencent
    timeout: %[9]s
    tencent: {base_url: "%[5]s/tencent", sdkappid: %[7]d, identifier: %[8]s, key: {env: PROOF_TENCENT_KEY}}
    budget: {rate: 180, burst: 10}
  %[3]s:
    vendor: volc
    timeout: %[9]s
    volc: {base_url: "%[5]s/volc", access_key: %[10]s, app_id: %[11]d, send_alias: true, secret_key: {env: PROOF_VOLC_SECRET}}
    budget: {rate: %[12]d, burst: %[13]d}
  %[4]s:
    vendor: zego
    timeout: %[9]s
    zego: {base_url: "%[5]s/zego", app_id: %[14]d, server_secret: {env: PROOF_ZEGO_SECRET}}
    budget: {rate: 16, burst: 2}
`, appT1, appT2, appVolc, appZego, base, sdkT1, sdkT2, tencentAdmin, vendorTimeout, volcAK, volcAppID,
		volcRate, volcBurst, zegoAppID)
}

// inProcessBase is the host the in-process workers' clients address; the
// simulator's Transport answers it without sockets.
const inProcessBase = "http://vendorsim.invalid"

// cluster is one test's deployment: a unique layout on a NATS server, a
// unique Redis key prefix, one simulator.
type cluster struct {
	t           *testing.T
	name        string
	layout      event.Layout
	natsURL     string
	redisURL    string
	redisPrefix string
	storage     jetstream.StorageType
	retryBase   time.Duration
	retryMax    time.Duration
	sim         *vendorsim.Sim
	simURL      string // httptest server running sim.Handler (subprocess workers)
	profiles    config.Profiles
	nc          *nats.Conn
	js          jetstream.JetStream
	logs        logSink
	journal     *journal  // every item the simulator processed
	published   *workload // the last workload published (for diagnoses)
}

type clusterOpts struct {
	natsURL  string // "": the machine's NATS
	redisURL string // "": the machine's Redis
	storage  jetstream.StorageType
	sim      func(*vendorsim.Config)
	// retryBase and retryMax, when set, replace the short NakWithDelay
	// backoff (0.5 s doubling to 4 s: MaxDeliver runs out after about 30 s
	// of RetryLater) for proofs whose outages must not use up deliveries.
	retryBase, retryMax time.Duration
}

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	name := strings.ToLower(testenv.Unique("proof"))
	c := &cluster{
		t: t, name: name, layout: event.Layout{Base: name},
		natsURL: o.natsURL, redisURL: o.redisURL, redisPrefix: name + ":",
		storage: o.storage, logs: newLogSink(t),
		retryBase: o.retryBase, retryMax: o.retryMax,
	}
	if c.natsURL == "" {
		c.natsURL = testenv.NATSURL()
		testenv.NATS(t) // fails with the start command when NATS is down
	}
	if c.redisURL == "" {
		rdb := testenv.Redis(t, c.redisPrefix) // deletes the prefix's keys at cleanup
		c.redisURL = "redis://" + rdb.Options().Addr
	}
	nc, err := nats.Connect(c.natsURL, nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", c.natsURL, err)
	}
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer nc.Close()
		if !nc.IsConnected() { // an in-process server already shut down
			return
		}
		testenv.DeleteLayout(t, c.js, c.layout)
	})
	c.journal = &journal{}
	c.sim = newSim(t, func(cfg *vendorsim.Config) {
		cfg.OnWrite = c.journal.add
		if o.sim != nil {
			o.sim(cfg)
		}
	})
	srv := httptest.NewServer(c.sim.Handler())
	t.Cleanup(srv.Close)
	c.simURL = srv.URL
	if c.profiles, err = config.ParseProfiles([]byte(profilesYAML(inProcessBase)), envOf(secretEnv)); err != nil {
		t.Fatalf("profiles: %v", err)
	}
	return c
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// config is the worker configuration every test uses: short timings, the
// cluster's layout, Redis prefix and profiles.
func (c *cluster) config(id string) config.Config {
	cfg := config.Defaults()
	cfg.WorkerID = id
	cfg.Name = c.name
	cfg.NATSURL = c.natsURL
	cfg.RedisURL = config.Secret(c.redisURL)
	cfg.RedisPrefix = c.redisPrefix
	cfg.Profiles = c.profiles
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Partitions = partitions
	cfg.AckWait = config.Duration(ackWait)
	cfg.Grace = config.Duration(20 * time.Millisecond)
	cfg.MaxDelay = config.Duration(200 * time.Millisecond)
	cfg.RetryBudget = config.Duration(2 * time.Second)
	cfg.LeaseTTL = config.Duration(leaseTTL)
	cfg.LeaseFailover = config.Duration(leaseFailover)
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	return cfg
}

// queueOverrides are the queue settings the Config does not expose.
func (c *cluster) queueOverrides() queue.Config {
	q := queue.Config{
		Storage:   c.storage,
		IdleWait:  250 * time.Millisecond,
		RetryBase: 500 * time.Millisecond,
		RetryMax:  4 * time.Second,
	}
	if c.retryBase > 0 {
		q.RetryBase = c.retryBase
	}
	if c.retryMax > 0 {
		q.RetryMax = c.retryMax
	}
	return q
}

// inproc is a worker.Run in this process.
type inproc struct {
	id       string
	cancel   context.CancelFunc
	done     chan error
	reg      *prometheus.Registry
	stopOnce sync.Once
}

// metric sums every series of a metric family in the worker's registry.
func (w *inproc) metric(name string) float64 {
	mfs, err := w.reg.Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// startWorker runs an in-process worker against the cluster; it is
// stopped at cleanup (or by stop).
func (c *cluster) startWorker(id string) *inproc {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	w := &inproc{id: id, cancel: cancel, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	deps := worker.Deps{
		Logger:          c.logs.logger(id),
		Registry:        w.reg,
		VendorTransport: c.sim.Transport(),
		Queue:           c.queueOverrides(),
		Ready:           ready,
	}
	go func() { w.done <- worker.Run(ctx, c.config(id), deps) }()
	select {
	case <-ready:
	case err := <-w.done:
		cancel()
		c.t.Fatalf("worker %s did not start: %v", id, err)
	case <-time.After(30 * time.Second):
		cancel()
		c.t.Fatalf("worker %s not ready after 30s", id)
	}
	c.t.Cleanup(func() { w.stop(c.t) })
	return w
}

// stop cancels the worker and waits for Run to return (once).
func (w *inproc) stop(t *testing.T) {
	t.Helper()
	w.stopOnce.Do(func() {
		w.cancel()
		select {
		case err := <-w.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker %s: Run: %v", w.id, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker %s: Run did not return 30s after cancel", w.id)
		}
	})
}

// proc is a cmd/worker subprocess.
type proc struct {
	id       string
	httpAddr string
	env      []string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	started  int
}

// procEnv is the subprocess configuration, all through FRIENDSYNC_*
// variables, the vendors at the cluster's httptest simulator.
func (c *cluster) procEnv(t *testing.T, id, httpAddr string) []string {
	t.Helper()
	dir := t.TempDir()
	pf := filepath.Join(dir, "profiles.yaml")
	if err := os.WriteFile(pf, []byte(profilesYAML(c.simURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := c.config(id)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"FRIENDSYNC_WORKER_ID=" + id,
		"FRIENDSYNC_NAME=" + c.name,
		"FRIENDSYNC_NATS_URL=" + c.natsURL,
		"FRIENDSYNC_REDIS_URL=" + c.redisURL,
		"FRIENDSYNC_REDIS_PREFIX=" + c.redisPrefix,
		"FRIENDSYNC_PROFILES=" + pf,
		"FRIENDSYNC_DEMO=false",
		"FRIENDSYNC_HTTP_ADDR=" + httpAddr,
		"FRIENDSYNC_PARTITIONS=" + strconv.Itoa(cfg.Partitions),
		"FRIENDSYNC_ACK_WAIT=" + time.Duration(cfg.AckWait).String(),
		"FRIENDSYNC_GRACE=" + time.Duration(cfg.Grace).String(),
		"FRIENDSYNC_MAX_DELAY=" + time.Duration(cfg.MaxDelay).String(),
		"FRIENDSYNC_RETRY_BUDGET=" + time.Duration(cfg.RetryBudget).String(),
		"FRIENDSYNC_LEASE_TTL=" + time.Duration(cfg.LeaseTTL).String(),
		"FRIENDSYNC_LEASE_FAILOVER=" + time.Duration(cfg.LeaseFailover).String(),
		"FRIENDSYNC_SHUTDOWN_TIMEOUT=" + time.Duration(cfg.ShutdownTimeout).String(),
		"FRIENDSYNC_LOG_LEVEL=" + *proofLogLevel,
		"FRIENDSYNC_LOG_FORMAT=text",
	}
	for k, v := range secretEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// startProc starts a worker subprocess (killed at cleanup if still
// running) and waits until its /readyz answers.
func (c *cluster) startProc(id string) *proc {
	c.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(c.t))
	p := &proc{id: id, httpAddr: addr, env: c.procEnv(c.t, id, addr), logPath: filepath.Join(c.t.TempDir(), id+".log")}
	c.t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if c.t.Failed() {
			c.t.Logf("--- %s log (tail) ---\n%s", id, prooftest.TailFile(p.logPath, 60))
		}
	})
	p.start(c.t)
	return p
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %d at %s\n", p.started+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(workerBin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.id, err)
	}
	p.started++
	p.cmd, p.exited, p.waitErr = cmd, make(chan struct{}), nil
	go func(exited chan struct{}) {
		p.waitErr = cmd.Wait()
		f.Close()
		close(exited)
	}(p.exited)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("worker %s exited at start (%v):\n%s", p.id, p.waitErr, prooftest.TailFile(p.logPath, 30))
		default:
		}
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("worker %s not ready after 30s:\n%s", p.id, prooftest.TailFile(p.logPath, 30))
}

// signal sends sig if the process runs.
func (p *proc) signal(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits up to d for the process to exit and returns its exit code
// (-1 when killed by a signal) and whether it exited.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// metric reads one unlabelled gauge or counter from the worker's /metrics.
func (p *proc) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// logSink keeps the in-process workers' logs at -proof.log-level (and in
// -proof.log-file), printing their tail when the test fails.
type logSink struct{ *prooftest.LogSink }

func newLogSink(t *testing.T) logSink {
	t.Helper()
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*proofLogLevel)); err != nil {
		lvl = slog.LevelWarn
	}
	return logSink{prooftest.NewLogSink(t, prooftest.LogSinkOptions{Level: lvl, File: *proofLogFile, Keep: 8 << 20, Tail: 80})}
}

// logger is worker id's logger.
func (s logSink) logger(id string) *slog.Logger { return s.Logger(id) }

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string { return prooftest.LastLines(s, n) }

// ---- workload: events and the state they must leave at the vendors ----

// friendKey names one (app, from, to) at the simulator.
type friendKey = prooftest.FriendKey

// workload is a list of events in publish order (prooftest.Workload) and
// the PubAck of each event publishPaced published.
type workload struct {
	*prooftest.Workload
	acks []pubRecord
}

type mix struct {
	accounts int
	// shares of accounts per app, in the order t1, t2, volc, zego; they are
	// normalized.
	t1, t2, volc, zego float64
	seed               uint64
}

// newWorkload generates a mixed workload from a splitmix generator seeded
// with m.seed: per account 1–2 friends (ZEGO: mostly 1), per friend 1–3
// updates of remark, groups (Tencent) and attributes, with clears; 10%
// backfill rows on the bulk lane with old ts, 10% live rows with old ts
// out of order, the rest live without ts.
func newWorkload(m mix) *workload {
	return &workload{Workload: prooftest.NewWorkload(prooftest.NewSplitMix(m.seed), prooftest.Mix{
		Accounts: m.accounts,
		Apps:     apps,
		Shares:   []float64{m.t1, m.t2, m.volc, m.zego},
		Versions: prooftest.MostlyPublishTime,
	})}
}

// ---- publishing ----

// producer returns a producer for the cluster's partition streams (a
// worker must have created them).
func (c *cluster) producer(ctx context.Context) *producer.Producer {
	c.t.Helper()
	p, err := producer.New(ctx, c.nc, producer.Config{Layout: c.layout, Apps: c.profiles.Rules(), MaxPending: 2048})
	if err != nil {
		c.t.Fatalf("producer: %v", err)
	}
	return p
}

// publishAll publishes w in order, asynchronously, and waits for every ack.
func (c *cluster) publishAll(w *workload) time.Duration {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.published = w
	p := c.producer(ctx)
	start := time.Now()
	for i := range w.Events {
		ev := w.Events[i].Ev
		if _, err := p.PublishAsync(&ev, producer.WithLane(w.Events[i].Lane)); err != nil {
			c.t.Fatalf("publish event %d: %v", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		c.t.Fatalf("publish: %v", err)
	}
	return time.Since(start)
}

// publishPaced publishes w in order, synchronously (retrying failures
// with the same event id, so the partition stream's deduplication keeps
// one copy), spread over about d. It stops early when ctx ends and
// returns how many events were published.
func (c *cluster) publishPaced(ctx context.Context, w *workload, d time.Duration) (int, error) {
	c.published = w
	w.acks = make([]pubRecord, len(w.Events))
	p := c.producer(ctx)
	start := time.Now()
	per := d / time.Duration(max(1, len(w.Events)))
	const chunk = 50
	for i := 0; i < len(w.Events); i += chunk {
		for j := i; j < min(i+chunk, len(w.Events)); j++ {
			ev := &w.Events[j].Ev
			for attempt := 1; ; attempt++ {
				ack, err := p.Publish(ctx, ev, producer.WithLane(w.Events[j].Lane))
				if err == nil {
					w.record(j, ack, attempt)
					break
				}
				if ctx.Err() != nil {
					return j, ctx.Err()
				}
				time.Sleep(100 * time.Millisecond) // NATS away: retry, same id
			}
		}
		if wait := time.Until(start.Add(per * time.Duration(min(i+chunk, len(w.Events))))); wait > 0 {
			select {
			case <-ctx.Done():
				return i + chunk, ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return len(w.Events), nil
}

// ---- observing ----

// pending sums the unprocessed and unacknowledged messages of every
// consumer; -1 when a consumer cannot be read.
func (c *cluster) pending(ctx context.Context) int {
	return prooftest.Pending(ctx, c.js, c.layout, partitions)
}

// diff compares the simulator's state with want and returns the number of
// mismatching friends and up to 5 examples.
func (c *cluster) diff(want map[friendKey]vendorsim.Friend) (int, []string) {
	return prooftest.Diff(c.sim, apps, want)
}

// waitApplied waits until the simulator holds want and no consumer has
// anything pending, and returns how long it took.
func (c *cluster) waitApplied(want map[friendKey]vendorsim.Friend, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pend := c.pending(ctx)
		cancel()
		bad, ex := c.diff(want)
		if bad == 0 && pend == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Errorf("not applied after %s: %d of %d friends differ, %d messages pending; e.g.\n  %s",
				timeout, bad, len(want), pend, strings.Join(ex, "\n  "))
			c.checkVendorInvariants()
			c.diagnose(want, 3)
			c.t.FailNow()
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// deadLetter is one DLQ entry.
type deadLetter struct {
	subject string
	header  nats.Header
	data    []byte
}

// deadLetters reads the whole DLQ stream.
func (c *cluster) deadLetters() []deadLetter {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := prooftest.ReadDLQ(ctx, c.js, c.layout)
	if err != nil {
		c.t.Fatalf("dlq: %v", err)
	}
	var out []deadLetter
	for _, m := range ms {
		out = append(out, deadLetter{subject: m.Subject, header: m.Header, data: m.Data})
	}
	return out
}

// describeDLQ summarizes dead letters for a failure message.
func describeDLQ(dls []deadLetter) string {
	var b strings.Builder
	for i, d := range dls {
		if i == 10 {
			fmt.Fprintf(&b, "  … %d more\n", len(dls)-10)
			break
		}
		fmt.Fprintf(&b, "  %s delivered=%s worker=%s detail=%q code=%s data=%.120s\n", d.header.Get(jobs.HdrReason),
			d.header.Get(jobs.HdrDelivered), d.header.Get(jobs.HdrWorker), d.header.Get(jobs.HdrDetail),
			d.header.Get(jobs.HdrVendorCode), d.data)
	}
	return b.String()
}

// checkVendorInvariants asserts what the simulator saw: no overlapping
// writes for one account, no write conflicts, and no 1-second window over
// any budget's limit. It logs the figures.
func (c *cluster) checkVendorInvariants() {
	c.t.Helper()
	prooftest.CheckVendorInvariants(c.t, c.sim.Counters(), false)
}

// leaseOwners reads the owner (worker id) of every partition's lease key.
func (c *cluster) leaseOwners(ctx context.Context) (map[int]string, error) {
	return prooftest.LeaseOwners(ctx, c.js, c.layout, partitions)
}

// waitOwned waits until every partition has a lease and each worker in
// ids owns at least one.
func (c *cluster) waitOwned(ids []string, timeout time.Duration) map[int]string {
	c.t.Helper()
	return prooftest.WaitOwned(c.t, c.js, c.layout, partitions, ids, timeout)
}

// stallMonitor measures how late a 10 ms ticker fires in this process: a
// late tick means the process (workers and in-process simulator alike) was
// not scheduled, so calls granted on Redis time during the stall reach the
// simulator together.
type stallMonitor struct {
	mu    sync.Mutex
	max   time.Duration
	at    time.Time
	stop  chan struct{}
	ended chan struct{}
}

func startStallMonitor(t *testing.T) *stallMonitor {
	m := &stallMonitor{stop: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(m.ended)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		last := time.Now()
		for {
			select {
			case <-m.stop:
				return
			case now := <-tk.C:
				if gap := now.Sub(last) - 10*time.Millisecond; gap > 0 {
					m.mu.Lock()
					if gap > m.max {
						m.max, m.at = gap, now
					}
					m.mu.Unlock()
				}
				last = now
			}
		}
	}()
	t.Cleanup(func() {
		close(m.stop)
		<-m.ended
		m.mu.Lock()
		defer m.mu.Unlock()
		t.Logf("longest scheduling stall of the test process: %s (at %s)", m.max.Round(time.Millisecond), m.at.Format("15:04:05.000"))
	})
	return m
}

// startOutageProxy is a proxy to backend for outages, closed at cleanup.
func startOutageProxy(t *testing.T, backend string) *prooftest.OutageProxy {
	t.Helper()
	p, err := prooftest.StartOutageProxy(backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
