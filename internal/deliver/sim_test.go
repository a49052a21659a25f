package deliver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendors/tencent"
	"github.com/friendsync/friendsync/internal/vendors/volc"
	"github.com/friendsync/friendsync/internal/vendors/zego"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// spacedLimiter grants each budget's tokens at most every interval apart,
// on the (fake) clock: a local stand-in for the Redis GCRA limiter.
type spacedLimiter struct {
	mu        sync.Mutex
	next      map[string]time.Time
	throttled int
}

func budgetInterval(budget string) time.Duration {
	switch {
	case strings.HasPrefix(budget, "zego:"):
		return time.Second / 15 // 20/s per AppID and API
	case strings.HasPrefix(budget, "tencent:"):
		return time.Second / 150 // 200/s per SDKAppID
	default:
		return time.Second / 100
	}
}

func (l *spacedLimiter) Wait(ctx context.Context, budget string, _ event.Lane) error {
	l.mu.Lock()
	now := time.Now()
	at := l.next[budget]
	if at.Before(now) {
		at = now
	}
	l.next[budget] = at.Add(budgetInterval(budget))
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (l *spacedLimiter) Throttled(string, time.Duration) {
	l.mu.Lock()
	l.throttled++
	l.mu.Unlock()
}

// simApp is one configured app of the simulation.
type simApp struct {
	name   string
	vendor event.Vendor
	simID  string // the simulator's app id (SDKAppID / AppId)
	sender Sender
	attrs  []string // valid attribute keys
	groups bool
	rules  event.Rules
}

func simApps(t *testing.T, hc *http.Client) []simApp {
	t.Helper()
	tc, err := tencent.New(tencent.Config{BaseURL: "http://sim/tencent", SDKAppID: vendorsim.DemoTencentSDKAppID,
		Identifier: vendorsim.DemoTencentAdmin, Key: vendorsim.DemoTencentKey, Timeout: time.Second}, hc)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := volc.New(volc.Config{BaseURL: "http://sim/volc", AccessKey: vendorsim.DemoVolcAccessKey,
		SecretKey: vendorsim.DemoVolcSecretKey, AppID: vendorsim.DemoVolcAppID, SendAlias: true, Timeout: time.Second}, hc)
	if err != nil {
		t.Fatal(err)
	}
	zc, err := zego.New(zego.Config{BaseURL: "http://sim/zego", AppID: vendorsim.DemoZegoAppID,
		ServerSecret: vendorsim.DemoZegoServerSecret, Timeout: time.Second}, hc)
	if err != nil {
		t.Fatal(err)
	}
	return []simApp{
		{"tapp", event.Tencent, strconv.Itoa(vendorsim.DemoTencentSDKAppID), tc, []string{"level", "tag"}, true, event.Rules{Vendor: event.Tencent}},
		{"vapp", event.Volc, strconv.Itoa(vendorsim.DemoVolcAppID), vc, []string{"level", "tag"}, false, event.Rules{Vendor: event.Volc, VolcAlias: true}},
		{"zapp", event.Zego, strconv.Itoa(vendorsim.DemoZegoAppID), zc, []string{"k0", "k1"}, false, event.Rules{Vendor: event.Zego}},
	}
}

// simFaults are transient faults only: every value must arrive in the end.
func simFaults(seed uint64) map[event.Vendor]vendorsim.FaultSpec {
	return map[event.Vendor]vendorsim.FaultSpec{
		event.Tencent: {Seed: seed, ErrorRates: map[string]float64{"30006": 0.05}, ItemErrorRates: map[string]float64{"30006": 0.25},
			HTTP5xxRate: 0.03, TimeoutRate: 0.01},
		event.Volc: {Seed: seed + 1, ErrorRates: map[string]float64{"InternalError": 0.05}, ItemErrorRates: map[string]float64{"INTERNAL_ERROR": 0.25},
			HTTP5xxRate: 0.03, TimeoutRate: 0.01},
		event.Zego: {Seed: seed + 2, ErrorRates: map[string]float64{"660000001": 0.05}, ItemErrorRates: map[string]float64{"660000001": 0.25},
			HTTP5xxRate: 0.03, TimeoutRate: 0.01},
	}
}

type simEvent struct {
	env    *jobs.Envelope
	app    *simApp
	finals int // final outcomes received
	tries  int // deliveries
	last   jobs.Outcome
}

// TestSimulatorNewestWins runs random interleavings of events for many
// accounts of the three vendors through coalesce and deliver against the
// simulator with random whole-call and per-item faults, redelivering what
// ends RetryLater or Released as the queue would. In the end the simulator
// holds the newest value of every field, every event got exactly one final
// outcome, and the simulator saw no overlapping writes, no write conflict
// and no QPS window over a budget.
func TestSimulatorNewestWins(t *testing.T) {
	for _, backfill := range []bool{false, true} {
		for seed := range uint64(3) {
			name := fmt.Sprintf("live seed %d", seed)
			if backfill {
				name = fmt.Sprintf("backfill mixed with live seed %d", seed)
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { runSimulation(t, seed, backfill) })
			})
		}
	}
}

