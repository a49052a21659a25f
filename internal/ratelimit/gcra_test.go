package ratelimit

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/internal/testenv"
)

// A step runs at offset `at` from the start of its case. op is "live",
// "bulk" or "throttle" (with pause). For takes, allowed and (when denied)
// retry are checked; factor is checked when non-zero.
type step struct {
	at      time.Duration
	op      string
	pause   time.Duration
	allowed bool
	retry   time.Duration
	factor  float64
}

type gcraCase struct {
	name   string
	budget Budget
	steps  []step
}

// iv is the emission interval of rate r×f, as the limiter computes it.
func iv(rate, f float64) time.Duration {
	return time.Duration(math.Ceil(1e6/(rate*f))) * time.Microsecond
}

const ms = time.Millisecond

// gcraCases run unchanged on the local limiter (synctest), on miniredis
// (SetTime) and on the real Redis (clock pinned through the script's test
// override), so the Go and Lua arithmetic are held to the same results.
func gcraCases() []gcraCase {
	return []gcraCase{
		{
			name:   "burst then one token per interval",
			budget: Budget{Rate: 10, Burst: 4},
			steps: []step{
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", retry: 100 * ms},
				{at: 100 * ms, op: "live", allowed: true},
				{at: 100 * ms, op: "live", retry: 100 * ms},
				{at: 150 * ms, op: "live", retry: 50 * ms},
				{at: 200 * ms, op: "live", allowed: true},
				// Idle refills to Burst, never beyond.
				{at: 10 * time.Second, op: "live", allowed: true},
				{at: 10 * time.Second, op: "live", allowed: true},
				{at: 10 * time.Second, op: "live", allowed: true},
				{at: 10 * time.Second, op: "live", allowed: true},
				{at: 10 * time.Second, op: "live", retry: 100 * ms},
			},
		},
		{
			name:   "bulk leaves the live reserve",
			budget: Budget{Rate: 10, Burst: 4}, // reserve max(1, 0.2×4) = 1 token
			steps: []step{
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", retry: 100 * ms}, // would leave 0 tokens
				{at: 0, op: "live", allowed: true},   // live takes the reserve
				{at: 0, op: "bulk", retry: 200 * ms},
				{at: 0, op: "live", retry: 100 * ms},
				{at: 200 * ms, op: "bulk", allowed: true},
			},
		},
		{
			name:   "half the bucket reserved",
			budget: Budget{Rate: 20, Burst: 6, Reserve: 0.5}, // reserve 3 tokens
			steps: []step{
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", retry: 50 * ms},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", retry: 50 * ms},
				{at: 0, op: "bulk", retry: 200 * ms},
			},
		},
		{
			name:   "reserve off",
			budget: Budget{Rate: 10, Burst: 2, Reserve: -1},
			steps: []step{
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", allowed: true},
				{at: 0, op: "bulk", retry: 100 * ms},
			},
		},
		{
			name:   "throttle lowers the rate and it recovers",
			budget: Budget{Rate: 10, Burst: 2, Reserve: -1},
			steps: []step{
				{at: 0, op: "live", allowed: true, factor: 1},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "throttle", factor: 0.7},
				// The deficit of 2 tokens is kept at the slower rate.
				{at: 0, op: "live", retry: iv(10, 0.7), factor: 0.7},
				{at: 2 * time.Second, op: "live", allowed: true, factor: 0.8},
				{at: 2 * time.Second, op: "throttle", factor: 0.56},
				{at: 2 * time.Second, op: "throttle", factor: 0.392},
				{at: 3 * time.Second, op: "live", allowed: true, factor: 0.442},
				{at: 30 * time.Second, op: "live", allowed: true, factor: 1},
			},
		},
		{
			name:   "factor floor",
			budget: Budget{Rate: 10, Burst: 2, Reserve: -1},
			steps: []step{
				{at: 0, op: "throttle", factor: 0.7},
				{at: 0, op: "throttle", factor: 0.49},
				{at: 0, op: "throttle", factor: 0.343},
				{at: 0, op: "throttle", factor: 0.2401},
				{at: 0, op: "throttle", factor: 0.16807},
				{at: 0, op: "throttle", factor: 0.117649},
				{at: 0, op: "throttle", factor: 0.1},
				{at: 0, op: "throttle", factor: 0.1},
				{at: 0, op: "live", allowed: true, factor: 0.1},
				{at: 0, op: "live", allowed: true},
				{at: 0, op: "live", retry: iv(10, 0.1)},
			},
		},
		{
			name:   "retry-after pauses the budget",
			budget: Budget{Rate: 10, Burst: 4, Reserve: -1},
			steps: []step{
				{at: 0, op: "throttle", pause: time.Second, factor: 0.7},
				{at: 0, op: "live", retry: time.Second},
				{at: 400 * ms, op: "live", retry: 600 * ms},
				{at: time.Second + time.Microsecond, op: "live", allowed: true, factor: 0.75},
				// The bucket is empty behind the pause: no burst after it.
				{at: time.Second + time.Microsecond, op: "live", retry: iv(10, 0.75) - time.Microsecond},
			},
		},
	}
}

