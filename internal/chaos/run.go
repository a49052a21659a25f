package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// The workers' timings, shortened so that a killed worker's partitions
// move within seconds (production: lease TTL 30 s, ack wait 60 s). They
// keep the lease rule TTL > 2 × (vendor timeout + TTL/6) + failover:
// 6 s > 2 × (1.5 s + 1 s) + 0.9 s.
var workerTimings = []struct{ env, value string }{
	{"FRIENDSYNC_ACK_WAIT", "6s"},
	{"FRIENDSYNC_GRACE", "20ms"},
	{"FRIENDSYNC_MAX_DELAY", "200ms"},
	{"FRIENDSYNC_RETRY_BUDGET", "2s"},
	{"FRIENDSYNC_LEASE_TTL", "6s"},
	{"FRIENDSYNC_LEASE_FAILOVER", "900ms"},
	{"FRIENDSYNC_SHUTDOWN_TIMEOUT", "5s"},
}

// layoutBase names the run's stream, subjects and buckets (the servers
// are the run's own, so no name can collide).
const layoutBase = "fschaos"

// Phase start offsets, as fractions of the publishing window.
const (
	atNATS   = 0.12
	atRedis  = 0.22
	atFaults = 0.38
	atOutage = 0.45
	atBurst  = 0.62
	atStorm  = 0.70
)

// clock measures offsets from the start of publishing.
type clock struct{ start atomic.Int64 }

func (c *clock) set(t time.Time)                  { c.start.Store(t.UnixNano()) }
func (c *clock) at() time.Time                    { return time.Unix(0, c.start.Load()) }
func (c *clock) since() time.Duration             { return time.Since(c.at()) }
func (c *clock) offset(t time.Time) time.Duration { return t.Sub(c.at()) }

