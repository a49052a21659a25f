package queue

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/internal/jobs"
)

// fetchRecorder is a jetstream.Consumer whose FetchNoWait records the
// batch asked for and returns nothing (its other methods are not used).
type fetchRecorder struct {
	jetstream.Consumer
	asked  []int // FetchNoWait batches
	polled []int // Fetch batches
}

type emptyBatch struct{ ch chan jetstream.Msg }

func (b emptyBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b emptyBatch) Error() error                   { return nil }

func (f *fetchRecorder) FetchNoWait(batch int) (jetstream.MessageBatch, error) {
	f.asked = append(f.asked, batch)
	ch := make(chan jetstream.Msg)
	close(ch)
	return emptyBatch{ch}, nil
}

// TestPullAsksOnlyForRoom: a no-wait pull never asks for more than the
// lane's MaxAckPending leaves room for, and none is made at a full
// window. On nats-server 2.9 a no-wait pull at a full window parks at the
// server after the client gave up on it (one second) and can later be
// served into the abandoned inbox, stranding those messages until
// AckWait (seen as 60s tails in the fsbench runs).
func TestPullAsksOnlyForRoom(t *testing.T) {
	cases := []struct {
		name           string
		live, bulk     int // held per lane
		wantLive, want []int
	}{
		{"empty", 0, 0, []int{4}, []int{2}},
		{"live nearly full", 3, 0, []int{1}, []int{2}},
		{"live full", 4, 1, nil, []int{1}},
		{"bulk full", 0, 2, []int{4}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MaxAckPendingLive: 4, MaxAckPendingBulk: 2, FetchBatch: 8}.withDefaults()
			live, bulk := &fetchRecorder{}, &fetchRecorder{}
			c := &Consumer{cfg: cfg, log: slog.New(slog.DiscardHandler)}
			pt := &partition{held: map[uint64]*held{}, cons: [2]jetstream.Consumer{live, bulk}}
			seq := uint64(0)
			for li, n := range []int{tc.live, tc.bulk} {
				for range n {
					seq++
					pt.hold(&held{meta: jobs.Meta{Seq: seq}, li: li})
				}
			}
			c.pull(context.Background(), pt, 0, 8)
			c.pull(context.Background(), pt, 1, 8)
			if !slices.Equal(live.asked, tc.wantLive) || !slices.Equal(bulk.asked, tc.want) {
				t.Errorf("asked live %v, bulk %v; want %v, %v", live.asked, bulk.asked, tc.wantLive, tc.want)
			}
			// Settling frees room.
			for _, h := range pt.snapshot() {
				pt.release(h)
			}
			if pt.heldIn(0) != 0 || pt.heldIn(1) != 0 {
				t.Errorf("held after releasing all: live %d, bulk %d", pt.heldIn(0), pt.heldIn(1))
			}
		})
	}
}

// Fetch records the batch of a long-poll and returns nothing.
func (f *fetchRecorder) Fetch(batch int, _ ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	f.polled = append(f.polled, batch)
	ch := make(chan jetstream.Msg)
	close(ch)
	return emptyBatch{ch}, nil
}

// TestPollAsksOnlyForRoom: the live long-poll asks for no more than the
// window's room, and at a full window makes no pull at all but waits
// until a settle frees room (or IdleWait ends).
func TestPollAsksOnlyForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{MaxAckPendingLive: 4, MaxAckPendingBulk: 2, FetchBatch: 3, IdleWait: time.Second}.withDefaults()
		live := &fetchRecorder{}
		c := &Consumer{cfg: cfg, log: slog.New(slog.DiscardHandler)}
		pt := &partition{held: map[uint64]*held{}, cons: [2]jetstream.Consumer{live, &fetchRecorder{}}, freed: make(chan struct{}, 1)}
		for seq := range uint64(2) {
			pt.hold(&held{meta: jobs.Meta{Seq: seq + 1}})
		}
		c.poll(t.Context(), pt) // room 2 < batch 3
		if !slices.Equal(live.polled, []int{2}) {
			t.Fatalf("polled %v, want [2]", live.polled)
		}

		for seq := range uint64(2) {
			pt.hold(&held{meta: jobs.Meta{Seq: seq + 3}})
		}
		start := time.Now()
		c.poll(t.Context(), pt) // full: waits IdleWait
		if waited := time.Since(start); waited != cfg.IdleWait {
			t.Errorf("poll at a full window returned after %s, want IdleWait %s", waited, cfg.IdleWait)
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			pt.release(pt.snapshot()[0])
		}()
		start = time.Now()
		c.poll(t.Context(), pt) // full until the release
		if waited := time.Since(start); waited != 300*time.Millisecond {
			t.Errorf("poll at a full window returned after %s, want 300ms (the release)", waited)
		}
		if !slices.Equal(live.polled, []int{2}) {
			t.Errorf("polled %v at a full window, want no further pull", live.polled)
		}
	})
}
