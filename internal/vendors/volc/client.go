package volc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/friendsync/friendsync/internal/vendors"
)

// API names and protocol constants.
const (
	VendorName = "volc"
	API        = "UpdateFriend"
	Version    = "2020-12-01"

	// DefaultThrottleWait is the RetryAfter of a throttled answer that
	// names no Retry-After: the account QPS window is one second.
	DefaultThrottleWait = time.Second
	// MaxRetryAfter caps a vendor's Retry-After.
	MaxRetryAfter = 10 * time.Minute

	maxResponseBytes = 1 << 20
	maxMessageBytes  = 512
	maxCodeBytes     = 128
)

// Client calls UpdateFriend for one Volcengine account and IM app. It is
// safe for concurrent use.
type Client struct {
	cfg      Config
	cred     Credentials
	hc       *http.Client
	endpoint string
	budget   string
	now      func() time.Time
}

// New returns a Client for cfg. A nil hc gets a client with a pooled
// transport (MaxIdleConnsPerHost 64) that does not follow redirects (a
// redirected POST would be a second attempt with a stale signature).
func New(cfg Config, hc *http.Client) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("volc: new: %w", err)
	}
	cfg = cfg.withDefaults()
	if hc == nil {
		hc = vendors.NewHTTPClient()
	}
	return &Client{
		cfg:      cfg,
		cred:     Credentials{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey},
		hc:       hc,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/?Action=" + API + "&Version=" + Version,
		budget:   BudgetName(cfg.AccessKey),
		now:      time.Now,
	}, nil
}

// BudgetName is the rate-limit budget of an access key:
// "volc:ak-<first 8 hex of sha256(AccessKey)>:UpdateFriend". The quota is
// per Volcengine account; the raw key never appears in the name.
func BudgetName(accessKey string) string {
	sum := sha256.Sum256([]byte(accessKey))
	return VendorName + ":ak-" + hex.EncodeToString(sum[:4]) + ":" + API
}

// Vendor returns "volc".
func (c *Client) Vendor() string { return VendorName }

// Config returns the effective configuration (defaults applied).
func (c *Client) Config() Config { return c.cfg }

// Split cuts items into calls of at most MaxBatch friends, in order. It
// assumes the items passed event.ValidateFor; Send answers any that did not.
func (c *Client) Split(from string, items []vendors.Item) []vendors.Call {
	var calls []vendors.Call
	for chunk := range slices.Chunk(items, c.cfg.MaxBatch) {
		calls = append(calls, vendors.Call{
			API:    API,
			Budget: c.budget,
			From:   from,
			Items:  slices.Clone(chunk),
		})
	}
	return calls
}

type requestBody struct {
	AppId       int64        `json:"AppId"`
	UserId      int64        `json:"UserId"`
	InboxType   int          `json:"InboxType,omitempty"`
	FriendInfos []friendInfo `json:"FriendInfos"`
}

type friendInfo struct {
	FriendUserId int64             `json:"FriendUserId"`
	Ext          map[string]string `json:"Ext,omitempty"`
	Alias        *string           `json:"Alias,omitempty"`
}

