package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/friendsync/friendsync/event"
)

// batchTarget is the target of calls made over the optimum.
const batchTarget = 1.02

func runBatching(ctx context.Context, e *env, s *Section) error {
	s.Intro = `A backlog of remark updates, each to a friend of its own (so every event is one item and nothing merges), is
published for the three vendors before one worker starts, so full batches are possible. Accounts are drawn either
from a Zipf distribution (s = 1.1: a few busy accounts, a long tail of accounts with one or two events) or
uniformly. The optimum is Σ ceil(events of the account / cap) over the accounts (cap: Tencent 1000, Volcengine 10,
ZEGO UpdateFriendsAlias 20); "calls" counts every request the simulator received (throttled or failed ones
included). Vendor limits are the documented ones (Volcengine: limiter 300 + 10, simulator 330).`
	tbl := Table{Header: []string{"workload", "vendor", "events", "accounts with events", "busiest account", "optimum calls", "calls", "calls ÷ optimum", "backlog pulled in", "drained in"}}
	var errs []error
	for _, dist := range []string{distZipf, distUniform} {
		if err := batchingRun(ctx, e, s, &tbl, dist); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dist, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.Tables = append(s.Tables, tbl)
	s.Notes = append(s.Notes,
		"\"Backlog pulled in\" is when the consumers had handed the worker every message (polled every 200 ms), \"drained in\" when every event was applied and acknowledged, both from the worker's start.",
		"A worker pulls at most MaxAckPending (1000) unacknowledged messages per partition and acknowledges an event only after its call; an account whose events sit on both sides of that window, or that flushes (50 ms grace) before the rest of its events arrive, needs an extra call.")
	return errors.Join(errs...)
}

func batchingRun(ctx context.Context, e *env, s *Section, tbl *Table, dist string) error {
	d, err := e.deploy("batch", deployOpts{})
	if err != nil {
		return err
	}
	defer d.cleanup()
	if err := d.ensure(ctx); err != nil {
		return err
	}
	vendors := []event.Vendor{event.Tencent, event.Volc, event.Zego}
	var all []event.Event
	per := map[event.Vendor]map[string]int{}
	want := map[event.Vendor]int{}
	for i, v := range vendors {
		size := e.sc.batch[v]
		evs, counts := backlog(v, dist, size[0], size[1], uint64(i+1))
		all = append(all, evs...)
		per[v], want[v] = counts, len(evs)
	}
	shuffle(7, all)
	if _, err := d.publishAll(ctx, all); err != nil {
		return err
	}
	start := time.Now()
	if err := d.start(ctx, 1, nil); err != nil {
		return err
	}
	// Watch how long the worker takes to pull the whole backlog.
	pulled := make(chan time.Duration, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for wctx.Err() == nil {
			if d.undelivered(wctx) == 0 {
				pulled <- time.Since(start)
				return
			}
			_ = sleep(wctx, 200*time.Millisecond)
		}
		pulled <- -1
	}()
	if err := d.waitDrained(ctx, want, 3*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	stopWatch()
	pull := <-pulled
	if err := d.stop(); err != nil {
		return err
	}
	cs := d.sim.Counters()
	for _, v := range vendors {
		opt := optimum(per[v], vendorCap[v])
		calls := cs.Vendor(v).Calls
		busiest := 0
		for _, n := range per[v] {
			busiest = max(busiest, n)
		}
		ratio := float64(calls) / float64(opt)
		tbl.Rows = append(tbl.Rows, []string{dist, string(v), itoa(want[v]), itoa(len(per[v])), itoa(busiest), itoa(opt), itoa(calls), f3(ratio), pullText(pull, took), secs(took)})
		s.check(fmt.Sprintf("%s, %s: calls ÷ optimum", dist, v), f3(ratio), fmt.Sprintf("≤ %.2f", batchTarget), ratio <= batchTarget, false)
		applied := cs.Vendor(v).Applied
		s.check(fmt.Sprintf("%s, %s: events applied", dist, v), itoa(applied), fmt.Sprintf("≥ %d (all)", want[v]), applied >= int64(want[v]), true)
	}
	invariantChecks(s, dist+",", cs)
	return nil
}

// pullText shows when the backlog was seen fully delivered (the watcher
// may not have polled before the drain ended it).
func pullText(d, drained time.Duration) string {
	if d < 0 {
		d = drained
	}
	return "≤ " + secs(d)
}
