// Package lease owns partition ownership: which worker may consume and call
// vendors for which partition. Leases live in a JetStream KV bucket
// (jobs.LeaseBucket of the layout, e.g. friendsync-leases) whose TTL is the
// lease TTL, so it works on nats-server 2.9 (no pinned consumers, no
// subject transforms, no per-key TTL) as well as on current servers.
//
// It does not consume messages, call vendors or decide what "graceful"
// means for the work: it tells its caller through Callbacks when a
// partition starts (Acquired, whose context ends when the lease is lost)
// and when to hand one back (Release), and answers Valid(p) right before
// every vendor call.
//
// # Keys and protocol
//
//   - w.<worker-id>: heartbeat, Put every RenewEvery; the live keys are the
//     members. Fair share = ceil(P / members).
//   - p.<n>: the owner of partition n. Acquire with Create (fails while the
//     key exists); the value is <worker-id>/<random token>, unique to that
//     acquisition. Renew every RenewEvery with Update(key, token,
//     lastRevision).
//   - Only a revision mismatch or a missing key means lost, and only after a
//     Get shows the token is not ours (a renew that timed out may have been
//     applied). Timeouts are retried until the fencing deadline, so a NATS
//     failover that blocks writes for a few seconds drops nothing.
//   - A Watch does not see a key expire, so the bucket is read every
//     PollEvery (a snapshot of the latest values) to count members and to
//     find free partitions, which are then probed with Create.
//   - Above its share a worker hands partitions back: Release callback
//     (stop intake, finish in flight, Nak buffered) while the lease is
//     still renewed, then Valid turns false, the context is cancelled and
//     the key is deleted with its revision. Run's context ending does the
//     same for every partition.
//   - A lost lease is never deleted: it expires.
//
// # Fencing and the clock assumption
//
// The vendor cannot check a token, so mutual exclusion rests on time. A
// worker starts a vendor call for p only while
//
//	now < renewSentAt + TTL − (VendorTimeout + Margin)
//
// on its own monotonic clock, where renewSentAt is when the last confirmed
// renew (or the Create) was sent. The server stores that write no earlier
// than renewSentAt and expires it no earlier than TTL later on its clock,
// and a new owner can only Create after the key expired or was deleted
// (deleted only after Release reported the partition drained). So the
// last call of the old owner ends (VendorTimeout) at least Margin before
// the key can expire.
//
// This holds if, over one TTL, the worker's monotonic clock and the NATS
// server's clock advance at the same rate to within Margin (ordinary
// crystal drift is a few parts per million, microseconds per 30 s), and the
// server's wall clock is not stepped forward by more than Margin while a
// lease is held (run NTP in slew mode; a forward step makes messages
// expire early). Absolute offsets between the clocks do not matter: no
// timestamp crosses the wire. A process stopped for longer than the fence
// (GC pause, SIGSTOP, VM freeze) resumes with Valid false, because Valid
// reads the clock again; a pause between Valid and the request is covered
// only if the call's context carries CallDeadline(p) as its deadline. The
// bucket uses file storage so that a server restart does not forget
// leases.
//
// Defaults satisfy TTL > 2 × (VendorTimeout + RenewEvery) + Failover
// (30 s > 2 × (5 s + 5 s) + 5 s); Validate enforces it.
//
// # Limits
//
// Worker ids must be unique among live workers (a duplicate is logged).
// Every worker sharing a bucket must use the same TTL; Run refuses a bucket
// whose TTL differs. Members counts heartbeats, so a killed worker is
// counted until its heartbeat expires (about one TTL).
package lease
