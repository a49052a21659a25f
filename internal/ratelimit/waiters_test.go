package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// waitAll runs n concurrent Waits of one token each and returns how many
// takes (limiter evaluations) they made in total.
func waitAll(t *testing.T, l *Limiter, budget string, n int) int64 {
	t.Helper()
	var takes atomic.Int64
	l.onResult = func(string, gcraResult) { takes.Add(1) }
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := l.Wait(t.Context(), budget, event.LaneLive); err != nil {
				t.Errorf("wait: %v", err)
			}
		})
	}
	wg.Wait()
	return takes.Load()
}

// TestManyWaitersNoHerd: a worker with hundreds of accounts waiting on one
// budget (the integration proof saw ~600) must not poll once per waiter
// per token. Before pollers were bounded per budget and lane, every waiter
// woke at each retry-after and took again: about n²/2 takes for n grants,
// which on Redis exhausted the client pool, timed takes out and flipped
// workers into the local fallback while others still drew on Redis (the
// vendor then saw over 200 Tencent calls in one 1-second window). With
// maxPollers pollers all woken by the same retry-after, each token still
// cost up to maxPollers takes (986 takes for 200 grants); slot now wakes
// them one per token.
func TestManyWaitersNoHerd(t *testing.T) {
	const waiters = 200
	t.Run("local", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, err := NewLocal(Config{Budgets: []Budget{{Name: "b", Rate: 100, Burst: 2, Reserve: -1}}}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			takes := waitAll(t, l, "b", waiters)
			// The pollers wake one per token (slot): about one take per
			// grant; without slot each token had all maxPollers asking.
			if limit := int64(waiters + waiters/10); takes > limit {
				t.Errorf("%d waiters made %d takes, want at most %d (one per grant, pollers spread over the tokens)", waiters, takes, limit)
			}
			if took := time.Since(start); took > 2100*time.Millisecond { // (200 − 2) / 100 per second
				t.Errorf("granting %d tokens took %v, want about 2s", waiters, took)
			}
		})
	})
	t.Run("redis", func(t *testing.T) {
		prefix := testenv.Unique("fs_rl_test") + ":"
		rdb := testenv.Redis(t, prefix)
		l, err := New(Config{KeyPrefix: prefix, Budgets: []Budget{{Name: "b", Rate: 200, Burst: 5, Reserve: -1}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		takes := waitAll(t, l, "b", waiters)
		// Real time: jitter and scheduling leave a few more than one.
		if limit := int64(waiters + waiters/2); takes > limit {
			t.Errorf("%d waiters made %d takes on Redis, want at most %d", waiters, takes, limit)
		}
		if l.InFallback() {
			t.Error("the limiter fell back to local buckets under contention alone")
		}
	})
}
