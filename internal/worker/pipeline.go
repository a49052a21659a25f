package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/deliver"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/queue"
)

// The data path, in three files:
//
//	queue/consume.go   a message → decode + validate → *jobs.Envelope → pipeline.Handle
//	worker/pipeline.go coalesce per (app, from) → deliver (merge, chunk, limit, top up, send, retry) → Settle
//	queue/settle.go    jobs.Outcome → Ack | NakWithDelay | Nak | DLQ copy + Term

// pipeline is the middle of the data path: it holds one coalescer per app
// (each with its vendor's batch cap) and delivers every flushed batch.
//
// Two things make batches as full as the backlog allows:
//
//   - Top-up: a flush cuts its batch and then waits for the first call's
//     rate-limit token, often for hundreds of milliseconds under load;
//     deliver tops the batch up with what the account received meanwhile
//     (coalesce.Top) before anything is sent.
//   - Backlog hold: while a partition's intake is still handing over a
//     backlog (the last message of a lane said more were pending, and one
//     arrived within quietAfter), a key of that partition that falls due
//     by grace or max delay is held (coalesce.WithHold) instead of cut:
//     its next events are probably on their way. The hold ends when the
//     intake catches up, stops (its context ends), goes quiet (stalled)
//     or fills the lane's MaxAckPending window, when the coalescer needs
//     room, or after the coalescer's MaxHold (maxHold).
type pipeline struct {
	coalescers map[string]*coalesce.Coalescer[jobs.Key, *jobs.Envelope]
	deliverer  *deliver.Deliverer
	// holdAfterRetry is the minimum time a key waits after a RetryLater, so
	// the Nak'd events come back and merge with newer ones instead of being
	// overtaken by them.
	holdAfterRetry time.Duration
	// window is the MaxAckPending of each lane (live, bulk): a lane that
	// holds this many unsettled messages gets no more until some settle.
	window [2]int64
	// quietAfter ends a partition's backlog hold when its intake handed
	// over nothing for this long.
	quietAfter time.Duration
	parts      []partIntake // by partition
	base       time.Time    // origin of partIntake.last
	outs       sync.Pool    // *[]jobs.Outcome
}

// partIntake is what the pipeline knows of one partition's intake, per
// lane (live, bulk). Handle updates it, the coalescers' HoldFunc reads it;
// atomics only, so HoldFunc never waits (it runs under a coalescer's lock).
type partIntake struct {
	last      [2]atomic.Int64 // when the lane's latest message arrived, ns since pipeline.base
	inHand    [2]atomic.Int64 // handed to the coalescers, not yet settled
	streaming [2]atomic.Bool  // a backlog is being handed over

	mu     sync.Mutex
	timer  *time.Timer     // quiet check, armed while a lane streams
	intake context.Context // of the latest intake (Handle's ctx)
}

// newPipeline returns a pipeline for partitions partitions; windows are
// the lanes' MaxAckPending.
func newPipeline(d *deliver.Deliverer, partitions int, windows [2]int, quietAfter, holdAfterRetry time.Duration) *pipeline {
	return &pipeline{
		coalescers:     map[string]*coalesce.Coalescer[jobs.Key, *jobs.Envelope]{},
		deliverer:      d,
		holdAfterRetry: holdAfterRetry,
		window:         [2]int64{int64(windows[0]), int64(windows[1])},
		quietAfter:     quietAfter,
		parts:          make([]partIntake, partitions),
		base:           time.Now(),
	}
}

func (p *pipeline) now() int64 { return int64(time.Since(p.base)) }

// laneWindows are the lanes' MaxAckPending (live, bulk) of a queue config.
func laneWindows(q queue.Config) [2]int {
	w := [2]int{q.MaxAckPendingLive, q.MaxAckPendingBulk}
	if w[0] == 0 {
		w[0] = queue.DefaultMaxAckPendingLive
	}
	if w[1] == 0 {
		w[1] = queue.DefaultMaxAckPendingBulk
	}
	return w
}

