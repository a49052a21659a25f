package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/queue"
)

// batchTarget is the target of calls made over the optimum.
const batchTarget = 1.02

func runBatching(ctx context.Context, e *env, s *Section) error {
	s.Intro = `A backlog of remark updates, each to a friend of its own (so every event is one item and nothing merges), is
published for the three vendors before one worker starts. Accounts are drawn either from a Zipf distribution (s = 1.1:
a few busy accounts, a long tail of accounts with one or two events) or uniformly. The optimum is Σ ceil(events of the
account / cap) over the accounts (cap: Tencent 1000, Volcengine 10, ZEGO UpdateFriendsAlias 20); "calls" counts every
request the simulator received (throttled or failed ones included). Vendor limits are the documented ones (Volcengine:
limiter 300 + 10, simulator 330). Each workload runs twice: with the production MaxAckPending of 1000 per partition
(the backlog has more messages per partition than that, so the worker cannot hold every account's events at once:
informative), and with a MaxAckPending as large as the fullest partition's backlog, so that full batches are possible
(the target). Everything else is the production default (grace 50 ms, max delay 1 s, fetch batch 16).`
	tbl := Table{Header: []string{"workload", "MaxAckPending per partition", "vendor", "events", "accounts with events", "busiest account",
		"optimum calls", "calls", "calls ÷ optimum", "events topped up", "backlog pulled in", "drained in"}}
	var errs []error
	for _, dist := range []string{distZipf, distUniform} {
		for _, fit := range []bool{false, true} {
			if err := batchingRun(ctx, e, s, &tbl, dist, fit); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", dist, err))
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	s.Tables = append(s.Tables, tbl)
	s.Notes = append(s.Notes,
		"\"Backlog pulled in\" is when the consumers had handed the worker every message (polled every 200 ms), \"drained in\" when every event was applied and acknowledged, both from the worker's start.",
		"A worker holds at most MaxAckPending unacknowledged messages per partition and acknowledges an event only after its call; with the production 1000 the fullest partitions hold more of the backlog than that, so accounts whose events sit on both sides of that window need an extra call.",
		"\"Events topped up\" (friendsync_deliver_topped_up_events_total) joined a batch after its first rate-limit wait: without the top-up each would have waited for a later call.")
	return errors.Join(errs...)
}

// batchingRun measures one workload; fit sizes MaxAckPending to the
// fullest partition's backlog, else it is the production default.
func batchingRun(ctx context.Context, e *env, s *Section, tbl *Table, dist string, fit bool) error {
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
	var qc queue.Config
	window := queue.DefaultMaxAckPendingLive
	if fit {
		window = fullestPartition(all, event.DefaultPartitions)
		qc.MaxAckPendingLive = window
	}
	d, err := e.deploy("batch", deployOpts{queue: qc})
	if err != nil {
		return err
	}
	defer d.cleanup()
	if err := d.ensure(ctx); err != nil {
		return err
	}
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
	topped := d.metricSum("friendsync_deliver_topped_up_events_total")
	if err := d.stop(); err != nil {
		return err
	}
	label := dist
	if !fit {
		label += ", MaxAckPending 1000"
	}
	cs := d.sim.Counters()
	for i, v := range vendors {
		opt := optimum(per[v], vendorCap[v])
		calls := cs.Vendor(v).Calls
		busiest := 0
		for _, n := range per[v] {
			busiest = max(busiest, n)
		}
		ratio := float64(calls) / float64(opt)
		toppedCell := ""
		if i == 0 {
			toppedCell = fmt.Sprintf("%.0f (all vendors)", topped)
		}
		tbl.Rows = append(tbl.Rows, []string{dist, itoa(window), string(v), itoa(want[v]), itoa(len(per[v])), itoa(busiest), itoa(opt),
			itoa(calls), f3(ratio), toppedCell, pullText(pull, took), secs(took)})
		if fit {
			s.check(fmt.Sprintf("%s, %s: calls ÷ optimum", label, v), f3(ratio), fmt.Sprintf("≤ %.2f", batchTarget), ratio <= batchTarget, false)
		} else {
			s.check(fmt.Sprintf("%s, %s: calls ÷ optimum", label, v), f3(ratio), "(informative: the backlog exceeds the window)", true, false)
		}
		applied := cs.Vendor(v).Applied
		s.check(fmt.Sprintf("%s, %s: events applied", label, v), itoa(applied), fmt.Sprintf("≥ %d (all)", want[v]), applied >= int64(want[v]), true)
	}
	invariantChecks(s, label+",", cs)
	return nil
}

// fullestPartition is the most events of evs in one partition.
func fullestPartition(evs []event.Event, partitions int) int {
	n := make([]int, partitions)
	for i := range evs {
		n[event.Partition(evs[i].App, evs[i].From, partitions)]++
	}
	return slices.Max(n)
}

// pullText shows when the backlog was seen fully delivered (the watcher
// may not have polled before the drain ended it).
func pullText(d, drained time.Duration) string {
	if d < 0 {
		d = drained
	}
	return "≤ " + secs(d)
}
