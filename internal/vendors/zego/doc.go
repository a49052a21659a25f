// Package zego owns the ZEGOCLOUD ZIM server API client for friend updates:
// the request signature (MD5 over AppId, SignatureNonce, ServerSecret and
// Timestamp, fresh for every attempt), the UpdateFriendsAlias and
// UpdateFriendAttributes calls, and the table that classifies every ZIM
// return code into a vendors.Class.
//
// Split turns merged items into Calls that respect ZEGO's limits: aliases in
// batches of at most MaxAliasBatch friends (20 by default, 50 on request to
// ZEGO), attributes one friend per call with at most five keys and 1024
// bytes of keys plus values. Send makes exactly one signed HTTP attempt and
// maps the answer to one vendors.ItemResult per item (Code 0 with an
// ErrorList or FailKey is a partial success), or to a whole-call
// *vendors.Error.
//
// It does not retry, rate limit, log or settle: those belong to the caller.
// It does not support friend groups (ZIM has none; event validation rejects
// them for zego). It never puts the ServerSecret or a Signature into an
// error, a log line or String output.
package zego
