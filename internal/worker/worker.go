package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/deliver"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/lease"
	"github.com/friendsync/friendsync/internal/queue"
	"github.com/friendsync/friendsync/internal/ratelimit"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/versions"
)

// Deps are what tests (and embedders) may inject; zero values build the
// real thing from the Config.
type Deps struct {
	// Logger for everything; nil discards.
	Logger *slog.Logger
	// Registry receives every metric; nil makes a new one.
	Registry *prometheus.Registry
	// VendorTransport carries every vendor request (tests point it at a
	// shared simulator). Nil: with simulated profiles, the in-process
	// simulator; else real HTTPS.
	VendorTransport http.RoundTripper
	// Queue overrides queue settings that the Config does not expose
	// (tests: memory storage, short intervals). Zero fields keep Config's.
	Queue queue.Config
	// Lease overrides lease timings (tests: short TTLs).
	Lease lease.Config
	// Ready, if set, is closed once the worker consumes.
	Ready chan<- struct{}
}

// Run runs one worker until ctx ends, then shuts down in order: release
// partitions (stop intake, finish in-flight batches, Nak what is left),
// drain the coalescers, stop background loops, drain NATS. It returns the
// first error that stopped it, or nil after a clean shutdown.
func Run(ctx context.Context, cfg config.Config, deps Deps) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(slog.String("worker", cfg.WorkerID))
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	layout := cfg.Layout()

	// NATS: the cluster, or an in-process server.
	var embedded *server.Server
	natsURL := cfg.NATSURL
	if cfg.Embedded() {
		s, err := startEmbeddedNATS(cfg.EmbeddedNATSAddr, cfg.DataDir, logger)
		if err != nil {
			return err
		}
		embedded = s
		defer func() {
			s.Shutdown()
			s.WaitForShutdown()
		}()
		natsURL = "nats://" + cfg.EmbeddedNATSAddr
	}
	nc, err := connectNATS(natsURL, cfg, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}

	// Redis: the shared limiter and version store, or in-process twins.
	var rdb *redis.Client
	if u := cfg.RedisURL.Reveal(); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			return errors.New("worker: redis url does not parse") // the URL may hold a password: do not echo it
		}
		rdb = redis.NewClient(opts)
		defer rdb.Close()
	}

	// Vendors: real clients, or the in-process simulator.
	transport := deps.VendorTransport
	var sim *vendorsim.Sim
	if transport == nil && cfg.Simulated {
		simCfg := vendorsim.DemoConfig()
		simCfg.Logger = logger.With(slog.String("component", "vendorsim"))
		if sim, err = vendorsim.New(simCfg); err != nil {
			return fmt.Errorf("worker: simulator: %w", err)
		}
		transport = sim.Transport()
	}
	var hc *http.Client
	if transport != nil {
		hc = &http.Client{Transport: transport}
	}

	// Stream, consumers' settings, partition count.
	qcfg := queueConfig(cfg, deps.Queue)
	topo, err := ensureTopology(ctx, js, qcfg, logger)
	if err != nil {
		return err
	}
	logger.Info("streams ready", slog.String("first", layout.PartitionStream(0)), slog.String("last", layout.PartitionStream(topo.Partitions-1)), slog.Int("partitions", topo.Partitions))

	// Leases first (the limiter's fallback and the fence need them), with
	// callbacks bound below once the consumer exists.
	var consumer *queue.Consumer
	var store versionStore
	// stopped[p] is closed once the intake started for p's latest lease has
	// stopped: a lease lost and won back within moments must not start p
	// while the previous intake is still stopping (StartPartition would
	// fail "already started" and leave p leased but unconsumed).
	var stopMu sync.Mutex
	stopped := map[int]chan struct{}{}
	lcfg := leaseConfig(cfg, deps.Lease, topo.Partitions)
	leases, err := lease.New(js, lcfg, lease.Callbacks{
		Acquired: func(pctx context.Context, p int) {
			// Keys of a partition we did not own continuously may have newer
			// versions in Redis than in our cache.
			store.Forget(func(k jobs.Key) bool { return event.Partition(k.App, k.From, topo.Partitions) != p })
			stopMu.Lock()
			prev, done := stopped[p], make(chan struct{})
			stopped[p] = done
			stopMu.Unlock()
			go func() {
				defer close(done)
				if prev != nil {
					<-prev // bounded by ShutdownTimeout
				}
				// Retry a failed start (NATS slow or away) while the lease
				// lasts: a held lease without intake would strand p.
				for pctx.Err() == nil {
					err := consumer.StartPartition(pctx, p)
					if err == nil {
						break
					}
					logger.Warn("start partition; retrying", slog.Int("partition", p), slog.Any("error", err))
					select {
					case <-pctx.Done():
					case <-time.After(time.Second):
					}
				}
				<-pctx.Done() // lost or released: make sure intake stops
				sctx, cancel := context.WithTimeout(context.WithoutCancel(pctx), time.Duration(cfg.ShutdownTimeout))
				defer cancel()
				if err := consumer.StopPartition(sctx, p); err != nil {
					logger.Warn("stop partition", slog.Int("partition", p), slog.Any("error", err))
				}
			}()
		},
		Release: func(rctx context.Context, p int) error { return consumer.StopPartition(rctx, p) },
	}, logger, lease.NewMetrics(reg))
	if err != nil {
		return err
	}

	budgets := allBudgets(cfg.Profiles)
	rlCfg := ratelimit.Config{KeyPrefix: cfg.RedisPrefix + "rl:", Budgets: budgets, Members: leases.Members}
	var limiter *ratelimit.Limiter
	if rdb != nil {
		limiter, err = ratelimit.New(rlCfg, rdb, logger.With(slog.String("component", "ratelimit")), ratelimit.NewMetrics(reg))
		if err == nil {
			store, err = versions.NewRedis(rdb, versions.Config{Prefix: cfg.RedisPrefix + "v:"}, logger.With(slog.String("component", "versions")), versions.NewMetrics(reg))
		}
	} else {
		limiter, err = ratelimit.NewLocal(rlCfg, logger.With(slog.String("component", "ratelimit")), ratelimit.NewMetrics(reg))
		store = memoryStore{versions.NewMemory()}
	}
	if err != nil {
		return err
	}

	senders := make(map[string]deliver.Sender, len(cfg.Profiles))
	for name, p := range cfg.Profiles {
		s, err := newSender(p, hc)
		if err != nil {
			return fmt.Errorf("worker: app %q: %w", name, err)
		}
		senders[name] = fencedSender{Sender: s, app: name, partitions: topo.Partitions, deadline: leases.CallDeadline}
	}
	deliverer, err := deliver.New(deliver.Config{
		RetryBudget: time.Duration(cfg.RetryBudget),
		// One backoff interval may not exceed the budget (deliver checks).
		RetryMax:     min(deliver.DefaultRetryMax, time.Duration(cfg.RetryBudget)),
		RetryInitial: min(deliver.DefaultRetryInitial, time.Duration(cfg.RetryBudget)),
		Fence:        leases.Valid,
	}, func(app string) (deliver.Sender, bool) { s, ok := senders[app]; return s, ok },
		limiter, store, logger.With(slog.String("component", "deliver")), deliver.NewMetrics(reg))
	if err != nil {
		return err
	}

	pipe := newPipeline(deliverer, topo.Partitions, laneWindows(qcfg), quietAfter(qcfg), 2*time.Second)
	for name, p := range cfg.Profiles {
		if err := pipe.addApp(name, coalesce.Config{
			Grace:       time.Duration(cfg.Grace),
			MaxDelay:    time.Duration(cfg.MaxDelay),
			MaxSize:     batchCap(p),
			MaxBuffered: cfg.MaxBuffered,
			MaxHold:     maxHold(cfg),
		}); err != nil {
			return err
		}
	}
	registerPipelineMetrics(reg, pipe)

	rules := cfg.Profiles.Rules()
	validate := func(ev *event.Event) error {
		r, ok := rules[ev.App]
		if !ok {
			return fmt.Errorf("unknown app %q (no profile configured): %w", ev.App, event.ErrInvalid)
		}
		return ev.ValidateFor(r)
	}
	consumer, err = queue.NewConsumer(js, qcfg, topo, cfg.WorkerID, validate, pipe,
		logger.With(slog.String("component", "queue")), queue.NewMetrics(reg))
	if err != nil {
		return err
	}

	// HTTP: metrics, health, the simulator's admin API in the embedded mode.
	var ready atomic.Bool
	httpSrv, err := newHTTPServer(cfg.HTTPAddr, reg, sim, nc, &ready, logger)
	if err != nil {
		return err
	}

	// Background loops run on bg, which outlives ctx until the drain is done.
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	g, gctx := errgroup.WithContext(ctx)
	var bgGroup errgroup.Group
	bgGroup.Go(func() error { return consumer.Run(bg) })
	bgGroup.Go(func() error { return limiter.Run(bg) })
	bgGroup.Go(func() error { return store.Run(bg) })
	bgGroup.Go(func() error { return httpSrv.serve(bg) })

	if cfg.Demo {
		g.Go(func() error { return runDemo(gctx, nc, layout, cfg, logger.With(slog.String("component", "demo"))) })
	}
	g.Go(func() error {
		// Intake: leases start and stop partitions. On ctx end Run releases
		// every partition gracefully (StopPartition drains each) and returns.
		ready.Store(true)
		if deps.Ready != nil {
			close(deps.Ready)
		}
		logger.Info("worker running", slog.String("http", cfg.HTTPAddr), slog.Bool("embedded_nats", embedded != nil),
			slog.Bool("simulated_vendors", sim != nil), slog.Bool("redis", rdb != nil), slog.Bool("demo", cfg.Demo))
		err := leases.Run(gctx)
		ready.Store(false)
		// Ordered drain: intake is stopped; deliver what is still buffered,
		// then stop the background loops and drain the connection.
		dctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout)/2)
		defer cancel()
		if cerr := consumer.StopAll(dctx); cerr != nil {
			logger.Warn("stop partitions", slog.Any("error", cerr))
		}
		if cerr := pipe.close(dctx); cerr != nil {
			logger.Warn("drain coalescers", slog.Any("error", cerr))
		}
		stopBg()
		if berr := bgGroup.Wait(); berr != nil && !errors.Is(berr, context.Canceled) {
			logger.Warn("background loops", slog.Any("error", berr))
		}
		if derr := nc.Drain(); derr != nil {
			logger.Warn("drain nats", slog.Any("error", derr))
		}
		logger.Info("worker stopped")
		return err
	})
	return g.Wait()
}

