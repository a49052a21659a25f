// Package tencent owns the Tencent Cloud Chat (IM) client for the one REST
// API friendsync calls, v4/sns/friend_update: the admin UserSig (TLSSigAPIv2,
// sign.go), the table that classifies every documented server code
// (codes.go), and the client that splits items into calls of at most 1000
// friends and sends each call as exactly one signed HTTP attempt
// (client.go).
//
// The client keeps the App admin's UserSig cached, regenerates it when less
// than half of its lifetime remains, and drops it when the server answers
// with a code that says the signature is stale, so the next attempt signs
// afresh. Neither the secret key nor a UserSig ever appears in an error,
// a message or Config.String.
//
// It does not retry, wait, rate-limit or validate event fields: package
// deliver retries by the returned vendors.Class, the limiter spends one
// token of the call's Budget per Send, and callers pass items that already
// passed event.ValidateFor for tencent.
package tencent
