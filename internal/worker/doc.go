// Package worker is the composition root of cmd/worker. It owns wiring,
// not behaviour: it connects to NATS (or starts an in-process server),
// Redis (or in-process twins), builds the vendor clients (or the
// in-process simulator), and runs the queue consumer, the lease manager,
// the coalescers and the deliverer under one errgroup with an ordered
// shutdown that drains.
//
// The data path reads in three files: queue/consume.go (in),
// worker/pipeline.go (the middle) and queue/settle.go (out).
//
// Nothing but cmd/worker (and tests) imports it.
package worker