// ensureTopology creates or verifies the streams and consumers. A worker
// started with its cluster (JetStream not up yet: no responders, or 503
// while a meta leader is elected) waits for it, retrying with backoff
// until ctx ends; a conflict (settings, partition count) fails at once.
func ensureTopology(ctx context.Context, js jetstream.JetStream, qcfg queue.Config, logger *slog.Logger) (queue.Topology, error) {
	var lastErr error
	attempt := 0
	b := backoff.NewExponentialBackOff() // 250 ms doubling to 5 s, ±50 % jitter, until ctx ends
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 250*time.Millisecond, 5*time.Second, 0
	topo, err := backoff.RetryNotifyWithData(func() (queue.Topology, error) {
		attempt++
		setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		topo, err := queue.Ensure(setupCtx, js, qcfg)
		if err != nil && !queue.Transient(err) {
			return topo, backoff.Permanent(err)
		}
		lastErr = err
		return topo, err
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		logger.Warn("jetstream not ready (starting, electing a leader, or not enabled on the server); retrying",
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", err))
	})
	if err != nil && ctx.Err() != nil && lastErr != nil {
		err = lastErr
	}
	return topo, err
}

// versionStore is what the worker needs of a version store: delivery's
// interface plus cache and lifecycle hooks.
type versionStore interface {
	deliver.Versions
	Forget(keep func(jobs.Key) bool)
	Run(ctx context.Context) error
}

// memoryStore adapts versions.Memory (the only copy in the embedded mode,
// so it never forgets and has no background loop).
type memoryStore struct{ *versions.Memory }

func (memoryStore) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func queueConfig(cfg config.Config, o queue.Config) queue.Config {
	q := o
	q.Layout = cfg.Layout()
	if q.Partitions == 0 {
		q.Partitions = cfg.Partitions
	}
	if q.Replicas == 0 {
		q.Replicas = cfg.Replicas
	}
	if q.AckWait == 0 {
		q.AckWait = time.Duration(cfg.AckWait)
	}
	if q.MaxDeliver == 0 {
		q.MaxDeliver = cfg.MaxDeliver
	}
	return q
}

func leaseConfig(cfg config.Config, o lease.Config, partitions int) lease.Config {
	l := o
	l.Layout = cfg.Layout()
	l.WorkerID = cfg.WorkerID
	l.Partitions = partitions
	if l.TTL == 0 {
		l.TTL = time.Duration(cfg.LeaseTTL)
	}
	if l.Replicas == 0 {
		l.Replicas = cfg.Replicas
	}
	if l.Failover == 0 {
		l.Failover = time.Duration(cfg.LeaseFailover)
	}
	if l.ReleaseTimeout == 0 {
		// Shutdown releases every partition (in parallel) and then drains
		// the coalescers: each gets half of the shutdown timeout.
		l.ReleaseTimeout = time.Duration(cfg.ShutdownTimeout) / 2
	}
	if l.VendorTimeout == 0 {
		for _, p := range cfg.Profiles {
			l.VendorTimeout = max(l.VendorTimeout, vendorTimeout(p))
		}
	}
	return l
}

func connectNATS(url string, cfg config.Config, logger *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("friendsync-worker " + cfg.WorkerID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// A worker started before its NATS (a cluster coming up, a
		// restart under a supervisor) keeps trying instead of exiting;
		// ensureTopology waits for JetStream meanwhile.
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Drain/Close
				logger.Warn("nats disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", slog.String("url", c.ConnectedUrlRedacted())) }),
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	if cfg.NATSCert != "" || cfg.NATSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCert, cfg.NATSKey))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("worker: connect nats: %w", err)
	}
	if !nc.IsConnected() {
		logger.Warn("nats not reachable yet; connecting in the background")
	}
	return nc, nil
}
