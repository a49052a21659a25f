package tencent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/friendsync/friendsync/internal/vendors"
)

const (
	// VendorName is the vendor's name in Errors, budgets and metrics.
	VendorName = "tencent"
	// API is the one operation the client calls.
	API = "friend_update"

	apiPath = "/v4/sns/friend_update"

	// Friend-table tags friend_update may write.
	tagRemark       = "Tag_SNS_IM_Remark"
	tagGroup        = "Tag_SNS_IM_Group"
	tagCustomPrefix = "Tag_SNS_Custom_"

	// maxResponseBytes bounds the body read from one answer; 1000
	// ResultItems take well under 200 KiB.
	maxResponseBytes = 4 << 20
	// maxMessageBytes bounds vendor text copied into messages.
	maxMessageBytes = 256
	// maxRetryAfter caps a server's Retry-After header.
	maxRetryAfter = time.Hour
)

// Client calls v4/sns/friend_update for one SDKAppID. It is safe for
// concurrent use; each Send is exactly one HTTP attempt.
type Client struct {
	cfg      Config
	hc       *http.Client
	endpoint string // BaseURL + apiPath
	budget   string
	now      func() time.Time // injected by tests

	mu    sync.Mutex
	sig   string    // cached admin UserSig, "" when none
	sigAt time.Time // its TLS.time
}

// New returns a client for cfg (zero fields take their defaults). A nil hc
// gets a client whose transport keeps up to 64 idle connections per host
// and does not follow redirects (a redirect would carry the usersig to
// another URL).
func New(cfg Config, hc *http.Client) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if hc == nil {
		hc = vendors.NewHTTPClient()
	}
	return &Client{
		cfg:      cfg,
		hc:       hc,
		endpoint: cfg.BaseURL + apiPath,
		budget:   VendorName + ":" + strconv.FormatUint(cfg.SDKAppID, 10) + ":" + API,
		now:      time.Now,
	}, nil
}

// Vendor returns "tencent".
func (c *Client) Vendor() string { return VendorName }

// Split cuts items into calls of at most MaxBatch items each, in order, for
// API friend_update and the budget "tencent:<sdkappid>:friend_update".
// Items are copied (Ref included); items must already have passed
// event.ValidateFor for tencent.
func (c *Client) Split(from string, items []vendors.Item) []vendors.Call {
	if len(items) == 0 {
		return nil
	}
	n := c.cfg.MaxBatch
	calls := make([]vendors.Call, 0, (len(items)+n-1)/n)
	for start := 0; start < len(items); start += n {
		end := min(start+n, len(items))
		calls = append(calls, vendors.Call{
			API:    API,
			Budget: c.budget,
			From:   from,
			Items:  slices.Clone(items[start:end]),
		})
	}
	return calls
}

