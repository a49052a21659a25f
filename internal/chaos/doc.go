// Package chaos owns the reliability suite of issue 8: one run of a real
// friendsync cluster under injected faults, checked from the outside, and
// its Markdown report (cmd/fschaos prints it; docs/RELIABILITY.md explains
// it and holds the latest full report).
//
// A run starts everything it needs on loopback, on free ports, in a work
// directory of its own:
//
//   - an in-process nats-server with JetStream on a file store, so it can be
//     shut down and started again on the same port and directory;
//   - a throwaway redis-server (appendonly, so the version store keeps its
//     data) reached through a TCP proxy that can cut every connection and
//     refuse new ones: an outage with the data kept;
//   - the vendor simulator (internal/vendorsim) behind an HTTP listener, with
//     fault phases installed and removed over time;
//   - N cmd/worker subprocesses (built once with go build) configured only
//     through FRIENDSYNC_* variables and a profiles file, with short lease
//     and ack timings, so that kill -9 is real and partitions move fast.
//
// Over the publishing window it publishes a generated mixed workload (all
// three vendors, both lanes, explicit ts and publish-time versions, a few
// poison events, and a burst of late old-ts events that fills every
// budget) with the public producer package, retrying with the same event
// id while NATS is away; it kills a random ready worker with SIGKILL
// and restarts it until the requested number of kills is reached; and it
// runs the fault phases: a NATS restart, Redis unreachable, one vendor's
// outage (HTTP 503), a share of 5xx and hung calls, and a storm of write
// conflicts (Tencent 30008, Volcengine UPDATE_FREQUENT) and throttle codes.
//
// Then it waits until every consumer is drained and checks the invariants:
// for every (app, from, to, field) the simulator holds the newest written
// value, or that value's event is in the dead-letter stream with a reason
// (and the simulator holds the newest value not dead-lettered); every
// poison event is dead-lettered; the simulator saw no overlapping writes
// for one account and no write conflicts caused by the workers (injected
// codes are counted apart); no budget's 1-second window held more calls
// than its limit; no worker crashed. A violation is reported with its
// evidence (the field's events with versions and publish times, the value
// found and which event wrote it, the fault phases and kills around it,
// and the worker log lines about its partition), never corrected.
//
// The pieces it shares with the other end-to-end proofs (account ids and
// field values of the workload, the readers of the consumers' pending
// messages, the dead-letter stream and the leases, the outage proxy) are
// internal/prooftest's; the workload's plan, poison and burst events and the
// per-field verdict are its own.
//
// Package chaos does not use the machine's NATS or Redis, and it changes
// nothing outside its work directory. It does not decide what a worker
// does: it only drives and observes cmd/worker.
package chaos
