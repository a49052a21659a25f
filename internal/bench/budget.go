package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/ratelimit"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// budgetTargetFraction is the target of achieved calls/s over the
// limiter's rate under saturation.
const budgetTargetFraction = 0.98

func runBudget(ctx context.Context, e *env, s *Section) error {
	s.Intro = fmt.Sprintf(`Workers with the default budgets (rate about %.0f%% of the documented QPS, rate + burst at most
%.0f%% of it; the "limiter rate" column is the workers' friendsync_ratelimit_budget_rate) saturate a simulated Tencent
SDKAppID (limit %d calls/s) and a ZEGO AppID (limit %d calls/s per API) with a backlog of accounts holding one event
each (ZEGO: half remark-only → UpdateFriendsAlias, half attribute-only → UpdateFriendAttributes), published after the
workers own their partitions. The rate is counted by the simulator over a steady window of %s that starts %s after
the first call; "busiest window" and "calls over the limit" (the simulator's MaxWindow and OverBudgetWindows) cover
the whole run, start burst included. With 3 workers, all share one Redis limiter.`,
		100*ratelimit.DefaultRateShare, 100*(1-ratelimit.DefaultHeadroom), vendorsim.DefaultTencentQPS, vendorsim.DefaultZegoQPS,
		e.sc.budgetWindow, e.sc.budgetWarm)
	tbl := Table{Header: []string{"workers", "budget", "limiter rate", "calls in window", "achieved calls/s", "÷ rate",
		"per-second min–max", "rate factor at window start → end", "busiest 1-s window (limit)", "calls over limit", "throttled (60007)", "backlog left at window end"}}
	cost := Table{Caption: "Limiter cost in the same window (Redis script runs are counted server-wide with INFO commandstats, so another client's scripts would be included):",
		Header: []string{"workers", "vendor calls in window", "Redis script runs in window", "script runs per call", "limiter Redis errors (switch to local fallback)",
			"mean limiter wait", "mean vendor call", "calls per worker (whole run)"}}
	var errs []error
	for _, n := range []int{1, 3} {
		if err := budgetRun(ctx, e, s, &tbl, &cost, n); err != nil {
			errs = append(errs, fmt.Errorf("%d worker(s): %w", n, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.Tables = append(s.Tables, tbl, cost)
	s.Notes = append(s.Notes,
		"A GCRA bucket grants at most rate + burst calls in any 1-second window; calls reach the vendor a little after their token, so scheduling (and, with a real vendor, network) jitter can bunch them. The simulator counts arrivals.",
		"Calls are counted when the simulator receives them (throttled ones included), so a throttled call is a wasted token, not a success.",
		"The rate factor is the limiter's adaptive multiplier (friendsync_ratelimit_rate_factor, lowest over the workers): each vendor throttle multiplies it by 0.7 and it recovers by 0.05 per second, so one 60007 costs several seconds of reduced rate.")
	return errors.Join(errs...)
}

func budgetRun(ctx context.Context, e *env, s *Section, tbl, cost *Table, workers int) error {
	d, err := e.deploy("budget", deployOpts{})
	if err != nil {
		return err
	}
	defer d.cleanup()
	counts := make([]atomic.Int64, workers)
	if err := d.start(ctx, workers, func(i int) http.RoundTripper {
		return countingTransport{next: d.sim.Transport(), n: &counts[i]}
	}); err != nil {
		return err
	}

	// The limiter's configured rates, as the workers export them.
	rates := d.metricByLabel("friendsync_ratelimit_budget_rate", "budget")
	rateOf := func(simName string) (float64, error) {
		r := rates[limiterBudget(simName)]
		if len(r) == 0 || r[0] <= 0 {
			return 0, fmt.Errorf("no friendsync_ratelimit_budget_rate for %s", limiterBudget(simName))
		}
		return r[0], nil
	}
	tencentRate, err := rateOf(simBudgetTencent)
	if err != nil {
		return err
	}
	zegoRate, err := rateOf(simBudgetZegoAlias)
	if err != nil {
		return err
	}
	if r, err := rateOf(simBudgetZegoAttrs); err != nil || r != zegoRate {
		return fmt.Errorf("zego budgets differ (%v, %v) or are missing: %v", zegoRate, r, err)
	}

	// Enough accounts to keep every budget busy past the window (one call
	// each), and not so many that the drain at stop takes long.
	span := e.sc.budgetWarm + e.sc.budgetWindow + 2*time.Second
	nT := int(tencentRate*span.Seconds()) + 20
	nZ := int(zegoRate*span.Seconds()) + 2
	evs := make([]event.Event, 0, nT+2*nZ)
	for a := range nT {
		evs = append(evs, event.Event{App: appTencent, From: accountID(event.Tencent, a), To: friendID(event.Tencent, a), Remark: event.Ptr("b")})
	}
	for a := range 2 * nZ {
		ev := event.Event{App: appZego, From: accountID(event.Zego, a), To: friendID(event.Zego, a)}
		if a < nZ {
			ev.Remark = event.Ptr("b")
		} else {
			ev.Attrs = map[string]string{"k0": "b"}
		}
		evs = append(evs, ev)
	}
	shuffle(uint64(workers), evs)
	if _, err := d.publishAll(ctx, evs); err != nil {
		return err
	}
	budgets := []struct {
		vendor event.Vendor
		name   string
		rate   float64
		events int
	}{
		{event.Tencent, simBudgetTencent, tencentRate, nT},
		{event.Zego, simBudgetZegoAlias, zegoRate, nZ},
		{event.Zego, simBudgetZegoAttrs, zegoRate, nZ},
	}
	calls := func(cs vendorsim.Counters, i int) int64 {
		return cs.Vendor(budgets[i].vendor).Budgets[budgets[i].name].Calls
	}

	// Steady window, from warm-up after the first call.
	deadline := time.Now().Add(30 * time.Second)
	for calls(d.sim.Counters(), 0) == 0 {
		if time.Now().After(deadline) {
			return errors.New("no vendor call 30s after the backlog was published")
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	if err := sleep(ctx, e.sc.budgetWarm); err != nil {
		return err
	}
	r0 := e.redisScriptCalls(ctx)
	f0 := d.metricByLabel("friendsync_ratelimit_rate_factor", "budget")
	c0, t0 := d.sim.Counters(), time.Now()
	if err := sleep(ctx, e.sc.budgetWindow); err != nil {
		return err
	}
	c1, t1 := d.sim.Counters(), time.Now()
	f1s := d.metricByLabel("friendsync_ratelimit_rate_factor", "budget")
	r1 := e.redisScriptCalls(ctx)
	if err := d.stop(); err != nil {
		return err
	}
	final := d.sim.Counters()
	window := t1.Sub(t0)
	var callsInWindow int64

	for i, b := range budgets {
		n := calls(c1, i) - calls(c0, i)
		callsInWindow += n
		rate := float64(n) / window.Seconds()
		bc := final.Vendor(b.vendor).Budgets[b.name]
		var perSec []int64
		for _, sc := range bc.PerSecond {
			if sc.Unix > t0.Unix() && sc.Unix < t1.Unix() { // whole seconds inside the window
				perSec = append(perSec, sc.Calls)
			}
		}
		minmax := "n/a"
		if len(perSec) > 0 {
			minmax = fmt.Sprintf("%d–%d", slices.Min(perSec), slices.Max(perSec))
		}
		left := int64(b.events) - calls(c1, i)
		lname := limiterBudget(b.name)
		factor := fmt.Sprintf("%s → %s", f2(minOf(f0[lname])), f2(minOf(f1s[lname])))
		tbl.Rows = append(tbl.Rows, []string{itoa(workers), maskBudget(b.name), f1(b.rate), itoa(n), f1(rate), f3(rate / b.rate),
			minmax, factor, fmt.Sprintf("%d (%d)", bc.MaxWindow, bc.Limit), itoa(bc.OverBudgetWindows), itoa(bc.Throttled), itoa(max(0, left))})
		label := fmt.Sprintf("%d worker(s), %s: achieved calls/s ÷ limiter rate", workers, b.name)
		if left <= 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%d worker(s), %s: the backlog ran out inside the window, so the rate is a lower bound.", workers, b.name))
		}
		s.check(label, f3(rate/b.rate), fmt.Sprintf("≥ %.2f", budgetTargetFraction), rate/b.rate >= budgetTargetFraction, false)
	}
	invariantChecks(s, fmt.Sprintf("%d worker(s),", workers), final)
	var parts []string
	for i := range counts {
		parts = append(parts, fmt.Sprintf("w%d %d", i+1, counts[i].Load()))
	}
	scripts, perCall := "n/a", "n/a"
	if r0 >= 0 && r1 >= r0 {
		scripts = itoa(r1 - r0)
		if callsInWindow > 0 {
			perCall = f1(float64(r1-r0) / float64(callsInWindow))
		}
	}
	cost.Rows = append(cost.Rows, []string{itoa(workers), itoa(callsInWindow), scripts, perCall,
		f1(d.metricSum("friendsync_ratelimit_errors_total")),
		ms(d.meanDuration("friendsync_ratelimit_wait_seconds")) + " ms",
		ms(d.meanDuration("friendsync_deliver_call_duration_seconds")) + " ms",
		strings.Join(parts, ", ")})
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limiterBudget is the limiter's name of a simulator budget.
func limiterBudget(simName string) string {
	if simName == simBudgetTencent {
		return simName + ":friend_update"
	}
	return simName
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Min(xs)
}
