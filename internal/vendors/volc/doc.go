// Package volc owns the Volcengine RTC IM OpenAPI client for UpdateFriend:
// the HMAC-SHA256 request signing (sign.go, the SDK's SigV4-like scheme),
// the configuration of one Volcengine account and IM app (config.go), the
// table that classifies every gateway and IM code (codes.go), and the
// client that splits items into calls of at most 10 friends and makes one
// signed attempt per Send (client.go).
//
// Request: POST {BaseURL}/?Action=UpdateFriend&Version=2020-12-01 with a
// JSON body {"AppId","UserId","InboxType"?,"FriendInfos":[{"FriendUserId",
// "Ext"?,"Alias"?}]}. Answer: HTTP 200 and an empty
// ResponseMetadata.Error means the call ran; Result.FailedInfos then names
// the friends that were not updated, every other friend was.
//
// It does not retry, wait for a rate limit, merge events or log: one Send
// is exactly one HTTP attempt, signed inside the attempt so that every
// attempt carries a fresh X-Date. Retrying, limiting and settling belong to
// the deliver and queue packages.
package volc