// takeFunc runs one step against a backend at offset at.
type backend struct {
	name string
	run  func(t *testing.T, tc gcraCase)
}

func checkStep(t *testing.T, i int, s step, res gcraResult) {
	t.Helper()
	if s.op != "throttle" {
		if res.allowed != s.allowed {
			t.Fatalf("step %d (%s at %v): allowed = %v, want %v (retry %v, tokens %.3f)", i, s.op, s.at, res.allowed, s.allowed, res.retry, res.tokens)
		}
		if !s.allowed {
			if d := res.retry - s.retry; d < -2*time.Microsecond || d > 2*time.Microsecond {
				t.Fatalf("step %d (%s at %v): retry = %v, want %v", i, s.op, s.at, res.retry, s.retry)
			}
		}
	}
	if s.factor != 0 && math.Abs(res.factor-s.factor) > 2e-6 {
		t.Fatalf("step %d (%s at %v): factor = %.6f, want %.6f", i, s.op, s.at, res.factor, s.factor)
	}
}

func caseConfig(tc gcraCase, prefix string) Config {
	b := tc.budget
	b.Name = "case"
	return Config{KeyPrefix: prefix, Budgets: []Budget{b}}
}

// redisStep runs one step through the Redis path of l.
func redisStep(t *testing.T, l *Limiter, s step) gcraResult {
	t.Helper()
	b := l.budgets["case"]
	ctx := context.Background()
	var res gcraResult
	var err error
	if s.op == "throttle" {
		res, err = l.redisOp(ctx, b, "throttle", false, ff(float64(s.pause.Microseconds())))
	} else {
		res, err = l.redisOp(ctx, b, "take", s.op == "bulk", "")
	}
	if err != nil {
		t.Fatalf("%s: %v", s.op, err)
	}
	return res
}

