package zego

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// VendorName is the name this client reports in vendors.Error and Vendor().
const VendorName = "zego"

// The two ZIM operations the client calls.
const (
	APIUpdateFriendsAlias     = "UpdateFriendsAlias"
	APIUpdateFriendAttributes = "UpdateFriendAttributes"
)

// UpdateFriendAttributes limits (ZEGO's defaults).
const (
	// MaxAttrsPerCall is the most Attributes entries in one call.
	MaxAttrsPerCall = 5
	// MaxAttrBytes bounds the sum of len(Key)+len(Value) in one call.
	MaxAttrBytes = 1024
)

// DefaultRetryAfter is the wait attached to a throttled answer that names
// no wait of its own (ZEGO's throttle codes never do).
const DefaultRetryAfter = time.Second

const (
	maxResponseBytes = 1 << 20 // a friend API answer is far smaller
	maxMessageBytes  = 512     // vendor text copied into results and errors
)

// Client calls the ZIM friend APIs. It is safe for concurrent use.
type Client struct {
	cfg         Config
	hc          *http.Client
	endpoint    string // BaseURL + "/"
	aliasBudget string
	attrsBudget string

	now   func() time.Time // Timestamp source; tests pin it
	nonce func() string    // SignatureNonce source; tests pin it
}

// New returns a Client for cfg. A nil hc gets a client with a Transport
// tuned for many concurrent calls to one host; Config.Timeout bounds every
// Send either way.
func New(cfg Config, hc *http.Client) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("zego: new: %w", err)
	}
	cfg = cfg.withDefaults()
	if hc == nil {
		hc = vendors.NewHTTPClient()
	}
	appID := strconv.FormatUint(uint64(cfg.AppID), 10)
	return &Client{
		cfg:         cfg,
		hc:          hc,
		endpoint:    cfg.BaseURL + "/",
		aliasBudget: VendorName + ":" + appID + ":" + APIUpdateFriendsAlias,
		attrsBudget: VendorName + ":" + appID + ":" + APIUpdateFriendAttributes,
		now:         time.Now,
		nonce:       NewNonce,
	}, nil
}

// Vendor returns "zego".
func (c *Client) Vendor() string { return VendorName }

// Split turns the merged items of one From into Calls:
//   - every item with a Remark becomes a part of an UpdateFriendsAlias call,
//     in input order, at most MaxAliasBatch parts per call (a repeated To
//     starts a new call, since ZEGO rejects duplicate user IDs);
//   - every item with Attrs becomes one or more UpdateFriendAttributes calls
//     for that friend alone, each with at most MaxAttrsPerCall keys and at
//     most MaxAttrBytes of keys plus values (keys in order, packed greedily).
//
// Alias calls come first, then attribute calls ordered by To and key. Every
// part keeps its item's Ref, so an item with both a remark and attributes
// maps back from two (or more) calls. Groups are ignored: ZIM has none.
func (c *Client) Split(from string, items []vendors.Item) []vendors.Call {
	var calls []vendors.Call

	var batch []vendors.Item
	inBatch := make(map[string]bool)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		calls = append(calls, vendors.Call{API: APIUpdateFriendsAlias, Budget: c.aliasBudget, From: from, Items: batch})
		batch = nil
		clear(inBatch)
	}
	for _, it := range items {
		if it.Remark == nil {
			continue
		}
		if len(batch) == c.cfg.MaxAliasBatch || inBatch[it.To] {
			flush()
		}
		remark := *it.Remark
		batch = append(batch, vendors.Item{Ref: it.Ref, To: it.To, Remark: &remark})
		inBatch[it.To] = true
	}
	flush()

	var withAttrs []int
	for i, it := range items {
		if len(it.Attrs) > 0 {
			withAttrs = append(withAttrs, i)
		}
	}
	slices.SortStableFunc(withAttrs, func(a, b int) int { return cmp.Compare(items[a].To, items[b].To) })
	for _, i := range withAttrs {
		it := items[i]
		var part map[string]string
		size := 0
		emit := func() {
			if part != nil {
				calls = append(calls, vendors.Call{API: APIUpdateFriendAttributes, Budget: c.attrsBudget, From: from,
					Items: []vendors.Item{{Ref: it.Ref, To: it.To, Attrs: part}}})
			}
			part, size = nil, 0
		}
		for _, k := range slices.Sorted(maps.Keys(it.Attrs)) {
			v := it.Attrs[k]
			n := len(k) + len(v)
			if part != nil && (len(part) == MaxAttrsPerCall || size+n > MaxAttrBytes) {
				emit()
			}
			if part == nil {
				part = make(map[string]string, MaxAttrsPerCall)
			}
			part[k] = v
			size += n
		}
		emit()
	}
	return calls
}

