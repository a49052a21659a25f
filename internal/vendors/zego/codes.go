package zego

import "github.com/friendsync/friendsync/internal/vendors"

type codeInfo struct {
	class   vendors.Class
	meaning string
}

// codes classifies every ZIM return code the friend APIs can answer with
// (VENDORS.md C.2-C.4, texts from ZEGO's return-code page). It is the only
// place a code's handling is decided.
var codes = map[int64]codeInfo{
	0: {vendors.OK, "success"},

	// Common return codes.
	1:      {vendors.Retry, "request failed: server busy, retry later"},
	2:      {vendors.Permanent, "input parameter error"},
	3:      {vendors.Permanent, "authentication failed"},
	7:      {vendors.Throttled, "requests per second exceed the system setting, retry later"},
	105001: {vendors.Retry, "request failed: database request failed"},

	// Gateway codes.
	100000000: {vendors.Permanent, "wrong Host in the request URL"},
	100000001: {vendors.Permanent, "AppId has a wrong format"},
	100000002: {vendors.Permanent, "Timestamp is empty"},
	100000003: {vendors.Permanent, "Timestamp has a wrong format"},
	100000004: {vendors.ReSign, "signature expired (check the clock)"},
	100000005: {vendors.Permanent, "signature wrong (check AppID and ServerSecret)"},
	100000006: {vendors.Permanent, "Action is empty"},
	100000007: {vendors.Permanent, "unsupported Action"},
	100000008: {vendors.Permanent, "SignatureNonce is empty"},
	100000009: {vendors.Permanent, "Signature is empty"},
	100000010: {vendors.Retry, "gateway failed to get the ServerSecret"},
	100000011: {vendors.Retry, "gateway failed to get the app configuration"},
	100000012: {vendors.Retry, "gateway failed to read the HTTP body"},
	100000013: {vendors.Permanent, "SignatureVersion is empty"},
	100000014: {vendors.Permanent, "unsupported SignatureVersion"},
	100000015: {vendors.Retry, "gateway internal error"},
	100000016: {vendors.Permanent, "app has no production environment configured"},
	100000017: {vendors.Permanent, "app has not enabled this service"},

	// Business codes.
	660000001: {vendors.Retry, "common business error, retry"},
	660000002: {vendors.Permanent, "input parameter missing or invalid"},
	660000003: {vendors.Retry, "logic processing error, retry"},
	660000011: {vendors.Permanent, "too many users in the list"},
	660000012: {vendors.Permanent, "UserId longer than 32 bytes"},
	660000013: {vendors.Permanent, "undocumented business error"},
	660300005: {vendors.Throttled, "call frequency exceeds the AppID-level limit"},
	660300006: {vendors.Throttled, "call frequency exceeds the group or room limit"},
	660700012: {vendors.Permanent, "user does not exist"},
	660700015: {vendors.Permanent, "user not registered"},
	660800019: {vendors.Permanent, "batch size exceeds the limit"},
	660800021: {vendors.Permanent, "FriendAlias or Wording too long"},
	660800022: {vendors.Permanent, "duplicate user IDs in the parameters"},
	660800023: {vendors.Permanent, "attribute Key is not one of k0..k4"},
	660800024: {vendors.Permanent, "attribute keys and values exceed the total length limit"},
	660800025: {vendors.Permanent, "none of the friends are registered"},
	660800026: {vendors.Permanent, "friend attribute parameter error"},
	660800032: {vendors.Permanent, "duplicate attribute Key"},
	660800033: {vendors.Permanent, "UserIds contains FromUserId"},
	660800034: {vendors.Permanent, "target user is not a friend of FromUserId"},
}

// unknownMeaning is the description of a code missing from the table.
const unknownMeaning = "unknown code"

// Classify returns the Class of a ZIM return code or SubCode: OK for 0,
// Permanent for a code the table does not know.
func Classify(code int64) vendors.Class {
	if ci, ok := codes[code]; ok {
		return ci.class
	}
	return vendors.Permanent
}

// describe returns the documented meaning of code, or "unknown code".
func describe(code int64) string {
	if ci, ok := codes[code]; ok {
		return ci.meaning
	}
	return unknownMeaning
}
