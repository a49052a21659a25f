// Package queue owns everything JetStream on the worker side: it creates
// or verifies the event stream, the dead-letter stream, the meta bucket
// holding the partition count P and the per-(lane, partition) durable pull
// consumers (Ensure); it pulls the partitions this worker owns, live lane
// first, and hands each decoded, validated event to a Handler as a
// jobs.Envelope (Consumer); and it settles every envelope through one
// switch (settle.go): Ack, Nak, NakWithDelay, or a dead-letter copy then
// Term. It keeps held messages alive with InProgress, and dead-letters
// messages whose worker died on the last delivery (a spare delivery, the
// MAX_DELIVERIES advisory, and a sweeper).
//
// It works on nats-server 2.9.10 and current servers: consumers are
// created with CreateOrUpdateConsumer, dead letters are Term()ed (never
// TermWithReason) with the reason in DLQ headers, and nothing relies on
// stream metadata, subject transforms or pinned consumers.
//
// It does not own partition leases (which partitions a worker consumes),
// coalescing, vendor calls or retries in process: the caller decides the
// Outcome, queue only turns it into an ack. Only this package calls Ack,
// Nak, Term or InProgress.
package queue
