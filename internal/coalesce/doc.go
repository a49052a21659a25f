// Package coalesce owns per-key batching: a Coalescer buffers values under
// a key and hands each key's batch to a flush function when the key has
// been quiet for a grace period, when its oldest buffered value reaches a
// maximum delay, when the batch reaches its maximum size, or when the
// Coalescer is closed (drain).
//
// At most one flush runs per key at any time: values that arrive while a
// key's batch is being flushed wait for the next batch, which starts as soon
// as the flight ends if it is already due, unless the running flush takes
// them with Top (a flush that waited, for a rate limit token say, tops its
// batch up to MaxSize before it sends). Timers are per key
// (time.AfterFunc), never a polling tick. Add applies backpressure: it
// blocks while the bounds on held values or keys are reached.
//
// WithHold lets the caller hold keys that fall due by grace or max delay
// while more of their values are known to be on the way (a backlog still
// being read): a HoldFunc names the key's group, Release(group) lets the
// group's keys go, and MaxSize, MaxHold, an Add waiting for room and
// Close end every hold.
//
// It imports only the standard library and knows nothing of events,
// queues or vendors. It does not retry, settle or order flushes across keys;
// the flush function owns what happens to a batch.
package coalesce
