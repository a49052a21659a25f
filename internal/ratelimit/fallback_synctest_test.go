package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// TestFallbackStartsEmpty: with Redis unreachable from the start, the
// fallback grants Rate ÷ members from an empty bucket: the k-th grant
// comes no earlier than k emission intervals after the switch, so the
// switch adds no burst; the long-run rate is exactly the share.
func TestFallbackStartsEmpty(t *testing.T) {
	addr := "127.0.0.1:" + itoa(testenv.FreePort(t)) // nothing listens here
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
		defer rdb.Close()
		b := Budget{Name: "b", Rate: 40, Burst: 4}
		l, err := New(Config{Budgets: []Budget{b}, Members: func() int { return 2 }}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The first take result after the switch carries the switch time
		// on the limiter's clock (its epoch is the start of the bubble).
		var (
			once     sync.Once
			switched time.Duration = -1
		)
		l.onResult = func(_ string, r gcraResult) {
			if !l.InFallback() {
				return // a failed Redis call before the switch (not granted)
			}
			once.Do(func() { switched = time.Duration(r.now) * time.Microsecond })
		}
		start := time.Now()
		const run = 10 * time.Second
		times := saturate(t.Context(), l, "b", event.LaneLive, 3, start.Add(run), func() time.Duration { return time.Since(start) })
		if !l.InFallback() || switched < 0 {
			t.Fatal("not in fallback with Redis unreachable")
		}
		ivl := time.Second / 20 // 40 ÷ 2 members
		for k, at := range times {
			if at-switched < time.Duration(k+1)*ivl {
				t.Fatalf("grant %d at %v after the switch, before %v: the fallback did not start empty", k+1, at-switched, time.Duration(k+1)*ivl)
			}
		}
		span := run - switched
		if n := float64(len(times)); n < 0.98*20*span.Seconds() || n > 20*span.Seconds() {
			t.Fatalf("fallback granted %v in %v, want about %.0f", n, span, 20*span.Seconds())
		}
		if got := maxInWindow(times, time.Second); got > 20+2 {
			t.Fatalf("a window carried %d calls, want ≤ 22", got)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestOneFailureIsNotAnOutage: a single failed Redis call is answered "not
// granted, retry shortly" and does not switch the worker to its local
// share (which, while other workers still draw on Redis, would exceed the
// budget); consecutive failures do.
func TestOneFailureIsNotAnOutage(t *testing.T) {
	addr := "127.0.0.1:" + itoa(testenv.FreePort(t)) // nothing listens here
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
		defer rdb.Close()
		l, err := New(Config{Budgets: []Budget{{Name: "b", Rate: 40, Burst: 4}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := l.budgets["b"]
		for i := 1; i < failuresToFallback; i++ {
			res, err := l.take(t.Context(), b, false)
			if err != nil || res.allowed || res.retry != failureRetry {
				t.Fatalf("failure %d: allowed=%v retry=%v err=%v; want not granted, retry %v", i, res.allowed, res.retry, err, failureRetry)
			}
			if l.InFallback() {
				t.Fatalf("in fallback after %d failure(s)", i)
			}
		}
		if _, err := l.take(t.Context(), b, false); err != nil {
			t.Fatal(err)
		}
		if !l.InFallback() {
			t.Fatalf("not in fallback after %d consecutive failures", failuresToFallback)
		}
	})
}
