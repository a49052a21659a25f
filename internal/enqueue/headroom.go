package enqueue

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Headroom: the stream's limits (DiscardNew) are shared with live traffic,
// so a backfill pauses while the stream is more than half full.
const (
	headroomLimit    = 0.5
	headroomInterval = time.Second            // at most this long between checks
	headroomPoll     = 500 * time.Millisecond // check interval while paused
)

// headroom pauses publishing while the stream holds more than half of its
// MaxMsgs or MaxBytes.
type headroom struct {
	info   func(ctx context.Context) (*jetstream.StreamInfo, error)
	report func(string) // prints pause and resume lines
	every  int          // messages between checks
	// beforeSleep, if set, runs before a pause.
	beforeSleep func()

	n      int
	last   time.Time
	warned bool
	paused atomic.Bool // read by the progress line
}

func newHeadroom(info func(context.Context) (*jetstream.StreamInfo, error), cfg jetstream.StreamConfig, report func(string)) *headroom {
	return &headroom{info: info, report: report, every: checkEvery(cfg)}
}

// checkEvery is how many messages may go between two checks: a tenth of
// the room above the limit, at most 1000.
func checkEvery(cfg jetstream.StreamConfig) int {
	every := 1000
	if cfg.MaxMsgs > 0 {
		every = min(every, int(cfg.MaxMsgs/20))
	}
	if cfg.MaxBytes > 0 {
		every = min(every, int(cfg.MaxBytes/20/512))
	}
	return max(every, 1)
}

// fullness is the larger of the used fractions of MaxMsgs and MaxBytes (0
// when the stream has no limit).
func fullness(si *jetstream.StreamInfo) float64 {
	f := 0.0
	if m := si.Config.MaxMsgs; m > 0 {
		f = max(f, float64(si.State.Msgs)/float64(m))
	}
	if b := si.Config.MaxBytes; b > 0 {
		f = max(f, float64(si.State.Bytes)/float64(b))
	}
	return f
}

// wait is called before each publish; every `every` messages or second it
// checks the stream and blocks while it is over the limit.
func (h *headroom) wait(ctx context.Context) error {
	h.n++
	now := time.Now()
	if h.n < h.every && now.Sub(h.last) < headroomInterval {
		return ctx.Err()
	}
	h.n, h.last = 0, now
	for {
		si, err := h.info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Unknown fullness: keep publishing; a full stream rejects the
			// publish and the line is retried.
			if !h.warned {
				h.report(fmt.Sprintf("warning: cannot read the stream's fill level: %v", err))
				h.warned = true
			}
			return nil
		}
		f := fullness(si)
		if f <= headroomLimit {
			if h.paused.Swap(false) {
				h.report(fmt.Sprintf("resumed: stream %.0f%% full", 100*f))
			}
			return nil
		}
		if h.beforeSleep != nil {
			h.beforeSleep()
		}
		if !h.paused.Swap(true) {
			h.report(fmt.Sprintf("paused: stream %.0f%% full (%d messages, %d bytes); waiting until it is at most %.0f%% full",
				100*f, si.State.Msgs, si.State.Bytes, 100*headroomLimit))
		}
		if err := sleep(ctx, headroomPoll); err != nil {
			return err
		}
	}
}
