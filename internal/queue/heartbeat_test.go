package queue

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHeartbeat checks, on a fake clock, that held messages get InProgress
// every HeartbeatInterval until settled, and not after MaxHold.
func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{AckWait: 3 * time.Second, HeartbeatInterval: time.Second, MaxHold: 5 * time.Second}.withDefaults()
		m := NewMetrics(prometheus.NewRegistry())
		c := &Consumer{cfg: cfg, log: slog.New(slog.DiscardHandler), m: m, parts: map[int]*partition{}}
		c.settler = &settler{cfg: cfg, log: c.log, m: m, now: time.Now, rand: func() float64 { return 0.5 }}
		pt := &partition{held: map[uint64]*held{}}
		c.parts[0] = pt

		settledLog, heldLog := &callLog{}, &callLog{}
		settleMe := newHeld(settledLog, 1)
		settleMe.meta.Seq = 1
		holdMe := newHeld(heldLog, 1)
		holdMe.meta.Seq = 2
		for _, h := range []*held{settleMe, holdMe} {
			h.received = time.Now()
			h.release = pt.release
			pt.hold(h)
		}

		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { c.every(ctx, cfg.HeartbeatInterval, c.heartbeat) })

		time.Sleep(2*time.Second + 500*time.Millisecond) // ticks at 1s, 2s
		synctest.Wait()
		c.settler.settle(settleMe, jobs.Outcome{Kind: jobs.Applied}, false)
		time.Sleep(8 * time.Second) // ticks at 3s..10s; MaxHold (5s) ends holdMe's heartbeats after the tick at 5s
		synctest.Wait()
		cancel()
		wg.Wait()

		if got := settledLog.count("in_progress"); got != 2 {
			t.Errorf("settled message: %d heartbeats, want 2 (before its settle only)", got)
		}
		if got := settledLog.count("ack"); got != 1 {
			t.Errorf("settled message: %d acks, want 1", got)
		}
		if got := heldLog.count("in_progress"); got != 5 {
			t.Errorf("held message: %d heartbeats, want 5 (ticks at 1..5s, none beyond MaxHold)", got)
		}
		if got := testutil.ToFloat64(m.inProgress); got != 7 {
			t.Errorf("in_progress_total = %v, want 7", got)
		}
	})
}

// TestObserveStranded checks the sweeper's candidate rules on fixed times.
func TestObserveStranded(t *testing.T) {
	c := &Consumer{cfg: Config{StrandedAfter: time.Minute}, candidates: map[uint64]candidate{}}
	t0 := time.Now()
	if c.observe(1, true, 1, t0) {
		t.Fatal("a definite candidate is due on its first sighting")
	}
	if !c.observe(1, true, 2, t0.Add(time.Second)) {
		t.Fatal("a definite candidate is not due on its second sighting")
	}
	if c.observe(2, false, 1, t0) || c.observe(2, false, 2, t0.Add(59*time.Second)) {
		t.Fatal("a busy-consumer candidate is due before StrandedAfter")
	}
	c.forget(2) // delivered again: the clock restarts
	if c.observe(2, false, 3, t0.Add(61*time.Second)) {
		t.Fatal("a candidate is due right after a delivery reset it")
	}
	if !c.observe(2, false, 4, t0.Add(122*time.Second)) {
		t.Fatal("a busy-consumer candidate is not due after StrandedAfter")
	}
}