// Send makes exactly one signed HTTP attempt for call. On success the
// Result holds one ItemResult per call item, in order: the items listed in
// Result.FailedInfos get their code's class, the others are OK; an item
// Send could not express (groups, or a remark without SendAlias, or nothing
// to write) is Permanent and not sent. A whole-call failure returns a zero
// Result and a *vendors.Error.
func (c *Client) Send(ctx context.Context, call vendors.Call) (vendors.Result, error) {
	if call.API != API {
		return vendors.Result{}, c.callError(0, "", fmt.Sprintf("unsupported api %q", call.API), vendors.Permanent, nil)
	}
	if len(call.Items) > c.cfg.MaxBatch {
		return vendors.Result{}, c.callError(0, "", fmt.Sprintf("%d items exceed the batch limit of %d", len(call.Items), c.cfg.MaxBatch), vendors.Permanent, nil)
	}
	from, err := strconv.ParseInt(call.From, 10, 64)
	if err != nil {
		return vendors.Result{}, c.callError(0, "", fmt.Sprintf("from %q is not a decimal int64 user id", clip(call.From, 64)), vendors.Permanent, nil)
	}

	results := make([]vendors.ItemResult, len(call.Items))
	ids := make([]int64, len(call.Items))
	sent := make([]bool, len(call.Items))
	body := requestBody{AppId: c.cfg.AppID, UserId: from, InboxType: c.cfg.InboxType}
	for i, it := range call.Items {
		to, err := strconv.ParseInt(it.To, 10, 64)
		if err != nil {
			return vendors.Result{}, c.callError(0, "", fmt.Sprintf("item %d: to %q is not a decimal int64 user id", i, clip(it.To, 64)), vendors.Permanent, nil)
		}
		ids[i] = to
		switch {
		case it.Groups != nil:
			results[i] = vendors.ItemResult{Class: vendors.Permanent, Message: "volc: UpdateFriend has no friend groups"}
			continue
		case it.Remark != nil && !c.cfg.SendAlias:
			results[i] = vendors.ItemResult{Class: vendors.Permanent, Message: "volc: this app does not send remarks (SendAlias is off)"}
			continue
		}
		fi := friendInfo{FriendUserId: to}
		if len(it.Attrs) > 0 {
			fi.Ext = maps.Clone(it.Attrs)
		}
		if it.Remark != nil {
			alias := *it.Remark
			fi.Alias = &alias
		}
		if fi.Ext == nil && fi.Alias == nil {
			results[i] = vendors.ItemResult{Class: vendors.Permanent, Message: "volc: nothing to update (no attributes or alias)"}
			continue
		}
		body.FriendInfos = append(body.FriendInfos, fi)
		sent[i] = true
	}
	if len(body.FriendInfos) == 0 {
		return vendors.Result{Items: results}, nil
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return vendors.Result{}, c.callError(0, "", "encode request", vendors.Permanent, err)
	}

	failed, err := c.do(ctx, payload)
	if err != nil {
		return vendors.Result{}, err
	}
	byID := make(map[int64]failedInfo, len(failed))
	for _, f := range failed {
		if _, dup := byID[int64(f.UserId)]; !dup {
			byID[int64(f.UserId)] = f
		}
	}
	for i := range results {
		if !sent[i] {
			continue
		}
		f, ok := byID[ids[i]]
		if !ok {
			results[i] = vendors.ItemResult{Class: vendors.OK}
			continue
		}
		results[i] = c.itemResult(f)
	}
	return vendors.Result{Items: results}, nil
}

func (c *Client) itemResult(f failedInfo) vendors.ItemResult {
	code, msg := string(f.Code), string(f.Message)
	r, ok := lookup(code)
	if !ok {
		return vendors.ItemResult{Class: vendors.Permanent, Code: code, Message: joinMsg("unknown code", msg)}
	}
	return vendors.ItemResult{Class: r.Class, Code: code, Message: msg}
}

// do signs and sends one request and returns the FailedInfos of a
// successful answer.
func (c *Client) do(ctx context.Context, payload []byte) ([]failedInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, c.callError(0, "", "build request", vendors.Permanent, err)
	}
	// No GetBody: the transport and redirects must not replay the POST.
	req.GetBody = nil
	req.Header.Set("Content-Type", "application/json")
	Sign(req, payload, c.cred, c.cfg.Region, c.cfg.Service, c.now())
	auth := req.Header.Get("Authorization")

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, "send", err, auth)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, "read response", err, auth)
	}
	return c.interpret(resp.StatusCode, resp.Header, data, auth)
}

func (c *Client) transportError(ctx context.Context, op string, err error, auth string) error {
	// Errors from net/http hold the URL (no secrets there) and the cause.
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("volc: %s: %w", op, cerr)
	} else {
		err = fmt.Errorf("volc: %s: %w", op, scrubbedError{err, c.scrub(err.Error(), []string{auth})})
	}
	return c.callError(0, "", "", vendors.Retry, err)
}

// scrubbedError keeps the chain of err (errors.Is/As) but prints text with
// secrets removed.
type scrubbedError struct {
	err  error
	text string
}

func (e scrubbedError) Error() string { return e.text }
func (e scrubbedError) Unwrap() error { return e.err }

type response struct {
	ResponseMetadata *struct {
		RequestId text `json:"RequestId"`
		Error     *struct {
			Code    text `json:"Code"`
			CodeN   text `json:"CodeN"`
			Message text `json:"Message"`
		} `json:"Error"`
	} `json:"ResponseMetadata"`
	Result *struct {
		FailedInfos []failedInfo `json:"FailedInfos"`
	} `json:"Result"`
}

type failedInfo struct {
	UserId  userID `json:"UserId"`
	Code    text   `json:"Code"`
	Message text   `json:"Message"`
}

