package queue

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
)

// TestStopWhilePullOpen: messages that reach a stopping partition through
// its still-open long poll are released once each, not Nak'd back into the
// same pull until MaxDeliver dead-letters them (seen in the worker's
// integration proofs as "released on delivery 10 of 10: partition
// stopping" at every rebalance and SIGTERM under traffic). The next owner
// gets every one of them on delivery 2.
func TestStopWhilePullOpen(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		cfg.IdleWait = time.Second // the open poll outlives the stop's cancel
		cfg.AckWait = 30 * time.Second
		topo := ensure(t, js, cfg)
		rec := newRecorder()
		a := startConsumer(t, js, cfg, topo, "w-stopping", nil, rec, false, nil, 0)
		time.Sleep(200 * time.Millisecond) // the partition is idle: its intake waits in a long poll

		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopped <- a.StopPartition(ctx, 0)
		}()
		time.Sleep(20 * time.Millisecond) // intake cancelled, the poll still open
		const n = 5
		for i := range n {
			publish(t, js, l, event.LaneLive, topo.Partitions, newEvent(t, "late"+strconv.Itoa(i), 0, topo.Partitions))
		}
		if err := <-stopped; err != nil {
			t.Fatalf("StopPartition: %v", err)
		}
		if got := len(rec.envs); got != 0 {
			t.Fatalf("the stopping partition handed %d envelopes to the handler", got)
		}
		if dls := dlqEntries(t, js, l); len(dls) != 0 {
			t.Fatalf("%d messages dead-lettered while the partition stopped (first: %s %q)",
				len(dls), dls[0].Header.Get(jobs.HdrReason), dls[0].Header.Get(jobs.HdrDetail))
		}

		recB := newRecorder()
		startConsumer(t, js, cfg, topo, "w-next", nil, recB, false, nil, 0)
		for range n {
			env := recB.next(t, 5*time.Second)
			if env.Meta.Delivered > 2 {
				t.Errorf("%s reached the next owner on delivery %d, want at most 2", env.Event.ID, env.Meta.Delivered)
			}
			env.Settle(jobs.Outcome{Kind: jobs.Applied})
		}
		eventually(t, 3*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
	})
}
