package vendorsim

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Test-only signing helpers, written from VENDORS.md independently of the
// verifiers in the package (they share no code with them).

// signUserSig builds a Tencent UserSig v2 with JSON keys sorted (Go map
// marshalling) and default zlib compression.
func signUserSig(key string, app uint64, id string, now, expire int64) string {
	content := fmt.Sprintf("TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n", id, app, now, expire)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(content))
	doc := map[string]any{
		"TLS.ver": "2.0", "TLS.identifier": id, "TLS.sdkappid": app,
		"TLS.expire": expire, "TLS.time": now, "TLS.sig": base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}
	js, _ := json.Marshal(doc)
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(js)
	zw.Close()
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// signVolc signs req the way the Volcengine Go SDK does: it sets
// Content-Type, X-Date, X-Content-Sha256 and Authorization with
// SignedHeaders content-type;host;x-content-sha256;x-date.
func signVolc(req *http.Request, body []byte, ak, sk, region, service string, now time.Time) {
	xdate := now.UTC().Format("20060102T150405Z")
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Date", xdate)
	req.Header.Set("X-Content-Sha256", bodyHash)
	q := req.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var qs []string
	for _, k := range keys {
		for _, v := range q[k] {
			qs = append(qs, strings.ReplaceAll(url.QueryEscape(k)+"="+url.QueryEscape(v), "+", "%20"))
		}
	}
	signed := "content-type;host;x-content-sha256;x-date"
	headers := "content-type:application/json\nhost:" + req.URL.Host + "\nx-content-sha256:" + bodyHash + "\nx-date:" + xdate + "\n"
	path := req.URL.Path
	if path == "" {
		path = "/"
	}
	cr := req.Method + "\n" + path + "\n" + strings.Join(qs, "&") + "\n" + headers + "\n" + signed + "\n" + bodyHash
	crSum := sha256.Sum256([]byte(cr))
	date := xdate[:8]
	scope := date + "/" + region + "/" + service + "/request"
	sts := "HMAC-SHA256\n" + xdate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	k := []byte(sk)
	for _, part := range []string{date, region, service, "request"} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(part))
		k = m.Sum(nil)
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(sts))
	req.Header.Set("Authorization", "HMAC-SHA256 Credential="+ak+"/"+scope+", SignedHeaders="+signed+", Signature="+hex.EncodeToString(m.Sum(nil)))
}

// zegoQuery returns the common ZEGO query parameters for action.
func zegoQuery(app uint32, secret, action, nonce string, ts int64) url.Values {
	sum := md5.Sum([]byte(fmt.Sprintf("%d%s%s%d", app, nonce, secret, ts)))
	return url.Values{
		"Action": {action}, "AppId": {strconv.FormatUint(uint64(app), 10)},
		"SignatureNonce": {nonce}, "Timestamp": {strconv.FormatInt(ts, 10)},
		"SignatureVersion": {"2.0"}, "Signature": {hex.EncodeToString(sum[:])},
	}
}

// Response shapes as the vendor pages name their fields (decoded
// independently of the package's own response types).

type tResult struct {
	To_Account string
	ResultCode int
	ResultInfo string
}

type tResp struct {
	ResultItem   []tResult
	Fail_Account []string
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
}

type vResp struct {
	ResponseMetadata struct {
		RequestId, Action, Version, Service, Region string
		Error                                       *struct {
			CodeN         int
			Code, Message string
		}
	}
	Result *struct {
		FailedInfos []struct {
			UserId        int64
			Code, Message string
		}
	}
}

type zResp struct {
	Code      int
	Message   string
	RequestId string
	ErrorList []struct {
		UserId     string
		SubCode    int
		SubMessage string
	}
	FailKey []struct {
		Key     string
		SubCode int
	}
}

// harness drives a Sim through its in-memory Transport.
type harness struct {
	t   testing.TB
	sim *Sim
	c   *http.Client

	mu     sync.Mutex
	sigAt  int64
	sigVal string
}

// adminSig returns the demo admin's UserSig, re-signed when the clock
// moved to another second (as a client caches its UserSig).
func (h *harness) adminSig() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now().Unix(); h.sigVal == "" || now != h.sigAt {
		h.sigAt, h.sigVal = now, signUserSig(DemoTencentKey, DemoTencentSDKAppID, DemoTencentAdmin, now, 86400)
	}
	return h.sigVal
}