// Send makes exactly one signed HTTP attempt for call, bounded by
// Config.Timeout and ctx. It returns one ItemResult per call item, or a
// *vendors.Error when the whole call failed (transport error, HTTP status,
// top-level ErrorCode, unreadable answer). Neither carries the key or the
// usersig.
func (c *Client) Send(ctx context.Context, call vendors.Call) (vendors.Result, error) {
	if err := c.check(call); err != nil {
		return vendors.Result{}, err
	}
	body, err := encodeRequest(call)
	if err != nil {
		return vendors.Result{}, c.callError(vendors.Permanent, "cannot encode request body", err)
	}
	sig, err := c.userSig()
	if err != nil {
		return vendors.Result{}, c.callError(vendors.Permanent, "cannot generate usersig", err)
	}
	random, err := randomUint32()
	if err != nil {
		return vendors.Result{}, c.callError(vendors.Retry, "no randomness for the random parameter", err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.requestURL(sig, random), bytes.NewReader(body))
	if err != nil {
		return vendors.Result{}, c.callError(vendors.Permanent, "cannot build request", c.redactErr(err, sig))
	}
	req.Header.Set("Content-Type", "application/json")

	resp, err := c.hc.Do(req)
	if err != nil {
		return vendors.Result{}, c.callError(vendors.Retry, "request failed", c.transportErr(ctx, err, sig))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		e := c.callError(vendors.Retry, "reading response failed", c.transportErr(ctx, err, sig))
		e.HTTPStatus = resp.StatusCode
		return vendors.Result{}, e
	}
	if len(data) > maxResponseBytes {
		e := c.callError(vendors.Retry, fmt.Sprintf("response exceeds %d bytes", maxResponseBytes), nil)
		e.HTTPStatus = resp.StatusCode
		return vendors.Result{}, e
	}

	a := interpret(resp.StatusCode, resp.Header, data, call.Items, c.now(),
		func(s string) string { return c.redact(s, sig) })
	if a.dropSig {
		c.dropSig(sig)
	}
	if a.err != nil {
		if a.err.Err != nil {
			a.err.Err = c.redactErr(a.err.Err, sig)
		}
		return vendors.Result{}, a.err
	}
	return a.res, nil
}

// check rejects calls Send cannot make, before any HTTP.
func (c *Client) check(call vendors.Call) error {
	switch {
	case call.API != "" && call.API != API:
		return c.callError(vendors.Permanent, fmt.Sprintf("unsupported api %q", call.API), nil)
	case call.From == "":
		return c.callError(vendors.Permanent, "call has no From account", nil)
	case len(call.Items) == 0:
		return c.callError(vendors.Permanent, "call has no items", nil)
	case len(call.Items) > c.cfg.MaxBatch:
		return c.callError(vendors.Permanent, fmt.Sprintf("call has %d items, limit %d", len(call.Items), c.cfg.MaxBatch), nil)
	}
	return nil
}

func (c *Client) callError(class vendors.Class, msg string, err error) *vendors.Error {
	return &vendors.Error{Vendor: VendorName, API: API, Class: class, Message: msg, Err: err}
}

// requestURL is the endpoint with the common parameters in the documented
// order. The usersig alphabet (A–Z a–z 0–9 * - _) needs no escaping.
func (c *Client) requestURL(sig string, random uint32) string {
	var b strings.Builder
	b.WriteString(c.endpoint)
	b.WriteString("?sdkappid=")
	b.WriteString(strconv.FormatUint(c.cfg.SDKAppID, 10))
	b.WriteString("&identifier=")
	b.WriteString(url.QueryEscape(c.cfg.Identifier))
	b.WriteString("&usersig=")
	b.WriteString(sig)
	b.WriteString("&random=")
	b.WriteString(strconv.FormatUint(uint64(random), 10))
	b.WriteString("&contenttype=json")
	return b.String()
}

// userSig returns the cached admin UserSig, generating a new one when none
// is cached or less than half of SigTTL remains.
func (c *Client) userSig() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.sig != "" && now.Sub(c.sigAt) <= c.cfg.SigTTL/2 {
		return c.sig, nil
	}
	sig, err := GenUserSig(c.cfg.SDKAppID, c.cfg.Key, c.cfg.Identifier, c.cfg.SigTTL, now)
	if err != nil {
		return "", err
	}
	c.sig, c.sigAt = sig, time.Unix(now.Unix(), 0)
	return sig, nil
}

// dropSig forgets used if it is still the cached sig, so the next Send
// signs afresh; a sig another goroutine already replaced is kept.
func (c *Client) dropSig(used string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sig == used {
		c.sig = ""
	}
}

func randomUint32() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// Request body.

type snsItem struct {
	Tag   string `json:"Tag"`
	Value any    `json:"Value"`
}

type updateItem struct {
	To      string    `json:"To_Account"`
	SnsItem []snsItem `json:"SnsItem"`
}

type request struct {
	From       string       `json:"From_Account"`
	UpdateItem []updateItem `json:"UpdateItem"`
}

