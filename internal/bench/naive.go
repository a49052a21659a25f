package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendors/tencent"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func runNaive(ctx context.Context, e *env, s *Section) error {
	n, accounts, g := e.sc.naiveEvents, e.sc.naiveAccounts, e.sc.naiveGoroutines
	s.Intro = fmt.Sprintf(`The same %d Tencent remark updates (Zipf over %d accounts, each to a friend of its own) are
applied three ways against a fresh simulator each time (write time 5 ms: a write arriving while another write for
the same account is applied is answered 30008): naively by %d goroutines that each call the Tencent client once per
event, with no coalescing and no per-account serialisation and no retry, as app servers calling the vendor directly
would (with the documented 200 calls/s limit, and without it so only the conflicts show); and by friendsync (one
worker, default budget, backlog published first).`, n, accounts, g)
	evs, per := backlog(event.Tencent, distZipf, n, accounts, 31)
	opt := optimum(per, vendorCap[event.Tencent])
	tbl := Table{Header: []string{"run", "calls", "calls ÷ optimum (" + itoa(opt) + ")", "events applied", "30008 conflicts", "30008 ÷ calls", "60007 throttled", "overlapping writes", "busiest 1-s window (limit)", "took"}}
	row := func(name string, cs vendorsim.Counters, took time.Duration) {
		tc := cs.Tencent
		b := tc.Budgets[simBudgetTencent]
		limit := "none"
		if b.Limit > 0 {
			limit = itoa(b.Limit)
		}
		tbl.Rows = append(tbl.Rows, []string{name, itoa(tc.Calls), f2(float64(tc.Calls) / float64(opt)), itoa(tc.Applied),
			itoa(tc.Conflicts), f3(float64(tc.Conflicts) / float64(max(1, tc.Calls))), itoa(tc.Throttles), itoa(tc.Overlaps),
			fmt.Sprintf("%d (%s)", b.MaxWindow, limit), secs(took)})
	}
	for _, limited := range []bool{true, false} {
		name := fmt.Sprintf("naive, %d goroutines, vendor limit 200/s", g)
		mutate := func(*vendorsim.Config) {}
		if !limited {
			name = fmt.Sprintf("naive, %d goroutines, no vendor limit", g)
			mutate = func(c *vendorsim.Config) { c.TencentQPS = -1 }
		}
		cs, took, err := naiveRun(ctx, mutate, evs, g)
		if err != nil {
			return err
		}
		row(name, cs, took)
	}

	d, err := e.deploy("naive", deployOpts{})
	if err != nil {
		return err
	}
	defer d.cleanup()
	if err := d.ensure(ctx); err != nil {
		return err
	}
	ours := make([]event.Event, len(evs))
	copy(ours, evs)
	if _, err := d.publishAll(ctx, ours); err != nil {
		return err
	}
	start := time.Now()
	if err := d.start(ctx, 1, nil); err != nil {
		return err
	}
	if err := d.waitDrained(ctx, map[event.Vendor]int{event.Tencent: n}, 3*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	if err := d.stop(); err != nil {
		return err
	}
	cs := d.sim.Counters()
	row("friendsync, 1 worker, vendor limit 200/s", cs, took)
	s.Tables = append(s.Tables, tbl)
	tc := cs.Tencent
	s.check("friendsync: 30008 conflicts", itoa(tc.Conflicts), "0", tc.Conflicts == 0, true)
	s.check("friendsync: events applied", itoa(tc.Applied), fmt.Sprintf("%d (all)", n), tc.Applied >= int64(n), true)
	invariantChecks(s, "friendsync,", cs)
	s.Notes = append(s.Notes,
		"The naive callers do not retry, so every 30008 or 60007 is a lost update; retrying would add calls and, for 60007, more throttling.",
		"friendsync's calls include extra batches when an account's events did not all arrive within one coalescing window (see the batching measurement).")
	return nil
}

// naiveRun sends one Tencent call per event from g goroutines against a
// fresh simulator and returns its counters.
func naiveRun(ctx context.Context, mutate func(*vendorsim.Config), evs []event.Event, g int) (vendorsim.Counters, time.Duration, error) {
	sim, err := vendorsim.New(simConfig(mutate))
	if err != nil {
		return vendorsim.Counters{}, 0, err
	}
	client, err := tencent.New(tencent.Config{BaseURL: inProcessBase + "/tencent", SDKAppID: tencentSDKAppID,
		Identifier: tencentAdmin, Key: tencentKey}, &http.Client{Transport: sim.Transport()})
	if err != nil {
		return vendorsim.Counters{}, 0, err
	}
	work := make(chan *event.Event)
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Go(func() {
			for ev := range work {
				for _, call := range client.Split(ev.From, []vendors.Item{{To: ev.To, Remark: ev.Remark}}) {
					_, _ = client.Send(ctx, call) // failures are counted by the simulator
				}
			}
		})
	}
	for i := range evs {
		select {
		case work <- &evs[i]:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return sim.Counters(), time.Since(start), ctx.Err()
}