func runSimulation(t *testing.T, seed uint64, backfill bool) {
	cfg := vendorsim.DemoConfig()
	cfg.Faults = simFaults(seed)
	sim, err := vendorsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: sim.Transport()}
	apps := simApps(t, hc)
	byName := map[string]*simApp{}
	for i := range apps {
		byName[apps[i].name] = &apps[i]
	}
	lim := &spacedLimiter{next: map[string]time.Time{}}
	ver := newMemVersions()
	d, err := New(Config{RetryInitial: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond, RetryBudget: 2 * time.Second, RetryMaxAttempts: 2},
		func(app string) (Sender, bool) {
			a, ok := byName[app]
			if !ok {
				return nil, false
			}
			return a.sender, true
		}, lim, ver, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(seed, 99))
	events := simEvents(t, rng, apps, backfill)
	byEnv := map[*jobs.Envelope]*simEvent{}
	for _, e := range events {
		byEnv[e.env] = e
	}

	var (
		mu      sync.Mutex
		pending = len(events)
		allDone = make(chan struct{})
		redeliv sync.WaitGroup
		c       *coalesce.Coalescer[jobs.Key, *jobs.Envelope]
	)
	const maxTries = 30
	flush := func(ctx context.Context, key jobs.Key, envs []*jobs.Envelope) {
		outs := d.Deliver(ctx, key, envs)
		if len(outs) != len(envs) {
			t.Errorf("%d outcomes for %d events", len(outs), len(envs))
			return
		}
		var hold time.Duration
		mu.Lock()
		defer mu.Unlock()
		for i, env := range envs {
			se, o := byEnv[env], outs[i]
			se.tries++
			se.last = o
			if o.Final() || se.tries >= maxTries {
				se.finals++
				if se.finals == 1 {
					pending--
					if pending == 0 {
						close(allDone)
					}
				}
				continue
			}
			if o.Kind != jobs.RetryLater && o.Kind != jobs.Released {
				t.Errorf("outcome kind %v", o.Kind)
				continue
			}
			hold = max(hold, o.Delay)
			delay := max(o.Delay, 100*time.Millisecond) // the queue's Nak delay
			redeliv.Go(func() {
				time.Sleep(delay)
				env.Meta.Delivered++
				if err := c.Add(context.Background(), key, env); err != nil {
					t.Errorf("redeliver: %v", err)
				}
			})
		}
		if hold > 0 {
			c.Defer(key, hold)
		}
	}
	c, err = coalesce.New(coalesce.Config{Grace: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxSize: 100, MaxFlushes: 8}, flush)
	if err != nil {
		t.Fatal(err)
	}

	// Three producers publish their share in random order with random gaps.
	order := rng.Perm(len(events))
	var producers sync.WaitGroup
	for p := range 3 {
		var mine []*jobs.Envelope
		var gaps []time.Duration
		for i := p; i < len(order); i += 3 {
			mine = append(mine, events[order[i]].env)
			gaps = append(gaps, time.Duration(rng.IntN(15))*time.Millisecond)
		}
		producers.Go(func() {
			for i, env := range mine {
				time.Sleep(gaps[i])
				if err := c.Add(context.Background(), env.Key(), env); err != nil {
					t.Errorf("Add: %v", err)
				}
			}
		})
	}
	producers.Wait()
	<-allDone
	redeliv.Wait()
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Every event ended exactly once, applied or superseded.
	retries := 0
	for _, e := range events {
		if e.finals != 1 || (e.last.Kind != jobs.Applied && e.last.Kind != jobs.Superseded) {
			t.Errorf("event %s/%s→%s v%v: %d final outcomes, last %+v after %d deliveries",
				e.env.Event.App, e.env.Event.From, e.env.Event.To, e.env.Version, e.finals, e.last, e.tries)
		}
		retries += e.tries - 1
	}

	// The simulator holds the newest value of every field.
	want := expectedState(events)
	for k, fields := range want {
		a := byName[k.app]
		got, ok := sim.Friend(a.vendor, a.simID, k.from, k.to)
		if !ok {
			t.Errorf("%v: nothing stored, want %v", k, fields)
			continue
		}
		if r, ok := fields[event.FieldRemark]; ok && got.Remark != r {
			t.Errorf("%v: remark %q, want %q", k, got.Remark, r)
		}
		if g, ok := fields[event.FieldGroups]; ok && joinGroups(got.Groups) != g {
			t.Errorf("%v: groups %q, want %q", k, got.Groups, g)
		}
		wantAttrs := map[string]string{}
		for f, v := range fields {
			if key, ok := strings.CutPrefix(f, event.AttrFieldPrefix); ok && v != "" {
				wantAttrs[key] = v
			}
		}
		if !maps.Equal(got.Attrs, wantAttrs) && !(len(got.Attrs) == 0 && len(wantAttrs) == 0) {
			t.Errorf("%v: attrs %v, want %v", k, got.Attrs, wantAttrs)
		}
	}

	// No overlap, no write conflict, no 1-second window over a budget.
	counters := sim.Counters()
	faults := int64(0)
	for _, a := range apps {
		vc := counters.Vendor(a.vendor)
		faults += vc.Faults + vc.ItemFailures
		if vc.Overlaps != 0 || vc.Conflicts != 0 || vc.Codes["30008"] != 0 {
			t.Errorf("%s: %d overlaps, %d conflicts, %d answers 30008", a.vendor, vc.Overlaps, vc.Conflicts, vc.Codes["30008"])
		}
		if vc.SigFailures != 0 || vc.Throttles != 0 {
			t.Errorf("%s: %d signature failures, %d throttles", a.vendor, vc.SigFailures, vc.Throttles)
		}
		for name, b := range vc.Budgets {
			if b.Limit > 0 && (b.MaxWindow > b.Limit || b.OverBudgetWindows > 0) {
				t.Errorf("budget %s: %d calls in one second, limit %d", name, b.MaxWindow, b.Limit)
			}
		}
	}
	if faults == 0 || retries == 0 {
		t.Errorf("no fault was injected (%d) or no event was redelivered (%d): the test proves nothing", faults, retries)
	}
	t.Logf("%d events, %d redeliveries, %d injected faults, %d vendor calls", len(events), retries, faults,
		counters.Tencent.Calls+counters.Volc.Calls+counters.Zego.Calls)
}