// encodeRequest writes the friend_update body: per item the remark, the
// groups, then the custom attributes sorted by key. Remark "" and an empty
// group list are sent as such (they clear); an attribute "" clears it.
func encodeRequest(call vendors.Call) ([]byte, error) {
	r := request{From: call.From, UpdateItem: make([]updateItem, 0, len(call.Items))}
	for _, it := range call.Items {
		sns := make([]snsItem, 0, 2+len(it.Attrs))
		if it.Remark != nil {
			sns = append(sns, snsItem{Tag: tagRemark, Value: *it.Remark})
		}
		if it.Groups != nil {
			gs := *it.Groups
			if gs == nil {
				gs = []string{}
			}
			sns = append(sns, snsItem{Tag: tagGroup, Value: gs})
		}
		keys := make([]string, 0, len(it.Attrs))
		for k := range it.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sns = append(sns, snsItem{Tag: tagCustomPrefix + k, Value: it.Attrs[k]})
		}
		r.UpdateItem = append(r.UpdateItem, updateItem{To: it.To, SnsItem: sns})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Response.

type resultItem struct {
	To         string `json:"To_Account"`
	ResultCode int    `json:"ResultCode"`
	ResultInfo string `json:"ResultInfo"`
}

type response struct {
	ResultItem   []resultItem `json:"ResultItem"`
	ActionStatus string       `json:"ActionStatus"`
	ErrorCode    int          `json:"ErrorCode"`
	ErrorInfo    string       `json:"ErrorInfo"`
}

// answer is what one HTTP answer means: a per-item Result or a whole-call
// error, and whether the usersig that produced it must be dropped.
type answer struct {
	res     vendors.Result
	err     *vendors.Error
	dropSig bool
}

// interpret maps one HTTP answer to per-item results or a whole-call
// error. It never panics: any body that is not the documented JSON is a
// Retry whole-call error. clean removes secrets from vendor text before it
// is shortened into a message.
func interpret(status int, hdr http.Header, body []byte, items []vendors.Item, now time.Time, clean func(string) string) answer {
	explain := func(info code, vendorText string) string {
		return describe(info, clean(vendorText))
	}
	whole := func(class vendors.Class, code, msg string, err error) *vendors.Error {
		return &vendors.Error{Vendor: VendorName, API: API, HTTPStatus: status, Code: code, Message: msg, Class: class, Err: err}
	}
	var r response
	parseErr := json.Unmarshal(body, &r)

	if status != http.StatusOK {
		after := retryAfter(hdr, now)
		var e *vendors.Error
		switch {
		case status == http.StatusTooManyRequests:
			e = whole(vendors.Throttled, "", "http 429: rate limited", nil)
		case status >= 500:
			e = whole(vendors.Retry, "", "server or gateway error", nil)
		default:
			e = whole(vendors.Permanent, "", "unexpected http status", nil)
		}
		dropSig := false
		if parseErr == nil && r.ErrorCode != 0 {
			info := lookup(r.ErrorCode)
			e.Code = strconv.Itoa(r.ErrorCode)
			e.Message = explain(info, r.ErrorInfo)
			if status != http.StatusTooManyRequests && status < 500 {
				e.Class = info.class
				dropSig = info.dropSig
			}
			after = max(after, info.retryAfter)
		}
		e.RetryAfter = after
		return answer{err: e, dropSig: dropSig}
	}

	if parseErr != nil {
		return answer{err: whole(vendors.Retry, "", "malformed response body", parseErr)}
	}
	failed := r.ErrorCode != 0 || strings.EqualFold(r.ActionStatus, "FAIL")
	top := lookup(r.ErrorCode)
	if failed && len(r.ResultItem) == 0 {
		if r.ErrorCode == 0 {
			return answer{err: whole(vendors.Retry, "", "action status FAIL without an error code", nil)}
		}
		e := whole(top.class, strconv.Itoa(r.ErrorCode), explain(top, r.ErrorInfo), nil)
		e.RetryAfter = top.retryAfter
		return answer{err: e, dropSig: top.dropSig}
	}

	// Per-item results, matched by To_Account; a repeated To_Account takes
	// its entries in order.
	byTo := make(map[string][]resultItem, len(r.ResultItem))
	for _, ri := range r.ResultItem {
		byTo[ri.To] = append(byTo[ri.To], ri)
	}
	a := answer{res: vendors.Result{Items: make([]vendors.ItemResult, len(items))}}
	for i, it := range items {
		q := byTo[it.To]
		switch {
		case len(q) > 0:
			ri := q[0]
			byTo[it.To] = q[1:]
			info := lookup(ri.ResultCode)
			a.res.Items[i] = vendors.ItemResult{Class: info.class, Code: strconv.Itoa(ri.ResultCode)}
			if ri.ResultCode != 0 {
				a.res.Items[i].Message = explain(info, ri.ResultInfo)
			}
			a.dropSig = a.dropSig || info.dropSig
		case failed:
			// ErrorCode ≠ 0 with some ResultItems: an item left out
			// takes the call's code.
			a.res.Items[i] = vendors.ItemResult{Class: top.class, Code: strconv.Itoa(r.ErrorCode), Message: explain(top, r.ErrorInfo)}
			a.dropSig = a.dropSig || top.dropSig
		default:
			a.res.Items[i] = vendors.ItemResult{Class: vendors.Retry, Message: "no result for item"}
		}
	}
	return a
}

// describe is the table's meaning of a code, followed by the vendor's own
// text (bounded) when it sent one. vendorText must be free of secrets
// already: a cut could leave part of one that redaction no longer finds.
func describe(info code, vendorText string) string {
	vendorText = truncate(strings.TrimSpace(vendorText), maxMessageBytes)
	if vendorText == "" {
		return info.text
	}
	return info.text + ": " + vendorText
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// retryAfter reads a Retry-After header (seconds or an HTTP date),
// clamped to [0, maxRetryAfter]; 0 when absent or unreadable.
func retryAfter(hdr http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(hdr.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// Secrets.

const redactedText = "[redacted]"

// redact removes the key and the usersig (raw or query-escaped) from s.
func (c *Client) redact(s, sig string) string {
	for _, secret := range []string{sig, url.QueryEscape(sig), c.cfg.Key} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redactedText)
		}
	}
	return s
}

// redactedError keeps an error's chain for errors.Is/As but prints a text
// with the secrets removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (c *Client) redactErr(err error, sig string) error {
	msg := err.Error()
	if clean := c.redact(msg, sig); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// transportErr strips the request URL (it holds the usersig) from an HTTP
// client error, makes sure it wraps ctx.Err() when the context ended, and
// redacts whatever else could echo a secret.
func (c *Client) transportErr(ctx context.Context, err error, sig string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return c.redactErr(err, sig)
}
