// Package queue owns everything JetStream on the worker side: it creates
// or verifies the event streams (one per partition), the dead-letter
// stream, the meta bucket holding the partition count P and the
// per-(lane, partition) durable pull consumers (Ensure); it pulls the partitions this worker owns, live lane
// first, and hands each decoded, validated event to a Handler as a
// jobs.Envelope (Consumer); and it settles every envelope through one
// switch (decide in settle.go): Ack, Nak, NakWithDelay, or a dead-letter
// copy (PubAck awaited) then Term. It keeps held messages alive with
// InProgress and dead-letters messages whose worker died on the last
// delivery. Only this package calls Ack, Nak, Term or InProgress.
//
// It does not own partition leases (which partitions a worker consumes),
// coalescing, vendor calls or in-process retries: the caller decides the
// jobs.Outcome, queue only turns it into an ack.
//
// # Servers
//
// Everything works on nats-server 2.9.10 and current servers (tested
// against both): consumers are created with CreateOrUpdateConsumer (on 2.9
// CreateConsumer silently updates an existing consumer, current servers
// refuse), dead letters use Term() with the reason in DLQ headers
// (TermWithReason is ignored before 2.10.4), and nothing relies on stream
// metadata, subject transforms or pinned consumers.
//
// # Decisions
//
//   - One stream per partition, PartitionStream(p) with subjects
//     <base>.ev.*.<p>, holding both lanes; the consumers of p filter it by
//     lane. One stream with a filtered consumer per lane and partition cost
//     the server 1.5x per message (docs/BENCHMARKS.md). Stream sequences
//     are per partition, so everything keyed by a sequence (held messages,
//     sweeper candidates, dead-letter ids) is keyed by partition too.
//     MaxMsgs and MaxBytes bound the whole queue: each stream gets 1/P.
//   - Ensure refuses an existing stream whose retention, subjects, discard
//     policy or storage differ, naming every conflict, and the one stream
//     of earlier builds (StreamBase(), subjects <base>.ev.>), whose
//     subjects overlap the partition streams'. Limits only rise: a
//     higher configured MaxMsgs/MaxBytes/MaxAge is applied, a lower one is
//     kept with a warning in Topology.Warnings (lowering can drop queued
//     work). Duplicates always follows the configuration; a replica
//     difference is a warning. P is written once with KV Create before the
//     streams exist; a partition-0 stream with messages or consumers but
//     no P key is refused (P cannot be guessed).
//   - Spare delivery: the consumers' server-side MaxDeliver is
//     Config.MaxDeliver+1. The application's last delivery is MaxDeliver
//     (jobs.Meta.MaxDeliver); RetryLater or Released on it is dead-lettered
//     (max_deliver). The spare delivery only happens when the worker holding
//     the last one died without settling; it is dead-lettered on receipt,
//     without reaching the Handler.
//   - The MAX_DELIVERIES advisory (a queue group named by the layout, one
//     worker per advisory) covers a worker dying on the spare delivery too: GetMsg by sequence,
//     DLQ copy, DeleteMsg. Advisories are not durable, so Run also sweeps
//     the owned partitions. Verified on 2.9.10 and 2.15.2: an exhausted
//     message stays in the WorkQueue stream, leaves the consumer's pending
//     set, and the ack floor stays below it. The sweeper therefore treats a
//     message as stranded when it is in the stream, at or below the
//     consumer's delivered sequence and not held here, and either at or
//     below the ack floor or the consumer has nothing ack-pending (two
//     consecutive sweeps), or, on a busy consumer, when it pins the ack
//     floor and was not delivered for StrandedAfter (longer than any Nak
//     delay or AckWait).
//   - A dead-letter copy carries Nats-Msg-Id <stream>/<seq>/dlq, so the
//     settle path, the advisory and the sweeper never store two copies of
//     one message within the Duplicates window. If the copy cannot be
//     published the message is Nak'ed with a delay, never Term'ed.
//   - A Handler error while the partition runs is RetryLater (NakWithDelay),
//     not a bare Nak, which would use up MaxDeliver in milliseconds; while
//     the partition stops it is Released (Nak).
//   - Intake per partition: a no-wait pull of live, then of bulk (a full
//     batch when live returned less than one, BulkShare otherwise), and a
//     live long-poll of IdleWait when both are empty. Every pull, the
//     long-poll included, asks for no more than the lane's MaxAckPending
//     leaves room for (a no-wait pull at a full window strands messages on
//     2.9). Pulls are never cancelled mid-flight, so StopPartition's intake
//     stop takes up to IdleWait.
//   - Heartbeats: every HeartbeatInterval (AckWait/6) the held messages are
//     looked at, and those whose AckWait clock last started at least
//     min(AckWait/2, AckWait − 2 × HeartbeatInterval) ago get InProgress;
//     the clock's start is taken as the time the pull was sent, then the
//     time of the last InProgress, both no later than the server's. A
//     message settled within that time gets none.
//   - Heartbeats stop for a message held longer than MaxHold (a lost
//     envelope), so the server redelivers it; the redelivery replaces the
//     held entry and a late Settle of the old envelope is ignored.
package queue