func TestGCRACases(t *testing.T) {
	backends := []backend{
		{"local", func(t *testing.T, tc gcraCase) {
			synctest.Test(t, func(t *testing.T) {
				l, err := NewLocal(caseConfig(tc, ""), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				b := l.budgets["case"]
				start := time.Now()
				for i, s := range tc.steps {
					time.Sleep(start.Add(s.at).Sub(time.Now()))
					var res gcraResult
					if s.op == "throttle" {
						b.mu.Lock()
						res = b.local.throttle(l.localNow(), b.params, float64(s.pause.Microseconds()))
						b.mu.Unlock()
					} else {
						res, err = l.take(context.Background(), b, s.op == "bulk")
						if err != nil {
							t.Fatal(err)
						}
					}
					checkStep(t, i, s, res)
				}
			})
		}},
		{"miniredis", func(t *testing.T, tc gcraCase) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			l, err := New(caseConfig(tc, "t:"), rdb, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1_700_000_000, 0)
			for i, s := range tc.steps {
				mr.SetTime(t0.Add(s.at))
				checkStep(t, i, s, redisStep(t, l, s))
			}
		}},
		{"redis", func(t *testing.T, tc gcraCase) {
			prefix := testenv.Unique("fs_rl_test") + ":"
			rdb := testenv.Redis(t, prefix)
			l, err := New(caseConfig(tc, prefix), rdb, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now().UnixMicro()
			var at time.Duration
			l.redisNow = func() int64 { return t0 + at.Microseconds() }
			for i, s := range tc.steps {
				at = s.at
				checkStep(t, i, s, redisStep(t, l, s))
			}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range gcraCases() {
				t.Run(tc.name, func(t *testing.T) { be.run(t, tc) })
			}
		})
	}
}

// TestScriptUsesRedisTime checks the production path (no clock override):
// the script reads TIME, so a pinned miniredis clock decides, and the real
// Redis grants Burst then denies with about one interval.
func TestScriptUsesRedisTime(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		l, err := New(Config{KeyPrefix: "t:", Budgets: []Budget{{Name: "b", Rate: 2, Burst: 2, Reserve: -1}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Unix(1_800_000_000, 250_000_000)
		mr.SetTime(t0)
		b := l.budgets["b"]
		for i, want := range []bool{true, true, false} {
			res, err := l.redisOp(context.Background(), b, "take", false, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.allowed != want || res.now != t0.UnixMicro() {
				t.Fatalf("take %d: allowed %v now %d, want %v at %d", i, res.allowed, res.now, want, t0.UnixMicro())
			}
			if !want && res.retry != 500*ms {
				t.Fatalf("retry = %v, want 500ms", res.retry)
			}
		}
		// Bucket state expires once it would be full again (+1 s margin).
		if ttl := mr.TTL("t:b"); ttl != 2*time.Second {
			t.Fatalf("ttl = %v, want 2s", ttl)
		}
		mr.SetTime(t0.Add(500 * ms))
		if res, _ := l.redisOp(context.Background(), b, "take", false, ""); !res.allowed {
			t.Fatalf("after 500ms: denied, retry %v", res.retry)
		}
	})
	t.Run("redis", func(t *testing.T) {
		prefix := testenv.Unique("fs_rl_test") + ":"
		rdb := testenv.Redis(t, prefix)
		// 1 call per 100 s: the test's own duration cannot refill a token.
		l, err := New(Config{KeyPrefix: prefix, Budgets: []Budget{{Name: "b", Rate: 0.01, Burst: 2, Reserve: -1}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := l.budgets["b"]
		before := time.Now().UnixMicro()
		for i, want := range []bool{true, true, false} {
			res, err := l.redisOp(context.Background(), b, "take", false, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.allowed != want {
				t.Fatalf("take %d: allowed %v, want %v", i, res.allowed, want)
			}
			if d := res.now - before; d < -5e6 || d > 5e6 {
				t.Fatalf("redis time %d is not near the local clock %d", res.now, before)
			}
			if !want && (res.retry <= 99*time.Second || res.retry > 100*time.Second) {
				t.Fatalf("retry = %v, want just under 100s", res.retry)
			}
		}
		ttl, err := rdb.PTTL(context.Background(), prefix+"b").Result()
		if err != nil || ttl <= 199*time.Second || ttl > 201*time.Second {
			t.Fatalf("pttl = %v (%v), want about 201s", ttl, err)
		}
	})
}

// TestDrainEmptiesTheBucket: the first Redis call after a fallback empties
// the shared bucket, on miniredis and on the real Redis.
func TestDrainEmptiesTheBucket(t *testing.T) {
	run := func(t *testing.T, l *Limiter) {
		t.Helper()
		b := l.budgets["b"]
		b.drain.Store(true)
		res, err := l.take(context.Background(), b, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.allowed || res.retry != 100*ms {
			t.Fatalf("first take after drain: allowed %v retry %v, want denied for 100ms", res.allowed, res.retry)
		}
		if b.drain.Load() {
			t.Fatal("drain flag still set after a successful Redis call")
		}
	}
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		mr.SetTime(time.Unix(1_700_000_000, 0))
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		l, err := New(Config{KeyPrefix: "t:", Budgets: []Budget{{Name: "b", Rate: 10, Burst: 3}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, l)
	})
	t.Run("redis", func(t *testing.T) {
		prefix := testenv.Unique("fs_rl_test") + ":"
		rdb := testenv.Redis(t, prefix)
		l, err := New(Config{KeyPrefix: prefix, Budgets: []Budget{{Name: "b", Rate: 10, Burst: 3}}}, rdb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMicro()
		l.redisNow = func() int64 { return now }
		run(t, l)
	})
}
