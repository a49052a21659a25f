// Package vendorsim owns a strict, in-process simulator of the three vendor
// friend-update APIs friendsync calls: Tencent Cloud Chat
// v4/sns/friend_update, Volcengine RTC IM UpdateFriend and ZEGOCLOUD ZIM
// UpdateFriendsAlias / UpdateFriendAttributes. One http.Handler serves them
// under the path prefixes /tencent/, /volc/ and /zego/, plus a JSON admin API
// under /admin/.
//
// The simulator verifies every signature itself (Tencent UserSig v2,
// Volcengine HMAC-SHA256 request signing, ZEGO MD5 signature), enforces the
// documented batch caps, field limits and QPS limits, detects overlapping
// writes for one account, answers with the response shapes of the vendor
// pages (partial success included) and keeps the friend data it was sent, so
// tests can assert what reached the "vendor". Faults (error codes, 5xx,
// latency, hangs, outages) are injected deterministically from a seed.
//
// Counters prove the worker's invariants from the outside: Overlaps counts
// writes that arrived while another write for the same account was being
// applied ("one call in flight per account"), and per budget MaxWindow and
// OverBudgetWindows report the most calls received in any sliding 1-second
// window ("no 1-second window over the budget").
//
// Time: credential checks (UserSig expiry, X-Date and Timestamp skew, outage
// windows) use Config.Now; WriteTime, added latency and the QPS windows use
// the time package directly, so inside a testing/synctest bubble they run on
// the bubble's clock. Transport returns an in-memory http.RoundTripper for
// such bubbles, where sockets do not advance the fake clock.
//
// Choices where the vendor documents are silent are marked [I] in the code
// and listed in the comments of the vendor files (tencent.go, volc.go,
// zego.go).
//
// Package vendorsim does not import the vendor clients (internal/vendors/...):
// its verifiers are an independent implementation of /work/shared/VENDORS.md,
// so the two cross-check each other. It does not persist anything, and it
// does not export Prometheus metrics; Counters and GET /admin/counters are
// its observability.
package vendorsim
