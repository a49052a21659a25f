package vendors

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Class says what to do about a vendor code.
type Class int

const (
	// OK: applied.
	OK Class = iota
	// Retry: transient (server busy, timeout, write conflict); retry with backoff.
	Retry
	// Throttled: over a rate limit; slow down and retry after RetryAfter.
	Throttled
	// ReSign: credentials or signature stale (expired UserSig, clock skew);
	// refresh them and retry once.
	ReSign
	// Permanent: retrying cannot help (bad input, not a friend, config).
	Permanent
)

var classNames = [...]string{"ok", "retry", "throttled", "re-sign", "permanent"}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Item is the set of values to write for one friend (To) of a Call's From.
// Field semantics follow package event: nil is unchanged, "" or an empty
// list clears.
type Item struct {
	// Ref is an opaque reference chosen by the caller and copied unchanged
	// into every part Split makes of the item, so results map back to it.
	Ref    int
	To     string
	Remark *string
	Groups *[]string
	Attrs  map[string]string
}

// Call is one vendor request: one API, one From, at most the API's cap of
// items.
type Call struct {
	// API is the vendor operation, e.g. "friend_update", "UpdateFriend",
	// "UpdateFriendsAlias", "UpdateFriendAttributes".
	API string
	// Budget names the rate-limit quota the call consumes (one token per
	// call), e.g. "tencent:1400000000:friend_update".
	Budget string
	From   string
	Items  []Item
}

// ItemResult is the vendor's answer for one item of a Call.
type ItemResult struct {
	Class   Class
	Code    string // vendor code as text ("0", "30008", "FlowLimitExceeded.QPSOverLimit")
	Message string
}

// Result holds one ItemResult per Call item, in the Call's order.
type Result struct {
	Items []ItemResult
}

// Error is a whole-call failure: transport error, HTTP status, or a
// top-level vendor code that applies to every item.
type Error struct {
	Vendor     string
	API        string
	HTTPStatus int    // 0 when no HTTP answer was read
	Code       string // vendor code, "" for transport errors
	Message    string // vendor text; never holds credentials
	Class      Class
	RetryAfter time.Duration // > 0 when the vendor or a throttle rule asks for a wait
	Err        error         // underlying transport or decode error
}

func (e *Error) Error() string {
	s := e.Vendor + ": " + e.API + ": " + e.Class.String()
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(": http %d", e.HTTPStatus)
	}
	if e.Code != "" {
		s += ": code " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the Class of err: the Error's class, Retry for any other
// error (a transport failure), OK for nil.
func ClassOf(err error) Class {
	if err == nil {
		return OK
	}
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Class
	}
	return Retry
}

// Whole returns a Result in which every one of n items carries the same
// answer; clients use it when a call-level code applies to all items.
func Whole(n int, r ItemResult) Result {
	items := make([]ItemResult, n)
	for i := range items {
		items[i] = r
	}
	return Result{Items: items}
}