// Request bodies.
type (
	aliasBody struct {
		FromUserId string       `json:"FromUserId"`
		UserIds    []aliasEntry `json:"UserIds"`
	}
	aliasEntry struct {
		UserId      string `json:"UserId"`
		FriendAlias string `json:"FriendAlias"`
	}
	attrsBody struct {
		FromUserId string      `json:"FromUserId"`
		UserId     string      `json:"UserId"`
		Attributes []attrEntry `json:"Attributes"`
		Action     int         `json:"Action"` // 0: set
	}
	attrEntry struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}
)

// Send makes exactly one signed HTTP attempt for call and maps the answer to
// one ItemResult per call item. A whole-call failure (transport, HTTP status,
// a non-zero Code without a failure list, an unreadable answer, a call that
// cannot be sent) is a *vendors.Error; when ctx ends first the error wraps
// ctx.Err().
func (c *Client) Send(ctx context.Context, call vendors.Call) (vendors.Result, error) {
	body, err := encode(call, c.cfg.MaxAliasBatch)
	if err != nil {
		return vendors.Result{}, err
	}
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	nonce := c.nonce()
	ts := c.now().Unix()
	sig := Signature(c.cfg.AppID, nonce, c.cfg.ServerSecret, ts)
	u := c.endpoint + "?Action=" + call.API +
		"&AppId=" + strconv.FormatUint(uint64(c.cfg.AppID), 10) +
		"&SignatureNonce=" + url.QueryEscape(nonce) +
		"&Timestamp=" + strconv.FormatInt(ts, 10) +
		"&SignatureVersion=" + SignatureVersion +
		"&Signature=" + sig
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return vendors.Result{}, c.scrub(&vendors.Error{Vendor: VendorName, API: call.API, Class: vendors.Permanent,
			Message: "cannot build request", Err: unwrapURL(err)}, sig)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.hc.Do(req)
	if err != nil {
		return vendors.Result{}, c.scrub(c.transportError(ctx, tctx, call.API, "request failed", err), sig)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		e := c.transportError(ctx, tctx, call.API, "reading response failed", err)
		e.HTTPStatus = resp.StatusCode
		return vendors.Result{}, c.scrub(e, sig)
	}
	if len(data) > maxResponseBytes {
		return vendors.Result{}, &vendors.Error{Vendor: VendorName, API: call.API, HTTPStatus: resp.StatusCode,
			Class: vendors.Retry, Message: "response larger than 1 MiB"}
	}
	res, err := decide(call, resp.StatusCode, resp.Header, data, c.now())
	if err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) {
			c.scrub(ve, sig)
		}
		return vendors.Result{}, err
	}
	for i := range res.Items {
		res.Items[i].Message = c.redact(res.Items[i].Message, sig)
	}
	return res, nil
}

// encode checks call against the API's shape and returns its JSON body; a
// call that cannot be right is a Permanent *vendors.Error, sent nowhere.
func encode(call vendors.Call, maxAlias int) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return &vendors.Error{Vendor: VendorName, API: call.API, Class: vendors.Permanent,
			Message: "invalid call: " + fmt.Sprintf(format, args...)}
	}
	if call.From == "" {
		return nil, bad("empty From")
	}
	if len(call.Items) == 0 {
		return nil, bad("no items")
	}
	var v any
	switch call.API {
	case APIUpdateFriendsAlias:
		if len(call.Items) > maxAlias {
			return nil, bad("%d items exceed the cap of %d", len(call.Items), maxAlias)
		}
		b := aliasBody{FromUserId: call.From, UserIds: make([]aliasEntry, len(call.Items))}
		for i, it := range call.Items {
			if it.To == "" || it.Remark == nil {
				return nil, bad("item %d needs a To and a Remark", i)
			}
			b.UserIds[i] = aliasEntry{UserId: it.To, FriendAlias: *it.Remark}
		}
		v = b
	case APIUpdateFriendAttributes:
		if len(call.Items) != 1 {
			return nil, bad("%d items, the API takes one friend per call", len(call.Items))
		}
		it := call.Items[0]
		if it.To == "" || len(it.Attrs) == 0 || len(it.Attrs) > MaxAttrsPerCall {
			return nil, bad("the item needs a To and 1..%d attributes, has %d", MaxAttrsPerCall, len(it.Attrs))
		}
		b := attrsBody{FromUserId: call.From, UserId: it.To}
		for _, k := range slices.Sorted(maps.Keys(it.Attrs)) {
			b.Attributes = append(b.Attributes, attrEntry{Key: k, Value: it.Attrs[k]})
		}
		v = b
	default:
		return nil, bad("unknown API %q", truncate(call.API))
	}
	body, err := json.Marshal(v)
	if err != nil { // unreachable for these types; kept so nothing panics
		return nil, bad("encoding body: %v", err)
	}
	return body, nil
}

