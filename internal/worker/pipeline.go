package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/deliver"
	"github.com/friendsync/friendsync/internal/jobs"
)

// The data path, in three files:
//
//	queue/consume.go   a message → decode + validate → *jobs.Envelope → pipeline.Handle
//	worker/pipeline.go coalesce per (app, from) → deliver (merge, chunk, limit, send, retry) → Settle
//	queue/settle.go    jobs.Outcome → Ack | NakWithDelay | Nak | DLQ copy + Term

// pipeline is the middle of the data path: it holds one coalescer per app
// (each with its vendor's batch cap) and delivers every flushed batch.
type pipeline struct {
	coalescers map[string]*coalesce.Coalescer[jobs.Key, *jobs.Envelope]
	deliverer  *deliver.Deliverer
	// holdAfterRetry is the minimum time a key waits after a RetryLater, so
	// the Nak'd events come back and merge with newer ones instead of being
	// overtaken by them.
	holdAfterRetry time.Duration
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
	return c.Add(ctx, env.Key(), env)
}

// flush delivers one account's batch and settles every envelope with its
// outcome. The coalescer runs at most one flush per key, so at most one
// vendor call per account is in flight in this worker; partition leases
// make that hold cluster-wide.
func (p *pipeline) flush(ctx context.Context, key jobs.Key, envs []*jobs.Envelope) {
	outs := p.deliverer.Deliver(ctx, key, envs)
	var hold time.Duration
	for i, env := range envs {
		env.Settle(outs[i])
		if outs[i].Kind == jobs.RetryLater {
			hold = max(hold, outs[i].Delay, p.holdAfterRetry)
		}
	}
	if hold > 0 {
		p.coalescers[key.App].Defer(key, hold)
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
	}
	return s
}
