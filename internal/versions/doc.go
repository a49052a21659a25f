// Package versions owns the last-applied versions that make "newest wins"
// hold per (app, from, to, field): deliver loads them before a vendor call
// to drop superseded values, and raises them after the vendor confirmed.
//
// It does not decide what is superseded, talk to vendors or settle
// messages; it only stores versions and never lowers one.
//
// # Storage
//
// One Redis hash per account, Prefix + "<app>:<from>" (default prefix
// "friendsync:v:"; app names cannot contain ':'), field "<to>/<field>"
// (see Field), value jobs.Version.String(): fixed-width decimal whose byte
// order is version order. Raise is one Lua script that sets each field to
// the greater of the stored and the given version, comparing the strings
// (Lua numbers are doubles and cannot hold nanosecond timestamps), and
// refreshes the hash's TTL (default 30 days). A stored value that is not a
// version reads as never applied and is overwritten by the next raise.
//
// # Redis outage
//
// Every version loaded from or raised in Redis goes through a bounded
// write-through cache (CacheSize fields, least recently used accounts
// evicted first). When a Redis call fails (error or Timeout, not an error
// reply such as WRONGTYPE):
//
//   - Load answers from the cache, but only when every asked field of the
//     account is cached and none has a raise pending; otherwise it returns
//     an error matching ErrUnavailable, so delivery fails closed and
//     retries later. The cache holds what Redis said, so an answer from it
//     is durable.
//   - Raise keeps the raise in memory ("pending", at most MaxPending fields,
//     then ErrUnavailable) and returns an error matching ErrPending: the
//     vendor has the values but their versions are not durable, so the
//     caller must not settle the events as applied (deliver makes them
//     RetryLater; their redelivery after the flush finds them superseded).
//     A worker killed during the outage loses its pending raises, but not
//     the events behind them: those were not acked and come back.
//   - Load, Raise and Run ping Redis at most once per ProbeInterval (1 s).
//     When it answers, the pending raises are applied with the same max-CAS
//     script (so a newer value written meanwhile by another worker is never
//     lowered), and only then does the store use Redis again. Loads from
//     Redis are always raised to the cached and pending values, which are
//     versions that were really applied.
//
// The cache is only right for accounts whose partition this worker owned
// the whole time since it was filled: another owner may have raised them in
// between. The worker therefore calls Forget with the partitions it has
// owned continuously whenever ownership changes; Forget keeps pending
// raises, which are facts.
//
// Memory is the in-process store of the embedded mode, with the same
// methods.
//
// # Metrics
//
//	friendsync_versions_ops_total{op,result}   op: load, raise, flush; result: ok, cache, pending, unavailable, error
//	friendsync_versions_pending_raises         raised fields waiting for Redis
package versions
