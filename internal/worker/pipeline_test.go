package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/deliver"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/versions"
)

// plSender records every call; it chunks items by cap and applies all.
type plSender struct {
	cap int

	mu    sync.Mutex
	calls []plCall
}

type plCall struct {
	at    time.Duration // since the test's start
	from  string
	items int
}

func (s *plSender) Split(from string, items []vendors.Item) []vendors.Call {
	var calls []vendors.Call
	for c := range slices.Chunk(items, s.cap) {
		calls = append(calls, vendors.Call{API: "update", Budget: "pl", From: from, Items: c})
	}
	return calls
}

func (s *plSender) Send(_ context.Context, call vendors.Call) (vendors.Result, error) {
	s.mu.Lock()
	s.calls = append(s.calls, plCall{at: time.Since(plStart), from: call.From, items: len(call.Items)})
	s.mu.Unlock()
	return vendors.Whole(len(call.Items), vendors.ItemResult{Class: vendors.OK}), nil
}

func (s *plSender) sent() []plCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// plLimiter grants every token after delay.
type plLimiter struct{ delay time.Duration }

func (l plLimiter) Wait(ctx context.Context, _ string, _ event.Lane) error {
	if l.delay <= 0 {
		return nil
	}
	select {
	case <-time.After(l.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (plLimiter) Throttled(string, time.Duration) {}

// plStart is the start of the current synctest bubble's test (each test
// sets it first thing in its bubble).
var plStart time.Time

type plBundle struct {
	p       *pipeline
	s       *plSender
	mu      sync.Mutex
	settled map[uint64]jobs.Kind // by stream seq
	seq     uint64
}

// newTestPipeline builds a pipeline of one app ("app") over 4 partitions
// with the production coalescing rules (grace 50ms, max delay 1s), a live
// window of liveWindow (bulk 5), quiet after 500ms, max hold 10s.
func newTestPipeline(t *testing.T, tokenDelay time.Duration, liveWindow int) *plBundle {
	t.Helper()
	plStart = time.Now()
	b := &plBundle{s: &plSender{cap: 1000}, settled: map[uint64]jobs.Kind{}}
	d, err := deliver.New(deliver.Config{}, func(string) (deliver.Sender, bool) { return b.s, true },
		plLimiter{delay: tokenDelay}, versions.NewMemory(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.p = newPipeline(d, 4, [2]int{liveWindow, 5}, 500*time.Millisecond, 2*time.Second)
	if err := b.p.addApp("app", coalesce.Config{Grace: 50 * time.Millisecond, MaxDelay: time.Second, MaxSize: 1000,
		MaxHold: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.p.close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return b
}

// hand gives the pipeline one event of account from in partition part,
// as the queue would, with pending messages left behind it.
func (b *plBundle) hand(t *testing.T, from string, part int, lane event.Lane, pending uint64) {
	t.Helper()
	b.handCtx(t, context.Background(), from, part, lane, pending)
}

// handCtx is hand with the intake's context.
func (b *plBundle) handCtx(t *testing.T, ctx context.Context, from string, part int, lane event.Lane, pending uint64) {
	t.Helper()
	b.mu.Lock()
	b.seq++
	seq := b.seq
	b.mu.Unlock()
	env := &jobs.Envelope{
		Event:   event.Event{App: "app", From: from, To: fmt.Sprint("friend-", seq), Remark: event.Ptr("r"), TS: int64(seq)},
		Meta:    jobs.Meta{Seq: seq, Lane: lane, Partition: part, Pending: pending},
		Version: jobs.Version{TS: int64(seq), Seq: seq},
	}
	env.Settle = func(o jobs.Outcome) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, dup := b.settled[seq]; dup {
			t.Errorf("seq %d settled twice", seq)
		}
		b.settled[seq] = o.Kind
	}
	if err := b.p.Handle(ctx, env); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

// allApplied checks that every event handed over was settled once, applied.
func (b *plBundle) allApplied(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.settled) != int(b.seq) {
		t.Errorf("%d of %d events settled", len(b.settled), b.seq)
	}
	for seq, k := range b.settled {
		if k != jobs.Applied {
			t.Errorf("seq %d: %v, want applied", seq, k)
		}
	}
	for i := range b.p.parts {
		for li := range 2 {
			if n := b.p.parts[i].inHand[li].Load(); n != 0 {
				t.Errorf("partition %d lane %d: %d in hand after everything settled", i, li, n)
			}
		}
	}
}

func callsOf(calls []plCall) map[string][]int {
	m := map[string][]int{}
	for _, c := range calls {
		m[c.from] = append(m[c.from], c.items)
	}
	return m
}

// TestBacklogHold: while a partition's intake hands over a backlog
// slowly (an event every 100ms for 2s: longer than the max delay), its
// accounts wait for the whole of it and make one call each once the
// intake catches up; an account of another partition that is not
// streaming flushes at its grace as before.
func TestBacklogHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestPipeline(t, 0, 100)
		b.hand(t, "other", 2, event.LaneLive, 0)
		const n = 20
		for i := range n {
			from := []string{"alice", "bob"}[i%2]
			b.hand(t, from, 1, event.LaneLive, uint64(n-1-i))
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		got := callsOf(b.s.sent())
		want := map[string][]int{"other": {1}, "alice": {10}, "bob": {10}}
		for from, sizes := range want {
			if !slices.Equal(got[from], sizes) {
				t.Errorf("%s: calls of %v items, want %v", from, got[from], sizes)
			}
		}
		for _, c := range b.s.sent() {
			if c.from == "other" && c.at != 50*time.Millisecond {
				t.Errorf("other (not streaming) called at %v, want 50ms (grace)", c.at)
			}
			if c.from != "other" && c.at != 1900*time.Millisecond {
				t.Errorf("%s called at %v, want 1.9s (when the intake caught up)", c.from, c.at)
			}
		}
		b.allApplied(t)
	})
}

// TestBacklogHoldEnds: the hold ends when the intake goes quiet (stalled
// or stopped), when the lane's MaxAckPending window is full (no more can
// come until something settles), and for a key with events of a lane
// that is not streaming.
func TestBacklogHoldEnds(t *testing.T) {
	t.Run("quiet", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestPipeline(t, 0, 100)
			b.hand(t, "alice", 1, event.LaneLive, 500)
			b.hand(t, "alice", 1, event.LaneLive, 499)
			time.Sleep(2 * time.Second)
			calls := b.s.sent()
			if len(calls) != 1 || calls[0].items != 2 || calls[0].at != 500*time.Millisecond {
				t.Errorf("calls %+v, want one of 2 items at 500ms (quiet after)", calls)
			}
			b.allApplied(t)
		})
	})
	t.Run("intake stopped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestPipeline(t, 0, 100)
			ctx, stop := context.WithCancel(context.Background())
			b.handCtx(t, ctx, "alice", 1, event.LaneLive, 500)
			time.Sleep(100 * time.Millisecond)
			b.handCtx(t, ctx, "alice", 1, event.LaneLive, 499)
			time.Sleep(200 * time.Millisecond)
			stop() // StopPartition: no quiet wait
			synctest.Wait()
			calls := b.s.sent()
			if len(calls) != 1 || calls[0].items != 2 || calls[0].at != 300*time.Millisecond {
				t.Errorf("calls %+v, want one of 2 items at 300ms (when the intake stopped)", calls)
			}
			b.allApplied(t)
		})
	})
	t.Run("window full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestPipeline(t, 0, 10)
			for i := range 10 { // the live window is 10
				b.hand(t, []string{"alice", "bob"}[i%2], 1, event.LaneLive, 1000)
				if i < 9 {
					time.Sleep(60 * time.Millisecond) // past the grace: both keys are held
				}
			}
			synctest.Wait()
			calls := b.s.sent()
			got := callsOf(calls)
			if !slices.Equal(got["alice"], []int{5}) || !slices.Equal(got["bob"], []int{5}) {
				t.Fatalf("calls %v, want 5 items each", got)
			}
			for _, c := range calls {
				if c.at != 540*time.Millisecond {
					t.Errorf("%s called at %v, want 540ms (the 10th message filled the window)", c.from, c.at)
				}
			}
			b.allApplied(t)
		})
	})
	t.Run("other lane", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestPipeline(t, 0, 100)
			b.hand(t, "alice", 1, event.LaneLive, 100) // live streams
			b.hand(t, "bob", 1, event.LaneBulk, 0)     // bulk caught up
			b.hand(t, "carol", 1, event.LaneLive, 99)
			b.hand(t, "carol", 1, event.LaneBulk, 0) // mixed: not held
			time.Sleep(200 * time.Millisecond)
			got := callsOf(b.s.sent())
			if len(got["alice"]) != 0 {
				t.Errorf("alice (live streaming) called %v, want held", got["alice"])
			}
			if !slices.Equal(got["bob"], []int{1}) || !slices.Equal(got["carol"], []int{2}) {
				t.Errorf("calls %v, want bob [1] and carol [2] at their grace", got)
			}
			time.Sleep(time.Second)
			b.allApplied(t)
		})
	})
}

// TestTopUpThroughThePipeline: events that arrive while a flush waits for
// its token go into that call.
func TestTopUpThroughThePipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestPipeline(t, 300*time.Millisecond, 100)
		b.hand(t, "alice", 1, event.LaneLive, 0) // flushed at 50ms, token at 350ms
		time.Sleep(100 * time.Millisecond)
		b.hand(t, "alice", 1, event.LaneLive, 0)
		time.Sleep(100 * time.Millisecond)
		b.hand(t, "alice", 1, event.LaneLive, 0)
		time.Sleep(time.Second)
		calls := b.s.sent()
		if len(calls) != 1 || calls[0].items != 3 || calls[0].at != 350*time.Millisecond {
			t.Errorf("calls %+v, want one of 3 items at 350ms", calls)
		}
		b.allApplied(t)
	})
}
