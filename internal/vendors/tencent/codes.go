package tencent

import (
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// code is what the client knows about one Tencent server code.
type code struct {
	class vendors.Class
	// retryAfter is the documented wait before the next attempt, 0 when
	// the caller's backoff decides.
	retryAfter time.Duration
	// dropSig: the cached admin UserSig must not be used again.
	dropSig bool
	// text is a short meaning, used when the server sends no ResultInfo /
	// ErrorInfo.
	text string
}

// codes is the one table of every code in VENDORS.md §A.5: the sns codes of
// friend_update (30001–30014) and the common REST / account codes
// (60002–80002). A code not in it is Permanent ("unknown code").
var codes = map[int]code{
	0: {vendors.OK, 0, false, "ok"},

	// Relationship chain (sns).
	30001: {vendors.Permanent, 0, false, "invalid request parameter (or the friend is not in the account's friend list)"},
	30002: {vendors.Permanent, 0, false, "sdkappid mismatch"},
	30003: {vendors.Permanent, 0, false, "requested account does not exist"},
	30004: {vendors.Permanent, 0, false, "app admin permission required"},
	30005: {vendors.Permanent, 0, false, "field contains a sensitive word"},
	30006: {vendors.Retry, 0, false, "server internal error, retry"},
	30007: {vendors.Retry, 0, false, "network timeout, retry later"},
	30008: {vendors.Retry, 0, false, "write conflict from concurrent writes"},
	30009: {vendors.Permanent, 0, false, "backend forbids this user from adding friends"},
	30010: {vendors.Permanent, 0, false, "friend count at system limit"},
	30011: {vendors.Permanent, 0, false, "friend-group count at system limit"},
	30012: {vendors.Permanent, 0, false, "pendency count at system limit"},
	30013: {vendors.Permanent, 0, false, "blocklist count at system limit"},
	30014: {vendors.Permanent, 0, false, "peer friend count at system limit"},

	// Common REST and account codes.
	60002: {vendors.Permanent, 0, false, "http parse error (url)"},
	60003: {vendors.Permanent, 0, false, "request json parse error"},
	60004: {vendors.ReSign, 0, true, "identifier or usersig wrong"},
	60005: {vendors.ReSign, 0, true, "identifier or usersig wrong"},
	60006: {vendors.Permanent, 0, false, "sdkappid invalid"},
	60007: {vendors.Throttled, 0, false, "rest call frequency exceeds limit"},
	60008: {vendors.Retry, 0, false, "service timeout or bad http format, retry"},
	60009: {vendors.Permanent, 0, false, "request resource error (url)"},
	60010: {vendors.Permanent, 0, false, "app admin required"},
	60011: {vendors.Throttled, 0, false, "sdkappid request frequency exceeds limit"},
	60012: {vendors.Permanent, 0, false, "sdkappid missing"},
	60013: {vendors.Permanent, 0, false, "response json parse error"},
	60014: {vendors.Retry, 0, false, "account exchange timeout"},
	60015: {vendors.Permanent, 0, false, "account type wrong"},
	60016: {vendors.Permanent, 0, false, "sdkappid disabled"},
	60017: {vendors.Permanent, 0, false, "request disabled"},
	60018: {vendors.Throttled, 0, false, "requests too frequent, retry later"},
	60019: {vendors.Throttled, 0, false, "requests too frequent, retry later"},
	60020: {vendors.Permanent, 0, false, "package expired or not effective"},
	60021: {vendors.Permanent, 0, false, "rest source ip not allowed"},
	70001: {vendors.ReSign, 0, true, "usersig expired"},
	70002: {vendors.ReSign, 0, true, "usersig empty"},
	70003: {vendors.ReSign, 0, true, "usersig check failed"},
	70005: {vendors.ReSign, 0, true, "usersig check failed"},
	70009: {vendors.Permanent, 0, false, "usersig verify failed (wrong key or sdkappid)"},
	70013: {vendors.Permanent, 0, false, "identifier does not match usersig"},
	70014: {vendors.Permanent, 0, false, "sdkappid does not match usersig"},
	70016: {vendors.Permanent, 0, false, "key not found (wrong data center?)"},
	70020: {vendors.Permanent, 0, false, "sdkappid not found (wrong data center?)"},
	70050: {vendors.Throttled, time.Minute, true, "usersig failed and frequency limited, retry after 1 minute"},
	70051: {vendors.Permanent, 0, false, "account blocklisted"},
	70052: {vendors.ReSign, 0, true, "usersig invalidated"},
	70107: {vendors.Permanent, 0, false, "account not imported"},
	70169: {vendors.Retry, 0, false, "server internal timeout, retry"},
	70206: {vendors.Permanent, 0, false, "batch count invalid"},
	70402: {vendors.Permanent, 0, false, "invalid parameters"},
	70403: {vendors.Permanent, 0, false, "app admin required"},
	70500: {vendors.Retry, 0, false, "server internal error, retry"},
	80001: {vendors.Permanent, 0, false, "sensitive text"},
	80002: {vendors.Permanent, 0, false, "body too long"},
}

var unknownCode = code{vendors.Permanent, 0, false, "unknown code"}

// lookup returns the table entry of c, or the unknown-code entry.
func lookup(c int) code {
	if e, ok := codes[c]; ok {
		return e
	}
	return unknownCode
}

// Classify returns the Class of a Tencent server code (ResultCode or
// ErrorCode) and the documented wait before retrying (0 when the caller's
// backoff decides). 0 is OK; a code not in the table is Permanent.
func Classify(c int) (vendors.Class, time.Duration) {
	e := lookup(c)
	return e.class, e.retryAfter
}