// Run runs the suite once and returns its report. An error means the run
// could not be made (a server did not start, the workload could not be
// published); broken invariants are in the report (Report.Failures).
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	rep := &Report{Options: o, Started: time.Now(), Machine: machineInfo()}

	dir, created := o.WorkDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "fschaos-")
		if err != nil {
			return nil, fmt.Errorf("chaos: work dir: %w", err)
		}
		dir, created = d, true
	}
	for _, sub := range []string{"nats", "redis", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("chaos: work dir: %w", err)
		}
	}
	rep.WorkDir = dir
	defer func() {
		if created && !o.KeepWorkDir && len(rep.Failures()) == 0 {
			os.RemoveAll(dir)
			rep.WorkDir = ""
		}
	}()

	bin := o.WorkerBin
	if bin == "" {
		log.Info("building cmd/worker")
		b, err := buildWorker(ctx, dir)
		if err != nil {
			return nil, err
		}
		bin = b
	}

	ns, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	defer ns.stop()
	rs, err := startRedis(filepath.Join(dir, "redis"))
	if err != nil {
		return nil, err
	}
	defer rs.stop()
	px, err := prooftest.StartOutageProxy(rs.addr)
	if err != nil {
		return nil, err
	}
	defer px.Close()

	sim, err := newSim()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: simulator listener: %w", err)
	}
	simSrv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	defer simSrv.Close()
	simURL := "http://" + ln.Addr().String()
	board, err := newFaultBoard(sim, o.Seed)
	if err != nil {
		return nil, err
	}

	profilesPath := filepath.Join(dir, "profiles.yaml")
	yml := profilesYAML(simURL)
	if err := os.WriteFile(profilesPath, []byte(yml), 0o600); err != nil {
		return nil, fmt.Errorf("chaos: profiles: %w", err)
	}
	profiles, err := config.ParseProfiles([]byte(yml), func(k string) string { return secretEnv[k] })
	if err != nil {
		return nil, fmt.Errorf("chaos: profiles: %w", err)
	}

	nc, err := nats.Connect(ns.url(), nats.Name("fschaos"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("chaos: connect nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("chaos: jetstream: %w", err)
	}
	layout := event.Layout{Base: layoutBase}

	clk := &clock{}
	clk.set(time.Now())
	env := func(id, addr string) []string {
		e := []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + dir,
			"FRIENDSYNC_WORKER_ID=" + id,
			"FRIENDSYNC_NAME=" + layoutBase,
			"FRIENDSYNC_NATS_URL=" + ns.url(),
			"FRIENDSYNC_REDIS_URL=redis://" + px.Addr(),
			"FRIENDSYNC_REDIS_PREFIX=" + layoutBase + ":",
			"FRIENDSYNC_PROFILES=" + profilesPath,
			"FRIENDSYNC_DEMO=false",
			"FRIENDSYNC_HTTP_ADDR=" + addr,
			"FRIENDSYNC_PARTITIONS=" + strconv.Itoa(o.Partitions),
			"FRIENDSYNC_LOG_LEVEL=" + o.WorkerLogLevel,
			"FRIENDSYNC_LOG_FORMAT=text",
		}
		for _, t := range workerTimings {
			e = append(e, t.env+"="+t.value)
		}
		for k, v := range secretEnv {
			e = append(e, k+"="+v)
		}
		return e
	}
	fl := &fleet{bin: bin, env: env, log: log, since: clk.since}
	for i := range o.Workers {
		p := &proc{id: "w" + strconv.Itoa(i+1), logPath: filepath.Join(dir, "logs", "w"+strconv.Itoa(i+1)+".log")}
		fl.procs = append(fl.procs, p)
		if err := fl.relaunch(p); err != nil {
			fl.stopAll(5 * time.Second)
			return nil, err
		}
	}
	defer fl.stopAll(15 * time.Second)
	log.Info("workers starting", slog.Int("workers", o.Workers), slog.String("logs", filepath.Join(dir, "logs")))
	if err := fl.waitReady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	prod, err := newProducer(ctx, nc, layout, profiles.Rules(), 60*time.Second)
	if err != nil {
		return nil, err
	}
	if err := waitLeased(ctx, js, layout, o.Partitions, 60*time.Second); err != nil {
		return nil, err
	}

	// The run.
	start := time.Now()
	clk.set(start)
	w := newWorkload(o.Seed, o.Accounts, o.Poison, o.Burst, start)
	log.Info("run started", slog.Int("events", len(w.events)), slog.Duration("window", o.Duration),
		slog.Int("kills", o.Kills), slog.Uint64("seed", o.Seed))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg                sync.WaitGroup
		pubErr, burstErr  error
		killErr, phaseErr error
		pubEnd, killEnd   time.Duration
		burstAt, burstEnd time.Duration
		kills             []Kill
		phases            = make([]*Phase, 5)
	)
	wg.Add(4)
	pb := &publisher{prod: prod, js: js, layout: layout, start: start}
	go func() {
		defer wg.Done()
		pubErr = pb.run(runCtx, w, o.Duration)
		pubEnd = clk.since()
		if pubErr != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		select {
		case <-runCtx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(atBurst * float64(o.Duration))))):
		}
		burstAt = clk.since()
		burstErr = pb.burst(runCtx, w)
		burstEnd = clk.since()
		if burstErr != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		kills, killErr = killWorkers(runCtx, fl, o, clk, js, layout)
		killEnd = clk.since()
		if killErr != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		phaseErr = runPhases(runCtx, o, clk, sim, board, ns, px, phases)
		if phaseErr != nil {
			cancel()
		}
	}()
	wg.Wait()
	if err := errors.Join(pubErr, burstErr, killErr, phaseErr); err != nil {
		return nil, err
	}
	chaosEnd := clk.since()
	log.Info("publishing, kills and faults done; draining", slog.Duration("at", chaosEnd.Round(time.Millisecond)))

	// Drain: wait until nothing is pending and the state holds, or nothing
	// is pending for settleFor and the state does not (a violation).
	state := simState(sim)
	var (
		v         verdict
		drained   bool
		zeroSince time.Time
		drainedAt time.Duration
	)
	const settleFor = 15 * time.Second
	deadline := time.Now().Add(o.DrainTimeout)
	for {
		qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
		pend := prooftest.Pending(qctx, js, layout, o.Partitions)
		var dls []deadLetter
		var derr error
		if pend == 0 {
			dls, derr = readDLQ(qctx, js, layout)
		}
		qcancel()
		if pend == 0 && derr == nil {
			if zeroSince.IsZero() {
				zeroSince = time.Now()
			}
			v = check(w, state, dls)
			if v.clean() || time.Since(zeroSince) >= settleFor {
				drained, drainedAt = true, clk.offset(zeroSince)
				break
			}
		} else {
			zeroSince = time.Time{}
		}
		if time.Now().After(deadline) {
			if dls, err := readDLQ(ctx, js, layout); err == nil {
				v = check(w, state, dls)
			}
			log.Warn("not drained", slog.Int("pending", pend), slog.Duration("timeout", o.DrainTimeout))
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	rep.Counters = sim.Counters()
	log.Info("drained", slog.Bool("drained", drained), slog.Int("violations", len(v.Violations)))

	fl.stopAll(15 * time.Second)
	rep.Exits = fl.exitRecords()
	rep.Kills = kills
	for _, p := range phases {
		if p != nil {
			rep.Phases = append(rep.Phases, *p)
		}
	}
	rep.Workload = w
	rep.Verdict = v
	rep.PublishEnd, rep.KillEnd, rep.ChaosEnd = pubEnd, killEnd, chaosEnd
	rep.BurstAt, rep.BurstEnd = burstAt, burstEnd
	rep.Drained, rep.DrainedAt = drained, drainedAt
	rep.Starts = map[string]int{}
	for _, p := range fl.procs {
		rep.Starts[p.id] = p.starts
	}
	for _, vi := range v.Violations[:min(len(v.Violations), maxEvidence)] {
		rep.Evidence = append(rep.Evidence, evidence(w, vi, v, rep, o.Partitions, clk.at(), fl.procs, evidenceSources{
			sim: sim, redisAddr: rs.addr,
			versionKey: func(app, from string) string { return layoutBase + ":v:" + app + ":" + from },
		}))
	}
	rep.MachineEnd = machineInfo()
	return rep, nil
}

// waitLeased waits until every partition has an owner.
func waitLeased(ctx context.Context, js jetstream.JetStream, layout event.Layout, partitions int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		owners, err := leaseOwners(ctx, js, layout, partitions)
		if err == nil && len(owners) == partitions {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %d of %d partitions leased after %s (err %v)", len(owners), partitions, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaseOwners reads the owner (worker id) of every leased partition,
// waiting at most 2 s.
func leaseOwners(ctx context.Context, js jetstream.JetStream, layout event.Layout, partitions int) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return prooftest.LeaseOwners(ctx, js, layout, partitions)
}

// killWorkers kills a random ready worker with SIGKILL and restarts it,
// o.Kills times, at intervals drawn around 90 % of the window / o.Kills.
func killWorkers(ctx context.Context, fl *fleet, o Options, clk *clock, js jetstream.JetStream, layout event.Layout) ([]Kill, error) {
	if o.Kills == 0 {
		return nil, nil
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x6b696c6c))
	mean := time.Duration(float64(o.Duration) * 0.9 / float64(o.Kills))
	next := clk.at().Add(o.Duration / 20)
	var kills []Kill
	for len(kills) < o.Kills {
		select {
		case <-ctx.Done():
			return kills, nil
		case <-time.After(time.Until(next)):
		}
		ready := fl.readyProcs()
		if len(ready) == 0 {
			next = time.Now().Add(100 * time.Millisecond)
			continue
		}
		victim := ready[r.IntN(len(ready))]
		var owned []int
		if owners, err := leaseOwners(ctx, js, layout, o.Partitions); err == nil {
			for p, id := range owners {
				if id == victim.id {
					owned = append(owned, p)
				}
			}
			slices.Sort(owned)
		}
		at := clk.since()
		gauges, err := fl.kill(victim)
		if err != nil {
			return kills, err
		}
		kills = append(kills, Kill{N: len(kills) + 1, At: at, Worker: victim.id, Partitions: owned,
			Inflight: gauges[metricInflight], PendingRaises: gauges[metricPendingRaises]})
		if err := fl.relaunch(victim); err != nil {
			return kills, err
		}
		next = time.Now().Add(max(100*time.Millisecond, time.Duration(float64(mean)*(0.3+1.4*r.Float64()))))
	}
	return kills, nil
}

// runPhases runs the five fault phases at their offsets, each in its own
// goroutine (they may overlap), and records them in phases.
func runPhases(ctx context.Context, o Options, clk *clock, sim *vendorsim.Sim, board *faultBoard,
	ns *natsServer, px *prooftest.OutageProxy, phases []*Phase) error {
	type spec struct {
		name, detail string
		at, d        time.Duration
		begin, end   func() error
	}
	frac := func(f float64) time.Duration { return time.Duration(f * float64(o.Duration)) }
	outageVendor := o.OutageVendor
	specs := []spec{
		{"NATS restart", "in-process nats-server shut down, started again on the same port and store directory",
			frac(atNATS), o.NATSDown,
			func() error { ns.stop(); return nil }, ns.start},
		{"Redis unreachable", "TCP proxy closes every connection and refuses new ones; redis-server keeps its data",
			frac(atRedis), o.RedisOutage,
			func() error { px.SetDown(true); return nil }, func() error { px.SetDown(false); return nil }},
		{"5xx and timeouts", fmt.Sprintf("every vendor: %.0f%% of calls HTTP 502, %.0f%% hang until the client's %s timeout",
			o.FaultRate*50, o.FaultRate*50, vendorTimeout),
			frac(atFaults), o.FaultFor,
			func() error { return board.set("faults", faultSpecs(o.FaultRate)) }, func() error { return board.clear("faults") }},
		{"vendor outage", fmt.Sprintf("%s answers every call HTTP 503", outageVendor),
			frac(atOutage), o.VendorOutage,
			func() error { return board.set("outage", outageSpecs(outageVendor, time.Now(), o.VendorOutage)) },
			func() error { return board.clear("outage") }},
		{"30008 and throttle storm", "Tencent 25% whole-call 30008, 10% 60007, 10% of items 30008; Volcengine 10% FlowLimitExceeded, 20% of items UPDATE_FREQUENT; ZEGO 30% 660300005",
			frac(atStorm), o.StormFor,
			func() error { return board.set("storm", stormSpecs()) }, func() error { return board.clear("storm") }},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(clk.at().Add(s.at))):
			}
			ph := &Phase{Name: s.name, Detail: s.detail, Planned: s.d, before: sim.Counters()}
			ph.Start = clk.since()
			if err := s.begin(); err != nil {
				errs[i] = fmt.Errorf("chaos: %s: %w", s.name, err)
				return
			}
			phases[i] = ph
			select {
			case <-ctx.Done():
			case <-time.After(s.d):
			}
			if err := s.end(); err != nil {
				errs[i] = fmt.Errorf("chaos: end %s: %w", s.name, err)
			}
			ph.End = clk.since()
			ph.after = sim.Counters()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
