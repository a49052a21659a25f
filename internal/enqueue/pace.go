package enqueue

import (
	"context"
	"time"
)

// minSleep is the smallest pause the pacer takes: below it, events go out
// back to back and the schedule catches up at the next pause, so a high
// rate does not sleep once per event.
const minSleep = 2 * time.Millisecond

// pacer spaces events at a fixed rate: event i may start at slot i of a
// schedule whose slots are 1/rate apart. Time spent idle (a pause, a slow
// ack) is not saved up as a burst.
type pacer struct {
	interval time.Duration
	next     time.Time
	// beforeSleep, if set, runs before the pacer sleeps.
	beforeSleep func()
}

// newPacer paces at rate events/s; rate ≤ 0 does not pace.
func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next event may go, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	if d := slot.Sub(now); d >= minSleep {
		if p.beforeSleep != nil {
			p.beforeSleep()
		}
		return sleep(ctx, d)
	}
	return ctx.Err()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