// interpret turns one HTTP answer into FailedInfos or a whole-call error.
// It never panics on any input (FuzzSendResponse).
func (c *Client) interpret(status int, h http.Header, data []byte, auth string) ([]failedInfo, error) {
	var resp response
	jsonErr := decodeObject(data, &resp)
	if jsonErr == nil && resp.ResponseMetadata == nil {
		jsonErr = errors.New("no ResponseMetadata")
	}
	var code, msg string
	if jsonErr == nil && resp.ResponseMetadata.Error != nil {
		e := resp.ResponseMetadata.Error
		code, msg = string(e.Code), string(e.Message)
		if code == "" && e.CodeN != "" && e.CodeN != "0" {
			code = string(e.CodeN)
		}
	}
	code = clip(c.scrub(code, []string{auth}), maxCodeBytes)
	msg = c.scrub(msg, []string{auth})
	if code != "" && resp.ResponseMetadata.RequestId != "" {
		msg = strings.TrimSpace(msg + " (request id " + clip(c.scrub(string(resp.ResponseMetadata.RequestId), []string{auth}), 64) + ")")
	}

	if status != http.StatusOK {
		if code == "" && jsonErr != nil {
			msg = c.scrub(string(data), []string{auth})
		}
		class, known := statusClass(status, code)
		if !known {
			msg = joinMsg("unknown code", msg)
		}
		return nil, withRetryAfter(c.callError(status, code, msg, class, nil), h, c.now())
	}
	if jsonErr != nil {
		return nil, c.callError(status, "", "malformed response", vendors.Retry, fmt.Errorf("volc: decode response: %w", jsonErr))
	}
	if code != "" {
		class := vendors.Permanent
		r, known := lookup(code)
		if known {
			class = r.Class
		} else {
			msg = joinMsg("unknown code", msg)
		}
		return nil, withRetryAfter(c.callError(status, code, msg, class, nil), h, c.now())
	}
	if resp.Result == nil {
		return nil, nil
	}
	failed := resp.Result.FailedInfos
	for i := range failed {
		failed[i].Code = text(clip(c.scrub(string(failed[i].Code), []string{auth}), maxCodeBytes))
		failed[i].Message = text(c.scrub(string(failed[i].Message), []string{auth}))
	}
	return failed, nil
}

// statusClass classifies a non-200 answer: 429 is Throttled; a known code
// decides; else 5xx and 408 are Retry and everything else Permanent.
func statusClass(status int, code string) (vendors.Class, bool) {
	if status == http.StatusTooManyRequests {
		return vendors.Throttled, true
	}
	if code != "" {
		if r, ok := lookup(code); ok {
			return r.Class, true
		}
	}
	if status >= 500 || status == http.StatusRequestTimeout {
		return vendors.Retry, true
	}
	return vendors.Permanent, code == ""
}

func decodeObject(data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("response over %d bytes", maxResponseBytes)
	}
	return json.Unmarshal(data, v)
}

func (c *Client) callError(status int, code, msg string, class vendors.Class, err error) *vendors.Error {
	return &vendors.Error{
		Vendor:     VendorName,
		API:        API,
		HTTPStatus: status,
		Code:       code,
		Message:    msg,
		Class:      class,
		Err:        err,
	}
}

// withRetryAfter sets e.RetryAfter from the Retry-After header (seconds or
// an HTTP date, capped at MaxRetryAfter); a throttled error without one
// waits DefaultThrottleWait.
func withRetryAfter(e *vendors.Error, h http.Header, now time.Time) *vendors.Error {
	e.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	if e.RetryAfter <= 0 && e.Class == vendors.Throttled {
		e.RetryAfter = DefaultThrottleWait
	}
	return e
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// scrub removes the secret key and the request's Authorization value (and
// its signature) from vendor text, collapses whitespace and clips it.
func (c *Client) scrub(s string, extra []string) string {
	if s == "" {
		return ""
	}
	secrets := []string{c.cfg.SecretKey}
	for _, a := range extra {
		secrets = append(secrets, a)
		if _, sig, ok := strings.Cut(a, "Signature="); ok {
			secrets = append(secrets, sig)
		}
	}
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	return clip(s, maxMessageBytes)
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func joinMsg(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// text decodes a JSON string, number, boolean or null into its text, so a
// code sent as 59 or "59" reads the same.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	if string(b) == "null" {
		*t = ""
		return nil
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return errors.New("code is not a scalar")
	}
	*t = text(b)
	return nil
}

// userID decodes a user id sent as a JSON integer or a decimal string.
type userID int64

func (u *userID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("user id %.32q is not an int64", s)
	}
	*u = userID(n)
	return nil
}
