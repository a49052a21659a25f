// Package vendorstest owns the conformance suite every vendor client
// (internal/vendors/tencent, volc, zego) runs against the strict simulator
// (internal/vendorsim): Run executes the same cases on each client — a
// batch applied field by field (clears included), Split within the
// documented caps, per-item partial failure, throttling, transient codes,
// bad credentials, exactly one HTTP attempt per Send, prompt cancellation,
// a fresh signature per attempt and the answer to overlapping writes for
// one account. A Features value says what differs between vendors.
//
// It is imported only by _test.go files. It does not test signing vectors,
// fixture bodies or code tables one by one (each client's own tests do),
// and it does not retry, rate-limit or settle anything itself.
package vendorstest