func newHarness(t testing.TB, mut func(*Config)) *harness {
	t.Helper()
	cfg := DemoConfig()
	if mut != nil {
		mut(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, sim: sim, c: &http.Client{Transport: sim.Transport()}}
}

func (h *harness) now() time.Time { return h.sim.cfg.Now() }

// do sends req and returns the status and body.
func (h *harness) do(req *http.Request) (int, []byte) {
	h.t.Helper()
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

func bodyOf(body any) []byte {
	switch b := body.(type) {
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	js, _ := json.Marshal(body)
	return js
}

// tencentReq builds a signed friend_update request for the demo app; mod
// may change the query before the request is built.
func (h *harness) tencentReq(ctx context.Context, body any, mod func(url.Values)) *http.Request {
	q := url.Values{
		"sdkappid":    {strconv.Itoa(DemoTencentSDKAppID)},
		"identifier":  {DemoTencentAdmin},
		"usersig":     {h.adminSig()},
		"random":      {"99999999"},
		"contenttype": {"json"},
	}
	if mod != nil {
		mod(q)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sim.test"+tencentPath+"?"+q.Encode(), bytes.NewReader(bodyOf(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

func (h *harness) tencent(body any, mod func(url.Values)) tResp {
	h.t.Helper()
	status, b := h.do(h.tencentReq(context.Background(), body, mod))
	if status != http.StatusOK {
		h.t.Fatalf("tencent: HTTP %d: %s", status, b)
	}
	return decode[tResp](h.t, b)
}

// tItem builds one UpdateItem; tags are (Tag, Value) pairs.
func tItem(to string, tags ...any) map[string]any {
	var sns []map[string]any
	for i := 0; i+1 < len(tags); i += 2 {
		sns = append(sns, map[string]any{"Tag": tags[i], "Value": tags[i+1]})
	}
	return map[string]any{"To_Account": to, "SnsItem": sns}
}

func tBody(from string, items ...map[string]any) map[string]any {
	return map[string]any{"From_Account": from, "UpdateItem": items}
}

// volcReq builds a signed UpdateFriend request for the demo account.
func (h *harness) volcReq(ctx context.Context, body any, sign func(*http.Request, []byte)) *http.Request {
	b := bodyOf(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sim.test/volc/?Action=UpdateFriend&Version=2020-12-01", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	if sign == nil {
		signVolc(req, b, DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", h.now())
	} else {
		sign(req, b)
	}
	return req
}

func (h *harness) volc(body any) (int, vResp) {
	h.t.Helper()
	status, b := h.do(h.volcReq(context.Background(), body, nil))
	return status, decode[vResp](h.t, b)
}

func vBody(user int64, infos ...map[string]any) map[string]any {
	return map[string]any{"AppId": DemoVolcAppID, "UserId": user, "FriendInfos": infos}
}

func (h *harness) zegoReq(ctx context.Context, action string, body any, mod func(url.Values)) *http.Request {
	q := zegoQuery(DemoZegoAppID, DemoZegoServerSecret, action, "4fd24687296dd9f3", h.now().Unix())
	if mod != nil {
		mod(q)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sim.test/zego/?"+q.Encode(), bytes.NewReader(bodyOf(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

func (h *harness) zego(action string, body any, mod func(url.Values)) zResp {
	h.t.Helper()
	status, b := h.do(h.zegoReq(context.Background(), action, body, mod))
	if status != http.StatusOK {
		h.t.Fatalf("zego: HTTP %d: %s", status, b)
	}
	return decode[zResp](h.t, b)
}

func zAlias(from string, pairs ...string) map[string]any {
	var ids []map[string]any
	for i := 0; i+1 < len(pairs); i += 2 {
		ids = append(ids, map[string]any{"UserId": pairs[i], "FriendAlias": pairs[i+1]})
	}
	return map[string]any{"FromUserId": from, "UserIds": ids}
}

func zAttrs(from, to string, kvs ...string) map[string]any {
	var attrs []map[string]any
	for i := 0; i+1 < len(kvs); i += 2 {
		attrs = append(attrs, map[string]any{"Key": kvs[i], "Value": kvs[i+1]})
	}
	return map[string]any{"FromUserId": from, "UserId": to, "Attributes": attrs}
}

func (h *harness) friend(v event.Vendor, app, from, to string) Friend {
	h.t.Helper()
	f, ok := h.sim.Friend(v, app, from, to)
	if !ok {
		h.t.Fatalf("no state for %s/%s/%s/%s", v, app, from, to)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

const (
	tApp = "1400000000"
	vApp = "123456"
	zApp = "12345"
)
