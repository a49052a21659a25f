// Package deliver owns the policy around vendor calls for one account's
// batch of events: it loads the last-applied version of every field the
// batch touches, drops what is already superseded, merges the rest to the
// newest value per (to, field), has the app's vendor client split the
// merged items into calls, sends those calls one at a time under the rate
// limiter and the partition fence with in-process retries
// (cenkalti/backoff/v4), raises the stored versions of what the vendor
// confirmed, and maps every per-item answer back to one jobs.Outcome per
// event. With DeliverTop, once the first call has its rate-limit token and
// before anything is sent, the batch is topped up with the events its
// account received meanwhile and merged and split afresh; that call uses
// the token if it is still fresh (maxTokenAge), so grant-to-arrival jitter
// stays within the budget's headroom.
//
// It declares the interfaces it consumes (Sender, Limiter, Versions). It
// does not batch events over time (coalesce), acknowledge messages
// (queue), sign or encode requests (the vendor clients) or store versions
// and tokens (the version store and ratelimit).
package deliver