// quietAfter is how long a partition's intake may hand over nothing while
// it still counts as streaming a backlog: twice the intake's IdleWait (a
// pull round that outlasts its long poll is a stall, a stopped or a
// stalled intake), 2s by default. Shorter, a loaded machine's slow rounds
// ended holds early (fsbench: extra calls with 500ms); the cost is that
// the held keys of a stalled intake flush this much later (a stopped one
// ends its context, which releases them at once).
func quietAfter(q queue.Config) time.Duration {
	if q.IdleWait == 0 {
		return 2 * queue.DefaultIdleWait
	}
	return 2 * q.IdleWait
}

// maxHold is the last-resort bound of a backlog hold, half the AckWait
// (30s by default): held messages get InProgress heartbeats, and the hold
// normally ends when the intake catches up, goes quiet or fills its
// window; reading a large backlog on a loaded machine took 8-15s in the
// fsbench batching runs, and a hold that ends before the intake has
// handed over an account's last event costs that account an extra call.
func maxHold(cfg config.Config) time.Duration {
	return max(time.Duration(cfg.MaxDelay), time.Duration(cfg.AckWait)/2)
}

// addApp creates the coalescer of one app.
func (p *pipeline) addApp(app string, cfg coalesce.Config) error {
	c, err := coalesce.New(cfg, p.flush, coalesce.WithHold(p.hold))
	if err != nil {
		return fmt.Errorf("worker: app %q: %w", app, err)
	}
	p.coalescers[app] = c
	return nil
}

func laneIndex(l event.Lane) int {
	if l == event.LaneBulk {
		return 1
	}
	return 0
}

func (p *pipeline) part(n int) *partIntake {
	if n < 0 || n >= len(p.parts) {
		return nil
	}
	return &p.parts[n]
}

// Handle takes one envelope from the queue into its app's coalescer. It
// blocks while the coalescer is full (backpressure); an error makes the
// queue release the message.
func (p *pipeline) Handle(ctx context.Context, env *jobs.Envelope) error {
	c, ok := p.coalescers[env.Event.App]
	if !ok {
		// The queue's validator rejects unknown apps first; this is a guard.
		env.Settle(jobs.Outcome{Kind: jobs.Invalid, Reason: fmt.Sprintf("unknown app %q", env.Event.App)})
		return nil
	}
	st, li := p.part(env.Meta.Partition), laneIndex(env.Meta.Lane)
	if st != nil {
		p.watchIntake(ctx, env.Meta.Partition, st)
		p.arrived(env.Meta.Partition, st, li, env.Meta.Pending)
	}
	err := c.Add(ctx, env.Key(), env)
	if err != nil && st != nil {
		st.inHand[li].Add(-1)
	}
	return err
}

// arrived records a message of partition n's lane li.
func (p *pipeline) arrived(n int, st *partIntake, li int, pending uint64) {
	st.last[li].Store(p.now())
	held := st.inHand[li].Add(1)
	streaming := pending > 0 && held < p.window[li]
	was := st.streaming[li].Swap(streaming)
	switch {
	case streaming && !was:
		p.armQuiet(n, st, p.quietAfter)
	case was && !streaming: // caught up, or the window is full
		p.release(n)
	}
}

// watchIntake makes the end of ctx, the context of partition n's intake
// (it ends when the intake stops: lease lost or released, shutdown), end
// the partition's streaming at once: nothing more is coming.
func (p *pipeline) watchIntake(ctx context.Context, n int, st *partIntake) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.intake == ctx {
		return
	}
	st.intake = ctx
	context.AfterFunc(ctx, func() { p.stopped(n, st) })
}

// stopped ends the streaming of partition n: its intake stopped.
func (p *pipeline) stopped(n int, st *partIntake) {
	was := st.streaming[0].Swap(false)
	was = st.streaming[1].Swap(false) || was
	if was {
		p.release(n)
	}
}