type friendKey struct{ app, from, to string }

// expectedState is the newest value per (app, from, to, field).
func expectedState(events []*simEvent) map[friendKey]map[string]string {
	type newest struct {
		v   jobs.Version
		val string
	}
	best := map[friendKey]map[string]newest{}
	for _, e := range events {
		ev := &e.env.Event
		k := friendKey{ev.App, ev.From, ev.To}
		if best[k] == nil {
			best[k] = map[string]newest{}
		}
		vals := itemFields(vendorItem(ev))
		for f, val := range vals {
			if cur, ok := best[k][f]; !ok || cur.v.Less(e.env.Version) {
				best[k][f] = newest{e.env.Version, val}
			}
		}
	}
	out := map[friendKey]map[string]string{}
	for k, fs := range best {
		out[k] = map[string]string{}
		for f, n := range fs {
			out[k][f] = n.val
		}
	}
	return out
}

func vendorItem(ev *event.Event) vendors.Item {
	return vendors.Item{To: ev.To, Remark: ev.Remark, Groups: ev.Groups, Attrs: ev.Attrs}
}

// simEvents generates events for 4 accounts per app, 6 friends each, with
// out-of-order versions; with backfill, a third are bulk rows whose ts is
// older than every live row.
func simEvents(t *testing.T, rng *rand.Rand, apps []simApp, backfill bool) []*simEvent {
	t.Helper()
	const perApp, accounts, friends = 120, 4, 6
	var out []*simEvent
	seq := uint64(0)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for ai := range apps {
		a := &apps[ai]
		for range perApp {
			seq++
			from := rng.IntN(accounts)
			to := rng.IntN(friends)
			ev := event.Event{App: a.name, From: fmt.Sprint(1000 + from), To: fmt.Sprint(2000 + to)}
			for ev.Remark == nil && ev.Groups == nil && len(ev.Attrs) == 0 {
				if rng.IntN(2) == 0 {
					ev.Remark = event.Ptr(randValue(rng))
				}
				if a.groups && rng.IntN(3) == 0 {
					g := []string{}
					for range rng.IntN(3) {
						g = append(g, fmt.Sprint("g", rng.IntN(5)))
					}
					ev.Groups = &g
				}
				for _, k := range a.attrs {
					if rng.IntN(3) == 0 {
						if ev.Attrs == nil {
							ev.Attrs = map[string]string{}
						}
						ev.Attrs[k] = randValue(rng)
					}
				}
			}
			if err := ev.ValidateFor(a.rules); err != nil {
				t.Fatalf("generated an invalid event: %v", err)
			}
			lane := event.LaneLive
			ts := base + int64(rng.IntN(1000))*int64(time.Millisecond) // live: close together, out of order
			if backfill && rng.IntN(3) == 0 {
				lane = event.LaneBulk
				ts = base - int64(1+rng.IntN(1000))*int64(time.Hour) // a backfill row read long ago
			}
			if rng.IntN(10) == 0 {
				ts = 0 // no ts: the publish time decides
			}
			ev.TS = ts
			meta := jobs.Meta{Seq: seq, Lane: lane, Delivered: 1, MaxDeliver: 10,
				Published: time.Unix(0, base+int64(seq)*int64(time.Millisecond))}
			env := &jobs.Envelope{Event: ev, Meta: meta, Version: jobs.VersionOf(&ev, meta)}
			out = append(out, &simEvent{env: env, app: a})
		}
	}
	return out
}

func randValue(rng *rand.Rand) string {
	if rng.IntN(8) == 0 {
		return "" // clears
	}
	return fmt.Sprint("v", rng.IntN(1000))
}