// transportError builds the whole-call error for a failed round trip. When
// the caller's ctx ended it wraps ctx.Err(); when only the Timeout fired it
// wraps context.DeadlineExceeded. The request URL (which carries the
// Signature) is stripped from net/http's error.
func (c *Client) transportError(ctx, tctx context.Context, api, what string, err error) *vendors.Error {
	e := &vendors.Error{Vendor: VendorName, API: api, Class: vendors.Retry, Message: what, Err: unwrapURL(err)}
	switch {
	case ctx.Err() != nil:
		e.Message = what + ": context done"
		e.Err = ctx.Err()
	case tctx.Err() != nil:
		e.Message = what + ": timeout after " + c.cfg.Timeout.String()
		e.Err = context.DeadlineExceeded
	}
	return e
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// scrub removes the signature and the server secret from e's texts.
func (c *Client) scrub(e *vendors.Error, sig string) *vendors.Error {
	e.Message = c.redact(e.Message, sig)
	if e.Err != nil {
		if s := e.Err.Error(); c.redact(s, sig) != s {
			e.Err = &redactedError{text: c.redact(s, sig), err: e.Err}
		}
	}
	return e
}

func (c *Client) redact(s, sig string) string {
	if sig != "" && strings.Contains(s, sig) {
		s = strings.ReplaceAll(s, sig, "[redacted]")
	}
	if strings.Contains(s, c.cfg.ServerSecret) {
		s = strings.ReplaceAll(s, c.cfg.ServerSecret, "[redacted]")
	}
	return s
}

// redactedError keeps errors.Is/As working on an error whose text had to be
// cleaned.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// answer is a ZIM response; Code is a pointer so that a body without it is
// told apart from success.
type answer struct {
	Code      *int64    `json:"Code"`
	Message   string    `json:"Message"`
	RequestId string    `json:"RequestId"`
	ErrorList []failure `json:"ErrorList"` // UpdateFriendsAlias
	FailKey   []failure `json:"FailKey"`   // UpdateFriendAttributes
}

type failure struct {
	UserId     string `json:"UserId"`
	Key        string `json:"Key"`
	SubCode    int64  `json:"SubCode"`
	SubMessage string `json:"SubMessage"`
}

// decide maps one HTTP answer to per-item results or a whole-call error. It
// is pure (no I/O) and never panics, whatever the body holds.
func decide(call vendors.Call, status int, header http.Header, body []byte, now time.Time) (vendors.Result, error) {
	whole := func(class vendors.Class, code, msg string, err error) *vendors.Error {
		return &vendors.Error{Vendor: VendorName, API: call.API, HTTPStatus: status, Code: code, Class: class,
			Message: truncate(msg), Err: err}
	}
	var a answer
	perr := json.Unmarshal(body, &a)

	if status != http.StatusOK {
		e := whole(vendors.Permanent, "", http.StatusText(status), nil)
		switch {
		case status == http.StatusTooManyRequests:
			e.Class = vendors.Throttled
			e.RetryAfter = retryAfter(header, now, DefaultRetryAfter)
		case status >= 500 || status == http.StatusRequestTimeout:
			e.Class = vendors.Retry
			e.RetryAfter = retryAfter(header, now, 0)
		}
		if perr == nil && a.Code != nil && *a.Code != 0 {
			e.Code = strconv.FormatInt(*a.Code, 10)
			e.Message = truncate(text(a.Message, *a.Code, a.RequestId))
		}
		return vendors.Result{}, e
	}
	if perr != nil {
		return vendors.Result{}, whole(vendors.Retry, "", "malformed response", perr)
	}
	if a.Code == nil {
		return vendors.Result{}, whole(vendors.Retry, "", "malformed response: no Code", nil)
	}
	code := *a.Code
	list := a.ErrorList
	if call.API == APIUpdateFriendAttributes {
		list = a.FailKey
	}
	if len(list) == 0 {
		if code == 0 {
			return vendors.Whole(len(call.Items), vendors.ItemResult{Class: vendors.OK, Code: "0"}), nil
		}
		e := whole(Classify(code), strconv.FormatInt(code, 10), text(a.Message, code, a.RequestId), nil)
		if e.Class == vendors.Throttled {
			e.RetryAfter = retryAfter(header, now, DefaultRetryAfter)
		}
		return vendors.Result{}, e
	}
	if call.API == APIUpdateFriendAttributes {
		return attrsResult(call, code, list), nil
	}
	return aliasResult(call, code, list), nil
}

// aliasResult: listed friends fail with their SubCode; the others are OK
// when Code is 0 and fail with Code otherwise.
func aliasResult(call vendors.Call, code int64, list []failure) vendors.Result {
	byUser := make(map[string]failure, len(list))
	for _, f := range list {
		if _, dup := byUser[f.UserId]; !dup {
			byUser[f.UserId] = f
		}
	}
	res := vendors.Result{Items: make([]vendors.ItemResult, len(call.Items))}
	for i, it := range call.Items {
		if f, ok := byUser[it.To]; ok {
			res.Items[i] = subResult(f, code)
		} else if code != 0 {
			res.Items[i] = codeResult(code, "")
		} else {
			res.Items[i] = vendors.ItemResult{Class: vendors.OK, Code: "0"}
		}
	}
	return res
}

// attrsResult: any FailKey entry fails the friend, with the worst class
// (the highest vendors.Class: Permanent > ReSign > Throttled > Retry) among
// the listed SubCodes, and Code too when Code is not 0 and some sent key
// is not listed.
func attrsResult(call vendors.Call, code int64, list []failure) vendors.Result {
	listed := make(map[string]bool, len(list))
	worst := vendors.ItemResult{Class: vendors.OK}
	worstKey := ""
	for _, f := range list {
		listed[f.Key] = true
		r := subResult(f, code)
		if worst.Class == vendors.OK || r.Class > worst.Class {
			worst, worstKey = r, f.Key
		}
	}
	res := vendors.Result{Items: make([]vendors.ItemResult, len(call.Items))}
	for i, it := range call.Items {
		r := worst
		r.Message = truncate("key " + worstKey + ": " + worst.Message)
		if code != 0 {
			for k := range it.Attrs {
				if !listed[k] {
					if cr := codeResult(code, ""); cr.Class > r.Class {
						r = cr
					}
					break
				}
			}
		}
		if n := len(list); n > 1 {
			r.Message = truncate(r.Message + " (" + strconv.Itoa(n) + " keys failed)")
		}
		res.Items[i] = r
	}
	return res
}

// subResult is the result for one listed failure. A listed entry is a
// failure even if its SubCode is 0: it then takes the call's Code, or Retry
// when that is 0 too.
func subResult(f failure, code int64) vendors.ItemResult {
	switch {
	case f.SubCode != 0:
		return codeResult(f.SubCode, f.SubMessage)
	case code != 0:
		return codeResult(code, f.SubMessage)
	}
	return vendors.ItemResult{Class: vendors.Retry, Code: "0", Message: "listed as failed without a SubCode"}
}

func codeResult(code int64, msg string) vendors.ItemResult {
	if msg == "" {
		msg = describe(code)
	}
	return vendors.ItemResult{Class: Classify(code), Code: strconv.FormatInt(code, 10), Message: truncate(msg)}
}

// text is the message of a whole-call code: the vendor's Message (or the
// table's meaning) and the RequestId for ZEGO support.
func text(msg string, code int64, requestID string) string {
	if msg == "" {
		msg = describe(code)
	}
	if requestID != "" {
		msg += " (request id " + requestID + ")"
	}
	return msg
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), falling
// back to def.
func retryAfter(h http.Header, now time.Time, def time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return def
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return def
		}
		if s > 3600 {
			s = 3600
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, time.Hour)
		}
	}
	return def
}

// truncate bounds vendor text copied into results and errors, cutting at a
// UTF-8 boundary.
func truncate(s string) string {
	if len(s) <= maxMessageBytes {
		return s
	}
	i := maxMessageBytes
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