// armQuiet makes sure a quiet check of partition n runs within d.
func (p *pipeline) armQuiet(n int, st *partIntake, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.timer == nil {
		st.timer = time.AfterFunc(d, func() { p.checkQuiet(n, st) })
		return
	}
	st.timer.Reset(d)
}

// checkQuiet ends the streaming of every lane of partition n whose intake
// handed over nothing for quietAfter, and checks again while one streams.
func (p *pipeline) checkQuiet(n int, st *partIntake) {
	now := p.now()
	next := time.Duration(-1)
	quieted := false
	for li := range st.streaming {
		if !st.streaming[li].Load() {
			continue
		}
		idle := time.Duration(now - st.last[li].Load())
		if idle >= p.quietAfter {
			if st.streaming[li].CompareAndSwap(true, false) {
				quieted = true
			}
			continue
		}
		if left := p.quietAfter - idle; next < 0 || left < next {
			next = left
		}
	}
	if quieted {
		p.release(n)
	}
	if next >= 0 {
		p.armQuiet(n, st, next)
	}
}

// release flushes the keys of partition n that wait for its backlog.
func (p *pipeline) release(n int) {
	for _, c := range p.coalescers {
		c.Release(n)
	}
}

// hold is the coalescers' HoldFunc: a due key waits while every lane its
// buffered events came from is streaming a backlog in its partition. It
// runs under the coalescer's lock and reads atomics only.
func (p *pipeline) hold(_ jobs.Key, buffered []*jobs.Envelope) (int, bool) {
	n := buffered[0].Meta.Partition
	st := p.part(n)
	if st == nil {
		return n, false
	}
	for _, env := range buffered {
		if !st.streaming[laneIndex(env.Meta.Lane)].Load() {
			return n, false
		}
	}
	return n, true
}

// flush delivers one account's batch and settles every envelope with its
// outcome. The coalescer runs at most one flush per key, so at most one
// vendor call per account is in flight in this worker; partition leases
// make that hold cluster-wide. Deliver may top the batch up with what the
// account received while the first call waited for its token.
func (p *pipeline) flush(ctx context.Context, key jobs.Key, envs []*jobs.Envelope) {
	c := p.coalescers[key.App]
	top := func(b []*jobs.Envelope) []*jobs.Envelope { return c.Top(key, b) }
	outp, _ := p.outs.Get().(*[]jobs.Outcome)
	if outp == nil {
		outp = new([]jobs.Outcome)
	}
	envs, outs := p.deliverer.DeliverTop(ctx, key, envs, top, (*outp)[:0])
	var hold time.Duration
	for i, env := range envs {
		env.Settle(outs[i])
		if st := p.part(env.Meta.Partition); st != nil {
			st.inHand[laneIndex(env.Meta.Lane)].Add(-1)
		}
		if outs[i].Kind == jobs.RetryLater {
			hold = max(hold, outs[i].Delay, p.holdAfterRetry)
		}
	}
	clear(outs)
	*outp = outs[:0]
	p.outs.Put(outp)
	if hold > 0 {
		c.Defer(key, hold)
	}
}

// close drains every coalescer: buffered events are delivered (or released
// when ctx ends first).
func (p *pipeline) close(ctx context.Context) error {
	var first error
	for _, c := range p.coalescers {
		if err := c.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	for i := range p.parts {
		st := &p.parts[i]
		st.mu.Lock()
		if st.timer != nil {
			st.timer.Stop()
		}
		st.mu.Unlock()
	}
	return first
}

// stats sums the coalescers' gauges.
func (p *pipeline) stats() coalesce.Stats {
	var s coalesce.Stats
	for _, c := range p.coalescers {
		st := c.Stats()
		s.Keys += st.Keys
		s.Buffered += st.Buffered
		s.InFlight += st.InFlight
		s.Held += st.Held
		s.Holding += st.Holding
	}
	return s
}
