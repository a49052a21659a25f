package enqueue

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Headroom: each partition stream has 1/P of the queue's limits and
// rejects publishes beyond them (DiscardNew), and those limits are shared
// with live traffic; so a backfill pauses while any partition stream is
// more than half full. Watching the sum would not do: a backfill of few
// users fills their partitions' streams while the rest stay empty.
const (
	headroomLimit    = 0.5
	headroomInterval = time.Second            // at most this long between checks
	headroomPoll     = 500 * time.Millisecond // check interval while paused
)

// headroom pauses publishing while a partition stream holds more than
// half of its MaxMsgs or MaxBytes.
type headroom struct {
	// info returns the partition streams' infos (one list request).
	info   func(ctx context.Context) ([]*jetstream.StreamInfo, error)
	report func(string) // prints pause and resume lines
	every  int          // messages between checks
	// beforeSleep, if set, runs before a pause.
	beforeSleep func()

	n        int
	last     time.Time
	warned   bool
	pausedOn atomic.Pointer[string] // the full stream while paused; read by the progress line
}

// newHeadroom checks at the pace the smallest of cfgs calls for: every
// message of a run may go to one partition.
func newHeadroom(info func(context.Context) ([]*jetstream.StreamInfo, error), cfgs []jetstream.StreamConfig, report func(string)) *headroom {
	every := 1000
	for _, cfg := range cfgs {
		every = min(every, checkEvery(cfg))
	}
	return &headroom{info: info, report: report, every: every}
}

// paused returns the stream the run waits for, "" when it is not paused.
func (h *headroom) paused() string {
	if s := h.pausedOn.Load(); s != nil {
		return *s
	}
	return ""
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

// fullest returns the fullest of infos (the first of equals) and its
// fullness; nil and 0 for none.
func fullest(infos []*jetstream.StreamInfo) (*jetstream.StreamInfo, float64) {
	var (
		top *jetstream.StreamInfo
		f   float64
	)
	for _, si := range infos {
		if g := fullness(si); top == nil || g > f {
			top, f = si, g
		}
	}
	return top, f
}

// wait is called before each publish; every `every` messages or second it
// checks the partition streams and blocks while one is over the limit.
func (h *headroom) wait(ctx context.Context) error {
	h.n++
	now := time.Now()
	if h.n < h.every && now.Sub(h.last) < headroomInterval {
		return ctx.Err()
	}
	h.n, h.last = 0, now
	for {
		infos, err := h.info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Unknown fullness: keep publishing; a full stream rejects the
			// publish and the line is retried.
			if !h.warned {
				h.report(fmt.Sprintf("warning: cannot read the streams' fill levels: %v", err))
				h.warned = true
			}
			return nil
		}
		si, f := fullest(infos)
		if si == nil || f <= headroomLimit {
			if h.pausedOn.Swap(nil) != nil {
				name := "streams"
				if si != nil {
					name = "stream " + si.Config.Name
				}
				h.report(fmt.Sprintf("resumed: %s %.0f%% full", name, 100*f))
			}
			return nil
		}
		if h.beforeSleep != nil {
			h.beforeSleep()
		}
		name := si.Config.Name
		if h.pausedOn.Swap(&name) == nil {
			h.report(fmt.Sprintf("paused: stream %s %.0f%% full (%d messages, %d bytes); waiting until it is at most %.0f%% full",
				name, 100*f, si.State.Msgs, si.State.Bytes, 100*headroomLimit))
		}
		if err := sleep(ctx, headroomPoll); err != nil {
			return err
		}
	}
}
