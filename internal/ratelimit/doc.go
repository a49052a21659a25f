// Package ratelimit owns the vendor QPS budgets: one token per vendor call,
// shared by every worker through Redis, so that no budget exceeds the
// vendor's documented QPS in any 1-second window.
//
// It does not decide what a call is, retry calls, or classify vendor
// errors: deliver calls Wait before each vendor call and Throttled when the
// vendor answers with a rate-limit code.
//
// # Algorithm
//
// Each budget is a GCRA bucket (a token bucket in virtual-scheduling form)
// of Burst tokens refilled at Rate per second. It lives in one Redis hash,
// KeyPrefix+Name, and is updated by one Lua script that reads the clock
// with Redis TIME, so worker clocks never matter. A token bucket grants at
// most Burst + Rate calls in any 1-second window; Validate therefore
// requires Rate + Burst ≤ Limit (the documented QPS). Under saturation the
// bucket grants exactly Rate per second: a waiter sleeps the retry-after
// the script returns (plus up to 1/16 of it, at most 2 ms, of jitter) and
// the schedule absorbs its lateness. At most 4 waiters per budget and lane
// poll at a time in one process, and they are spread one emission interval
// apart (each retry-after names the next token, which only one of them can
// get), so a grant costs about one script run per process.
//
// # Lanes
//
// Live takes any token. Bulk takes a token only if at least
// max(1, Reserve×Burst) tokens remain afterwards, so live always finds room
// and bulk runs on what live leaves. With the reserve on, Burst must be at
// least 2.
//
// # Adaptive rate
//
// Throttled multiplies the budget's rate factor by Decrease (0.7, floor
// MinFactor 0.1) and stores it in the Redis hash with the Redis time, so
// every worker slows down at once; the script adds RecoverPerSecond (0.05)
// per elapsed second, lazily, up to 1. A vendor retry-after (capped at
// MaxPause) also stops the whole budget until then. The factor only ever
// lowers the rate below Rate, never above it.
//
// # Redis down
//
// A Redis error or timeout (Timeout, 500 ms) switches the limiter to a
// local bucket per budget, logged once per transition and flagged by
// friendsync_ratelimit_fallback. It never fails open: each worker grants
// at most Rate÷Members() per second with a burst of max(1, ⌊Burst÷Members⌋)
// (less rate when Burst < Members, so that Members workers together keep
// within Rate + Burst per window), starting from an empty bucket so the
// switch cannot burst. With a local burst too small for the live reserve,
// bulk waits for Redis. Waiters and Run probe Redis at most once per
// ProbeInterval (1 s); when it answers, budgets return to Redis and the
// first call of each empties the Redis bucket, so neither switch adds a
// burst. The fallback assumes Redis is down for every worker at once; a
// partition where some workers still reach Redis can exceed the budget by
// the fallback share of the cut-off workers.
//
// NewLocal runs the same arithmetic in process (embedded mode).
//
// # Metrics
//
//	friendsync_ratelimit_wait_seconds{budget,lane}   histogram of Wait time until granted
//	friendsync_ratelimit_granted_total{budget,lane}  tokens granted
//	friendsync_ratelimit_fallback{budget}            1 while using the local fallback
//	friendsync_ratelimit_errors_total{budget}        Redis errors and timeouts
//	friendsync_ratelimit_rate_factor{budget}         adaptive rate factor (1 = full rate)
package ratelimit
