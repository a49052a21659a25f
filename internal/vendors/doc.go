// Package vendors owns the vocabulary the three vendor clients share: an
// Item (the merged values for one friend), a Call (one vendor request), the
// per-item Result, the error Class of a vendor code and the whole-call
// Error; and the tuned HTTP client they default to.
//
// Each vendor package (tencent, volc, zego) turns items into Calls with
// Split, makes exactly one signed HTTP attempt per Send, and classifies
// every code through its own table in codes.go. Retrying, rate limiting and
// settling belong to deliver and queue, never to a client.
package vendors
