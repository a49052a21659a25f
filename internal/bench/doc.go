// Package bench owns the benchmark report of issue 8: one run that
// measures the worker's speed and vendor-budget use next to their targets
// and to plain baselines measured in the same run, and writes it as
// Markdown (cmd/fsbench prints it; docs/BENCHMARKS.md explains it).
//
// Measurements (Options.Only selects some by name):
//
//   - budget: workers saturating simulated Tencent and ZEGO budgets, 1 and
//     3 workers sharing the Redis limiter: achieved calls/s as a fraction of
//     the limiter rate, and the simulator's busiest 1-second window.
//   - batching: vendor calls made against the optimum Σ ceil(events per
//     account / cap), Zipf and uniform backlogs, per vendor.
//   - throughput: publish-to-final-ack events/s through an unthrottled
//     simulator, next to plain JetStream publish + pull consume + ack of the
//     same payloads.
//   - latency: publish-to-vendor-call p50/p99 below saturation.
//   - memory: peak RSS of a cmd/worker subprocess holding a large backlog.
//   - naive: one vendor call per event from concurrent goroutines (as app
//     servers would) against ours on the same workload and simulator.
//   - micro: the Go micro-benchmarks of internal/deliver and
//     internal/enqueue, run with go test.
//
// Everything runs against the NATS and Redis named in Options, under
// unique stream layouts and key prefixes that are deleted afterwards;
// workers run in process through worker.Run with one shared simulator
// (so its counters see the whole cluster), except the memory measurement.
//
// The machine is shared and noisy: the report states the load average
// next to the figures, and compares ratios measured in the same run.
// Nothing here asserts a timing; Report.Failures lists only broken
// invariants (a budget window over its limit, overlapping writes for one
// account, write conflicts, lost events) and measurement errors.
//
// Package bench does not start NATS or Redis, and it changes nothing
// outside the names it creates.
package bench
