// Package prooftest owns the shared pieces of the end-to-end proofs
// (internal/worker's tests, internal/clustertest, internal/chaos and
// internal/stacktest):
//
//   - a deterministic mixed workload over the test apps (two Tencent
//     SDKAppIDs, one Volcengine account, one ZEGO AppID, or any subset) and
//     the final state it must leave at the vendors (NewWorkload, FillFields,
//     AccountIDs, Workload.Expected), with its random source as a parameter
//     (SplitMix, or a math/rand/v2 generator);
//   - comparison of that state with the vendor simulator's (Diff,
//     SameFriend, Brief);
//   - the checks of the simulator's counters: no overlapping writes for one
//     account, no write conflicts, no 1-second window over a budget
//     (CheckVendorInvariants);
//   - readers of the consumers' pending messages (Pending), the dead-letter
//     stream (ReadDLQ) and the partition leases (LeaseOwners, WaitOwned);
//   - a log sink for in-process workers (LogSink) and a TCP proxy that
//     simulates a network outage (OutageProxy).
//
// Like internal/testenv it is a normal package used only by tests and by the
// chaos command (internal/chaos, cmd/fschaos); other non-test code must not
// import it. It starts no servers and uses no shared state of its own.
package prooftest
