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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// ---- fixture: a Volcengine gateway stand-in that verifies signatures ----

// reply is what the fixture answers.
type reply struct {
	status int
	header http.Header
	body   string
}

// captured is one request the fixture received.
type captured struct {
	path   string
	query  string
	host   string
	header http.Header
	body   []byte
	sigErr error
}

type fixture struct {
	t       *testing.T
	cred    Credentials
	region  string
	service string
	prefix  string // path the endpoint lives under, e.g. "/volc"
	respond func(n int, c captured) reply

	mu   sync.Mutex
	reqs []captured
}

func newFixture(t *testing.T, respond func(n int, c captured) reply) *fixture {
	t.Helper()
	return &fixture{t: t, cred: Credentials{AccessKey: vecAK, SecretKey: vecSK}, region: "cn-north-1", service: "rtc", respond: respond}
}

func (f *fixture) requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.reqs...)
}

func (f *fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := captured{path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, header: r.Header.Clone(), body: body}
	c.sigErr = verifyRequest(r, body, f.cred, f.region, f.service)
	f.mu.Lock()
	f.reqs = append(f.reqs, c)
	n := len(f.reqs)
	f.mu.Unlock()

	var rep reply
	switch {
	case r.Method != http.MethodPost || r.URL.Path != f.prefix+"/" ||
		r.URL.Query().Get("Action") != "UpdateFriend" || r.URL.Query().Get("Version") != "2020-12-01":
		rep = reply{status: http.StatusNotFound, body: `{"ResponseMetadata":{"Error":{"Code":"InvalidActionOrVersion","Message":"not found"}}}`}
	case c.sigErr != nil:
		rep = reply{status: http.StatusUnauthorized, body: readTestdata(f.t, "signature_mismatch.json")}
	default:
		rep = f.respond(n, c)
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// verifyRequest checks a received request the way the gateway does, with
// the package's own canonical-request code over the headers the request
// says it signed, and insists on the SDK's header set.
func verifyRequest(r *http.Request, body []byte, cred Credentials, region, service string) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, Algorithm+" ")
	if !ok {
		return errors.New("no HMAC-SHA256 authorization")
	}
	parts := map[string]string{}
	for p := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(p, "=")
		parts[k] = v
	}
	xdate := r.Header.Get("X-Date")
	if len(xdate) != len(TimeFormat) {
		return fmt.Errorf("bad X-Date %q", xdate)
	}
	scope := Scope(xdate[:8], region, service)
	if parts["Credential"] != cred.AccessKey+"/"+scope {
		return fmt.Errorf("credential %q", parts["Credential"])
	}
	if got := r.Header.Get("X-Content-Sha256"); got != HashHex(body) {
		return fmt.Errorf("X-Content-Sha256 %q does not match the body", got)
	}
	if parts["SignedHeaders"] != "content-type;host;x-content-sha256;x-date" {
		return fmt.Errorf("signed headers %q", parts["SignedHeaders"])
	}
	cr := CanonicalRequest(r, strings.Split(parts["SignedHeaders"], ";"), HashHex(body))
	want := Signature(SigningKey(cred.SecretKey, xdate[:8], region, service), StringToSign(xdate, scope, cr))
	if parts["Signature"] != want {
		return errors.New("signature does not match")
	}
	return nil
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// handlerTransport serves requests in memory (for synctest bubbles, where
// real sockets do not advance the fake clock).
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	sr := httptest.NewRequest(r.Method, r.URL.String(), bytes.NewReader(body)).WithContext(r.Context())
	sr.Header = r.Header.Clone()
	if r.Host != "" {
		sr.Host = r.Host
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, sr)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// serve starts the fixture on a real socket and returns a client for it.
func serve(t *testing.T, f *fixture, mut func(*Config)) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := validConfig()
	cfg.BaseURL = srv.URL + f.prefix
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func item(ref int, to string, attrs map[string]string) vendors.Item {
	return vendors.Item{Ref: ref, To: to, Attrs: attrs}
}

func call(from string, items ...vendors.Item) vendors.Call {
	return vendors.Call{API: API, Budget: BudgetName(vecAK), From: from, Items: items}
}

func okReply(int, captured) reply {
	return reply{body: `{"ResponseMetadata":{"RequestId":"r"},"Result":{"FailedInfos":[]}}`}
}

func classes(r vendors.Result) []vendors.Class {
	out := make([]vendors.Class, len(r.Items))
	for i, it := range r.Items {
		out[i] = it.Class
	}
	return out
}

func asVendorError(t *testing.T, err error) *vendors.Error {
	t.Helper()
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *vendors.Error", err, err)
	}
	if ve.Vendor != "volc" || ve.API != "UpdateFriend" {
		t.Errorf("error names %q/%q, want volc/UpdateFriend", ve.Vendor, ve.API)
	}
	return ve
}

// ---- tests ----

func TestNewRejectsInvalidConfig(t *testing.T) {
	c, err := New(Config{}, nil)
	if err == nil || c != nil {
		t.Fatalf("New(Config{}) = %v, %v; want an error", c, err)
	}
	if !strings.HasPrefix(err.Error(), "volc: new: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestNewDefaultTransport(t *testing.T) {
	c, err := New(validConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T", c.hc.Transport)
	}
	if tr.MaxIdleConnsPerHost < 64 {
		t.Errorf("MaxIdleConnsPerHost = %d, want >= 64", tr.MaxIdleConnsPerHost)
	}
	if c.Vendor() != "volc" {
		t.Errorf("Vendor() = %q", c.Vendor())
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name     string
		maxBatch int
		n        int
		want     []int
	}{
		{"none", 0, 0, nil},
		{"one", 0, 1, []int{1}},
		{"exactly ten", 0, 10, []int{10}},
		{"eleven", 0, 11, []int{10, 1}},
		{"twenty-five", 0, 25, []int{10, 10, 5}},
		{"max batch three", 3, 7, []int{3, 3, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.MaxBatch = tc.maxBatch
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			items := make([]vendors.Item, tc.n)
			for i := range items {
				items[i] = item(i, strconv.Itoa(20000+i), map[string]string{"k": "v"})
			}
			calls := c.Split("10001", items)
			var sizes []int
			next := 0
			for _, cl := range calls {
				sizes = append(sizes, len(cl.Items))
				if cl.API != "UpdateFriend" || cl.From != "10001" {
					t.Errorf("call API/From = %q/%q", cl.API, cl.From)
				}
				if cl.Budget != "volc:ak-"+akHash8(vecAK)+":UpdateFriend" {
					t.Errorf("budget %q", cl.Budget)
				}
				if strings.Contains(cl.Budget, vecAK) {
					t.Errorf("budget %q holds the raw access key", cl.Budget)
				}
				for _, it := range cl.Items {
					if it.Ref != next {
						t.Errorf("item order: got ref %d, want %d", it.Ref, next)
					}
					next++
				}
			}
			if !reflect.DeepEqual(sizes, tc.want) {
				t.Errorf("chunk sizes %v, want %v", sizes, tc.want)
			}
		})
	}
}

// akHash8 recomputes the budget hash independently of the package helper.
func akHash8(ak string) string {
	sum := sha256Sum(ak)
	return sum[:8]
}

// TestSendVector3EndToEnd sends the VENDORS.md vector-3 request through the
// client and checks body bytes and signature byte-exact.
func TestSendVector3EndToEnd(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(readTestdata(t, "update_friend_ok.json")))}, nil
	})
	c, err := New(validConfig(), &http.Client{Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return mustTime(t, "20240619T071306Z") }
	res, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(classes(res), []vendors.Class{vendors.OK}) {
		t.Errorf("result %+v", res)
	}
	if got.URL.String() != "https://rtc.volcengineapi.com/?Action=UpdateFriend&Version=2020-12-01" {
		t.Errorf("url %s", got.URL)
	}
	if want := `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`; string(gotBody) != want {
		t.Errorf("body\n%s\nwant\n%s", gotBody, want)
	}
	if h := got.Header.Get("X-Content-Sha256"); h != "dff139ebdd5a288495db9006b4e10dcfceca681a81d9ee5c40538ed153a58525" {
		t.Errorf("X-Content-Sha256 %s", h)
	}
	want := "HMAC-SHA256 Credential=" + vecAK + "/20240619/cn-north-1/rtc/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=eae8d198759b282fd26375f57ed864aae3e185836d707ff00198070565d8784f"
	if a := got.Header.Get("Authorization"); a != want {
		t.Errorf("Authorization\n%s\nwant\n%s", a, want)
	}
}

func sha256Sum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSendSampleResponseVerifiesOnServer(t *testing.T) {
	f := newFixture(t, func(int, captured) reply { return reply{body: readTestdata(t, "update_friend_ok.json")} })
	c := serve(t, f, nil)
	res, err := c.Send(context.Background(), call("10001",
		item(0, "10002", map[string]string{"test": "test"}),
		item(1, "10003", map[string]string{"7778": "777"})))
	if err != nil {
		t.Fatal(err)
	}
	if want := []vendors.Class{vendors.OK, vendors.OK}; !reflect.DeepEqual(classes(res), want) {
		t.Errorf("classes %v, want %v", classes(res), want)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if reqs[0].sigErr != nil {
		t.Errorf("server-side verification: %v", reqs[0].sigErr)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"AppId": 123456.0, "UserId": 10001.0, "FriendInfos": []any{
		map[string]any{"FriendUserId": 10002.0, "Ext": map[string]any{"test": "test"}},
		map[string]any{"FriendUserId": 10003.0, "Ext": map[string]any{"7778": "777"}},
	}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body %v\nwant %v", body, want)
	}
}

func TestSendWrongSecretIsSignatureDoesNotMatch(t *testing.T) {
	f := newFixture(t, okReply)
	c := serve(t, f, func(cfg *Config) { cfg.SecretKey = "not-the-secret" })
	_, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
	ve := asVendorError(t, err)
	if ve.Class != vendors.Permanent || ve.Code != "SignatureDoesNotMatch" || ve.HTTPStatus != 401 {
		t.Errorf("error %+v, want permanent SignatureDoesNotMatch 401", ve)
	}
	if !strings.Contains(ve.Message, "(request id 20240619071306010225162033AB3C4E)") {
		t.Errorf("message %q lacks the request id", ve.Message)
	}
	if len(f.requests()) != 1 || f.requests()[0].sigErr == nil {
		t.Errorf("the fixture did not reject the signature")
	}
}

func TestSendBaseURLPathPrefix(t *testing.T) {
	f := newFixture(t, okReply)
	f.prefix = "/volc"
	c := serve(t, f, nil)
	res, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
	if err != nil {
		t.Fatal(err)
	}
	if res.Items[0].Class != vendors.OK {
		t.Errorf("result %+v", res)
	}
	r := f.requests()[0]
	if r.path != "/volc/" || r.query != "Action=UpdateFriend&Version=2020-12-01" || r.sigErr != nil {
		t.Errorf("request path %q query %q sigErr %v", r.path, r.query, r.sigErr)
	}
}

func TestSendRequestBody(t *testing.T) {
	tests := []struct {
		name      string
		mut       func(*Config)
		items     []vendors.Item
		wantBody  string // "" = no request
		wantClass []vendors.Class
	}{
		{
			name:      "attribute cleared with empty string",
			items:     []vendors.Item{item(0, "10002", map[string]string{"a": "", "b": "x"})},
			wantBody:  `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"a":"","b":"x"}}]}`,
			wantClass: []vendors.Class{vendors.OK},
		},
		{
			name:      "alias sent when enabled, empty alias clears",
			mut:       func(c *Config) { c.SendAlias = true },
			items:     []vendors.Item{{To: "10002", Remark: ptr("bob")}, {To: "10003", Remark: ptr(""), Attrs: map[string]string{"k": "v"}}},
			wantBody:  `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Alias":"bob"},{"FriendUserId":10003,"Ext":{"k":"v"},"Alias":""}]}`,
			wantClass: []vendors.Class{vendors.OK, vendors.OK},
		},
		{
			name:      "inbox type sent when set",
			mut:       func(c *Config) { c.InboxType = 3 },
			items:     []vendors.Item{item(0, "10002", map[string]string{"k": "v"})},
			wantBody:  `{"AppId":123456,"UserId":10001,"InboxType":3,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`,
			wantClass: []vendors.Class{vendors.OK},
		},
		{
			name:      "remark without SendAlias is permanent and not sent",
			items:     []vendors.Item{{To: "10002", Remark: ptr("bob")}, item(1, "10003", map[string]string{"k": "v"})},
			wantBody:  `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10003,"Ext":{"k":"v"}}]}`,
			wantClass: []vendors.Class{vendors.Permanent, vendors.OK},
		},
		{
			name:      "groups are permanent, nothing to write is permanent, no request",
			items:     []vendors.Item{{To: "10002", Groups: &[]string{"g"}}, {To: "10003"}},
			wantClass: []vendors.Class{vendors.Permanent, vendors.Permanent},
		},
		{
			name:      "no items, no request",
			wantClass: []vendors.Class{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, okReply)
			c := serve(t, f, tc.mut)
			res, err := c.Send(context.Background(), call("10001", tc.items...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(classes(res), tc.wantClass) {
				t.Errorf("classes %v, want %v", classes(res), tc.wantClass)
			}
			reqs := f.requests()
			if tc.wantBody == "" {
				if len(reqs) != 0 {
					t.Errorf("%d requests, want none", len(reqs))
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if string(reqs[0].body) != tc.wantBody {
				t.Errorf("body\n%s\nwant\n%s", reqs[0].body, tc.wantBody)
			}
			if reqs[0].sigErr != nil {
				t.Errorf("signature: %v", reqs[0].sigErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSendRejectsBadCallWithoutRequest(t *testing.T) {
	tests := []struct {
		name string
		call vendors.Call
		want string
	}{
		{"from not a number", call("alice", item(0, "10002", map[string]string{"k": "v"})), "from"},
		{"from overflows int64", call("9223372036854775808", item(0, "10002", map[string]string{"k": "v"})), "from"},
		{"to not a number", call("10001", item(0, "10002", map[string]string{"k": "v"}), item(1, "bob", map[string]string{"k": "v"})), "item 1"},
		{"wrong api", vendors.Call{API: "friend_update", From: "10001", Items: []vendors.Item{item(0, "10002", nil)}}, "unsupported api"},
		{"too many items", call("10001", make([]vendors.Item, 11)...), "exceed the batch limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, okReply)
			c := serve(t, f, nil)
			res, err := c.Send(context.Background(), tc.call)
			ve := asVendorError(t, err)
			if ve.Class != vendors.Permanent || !strings.Contains(ve.Error(), tc.want) {
				t.Errorf("error %v, want permanent containing %q", err, tc.want)
			}
			if len(res.Items) != 0 {
				t.Errorf("result %+v with a whole-call error", res)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests, want none", n)
			}
		})
	}
}

func TestSendPartialFailure(t *testing.T) {
	f := newFixture(t, func(int, captured) reply { return reply{body: readTestdata(t, "update_friend_partial.json")} })
	c := serve(t, f, nil)
	attrs := map[string]string{"k": "v"}
	res, err := c.Send(context.Background(), call("10001",
		item(0, "10002", attrs), item(1, "10003", attrs), item(2, "010004", attrs), item(3, "10005", attrs)))
	if err != nil {
		t.Fatal(err)
	}
	want := []vendors.ItemResult{
		{Class: vendors.OK},
		{Class: vendors.Permanent, Code: "NOT_FRIEND", Message: "not friend"},
		{Class: vendors.Retry, Code: "59", Message: "update frequent"},
		{Class: vendors.Permanent, Code: "SOMETHING_NEW", Message: "unknown code: new failure"},
	}
	if !reflect.DeepEqual(res.Items, want) {
		t.Errorf("items\n%+v\nwant\n%+v", res.Items, want)
	}
}

func TestSendUpdateFrequentPerItemIsRetry(t *testing.T) {
	// The conflict the simulator answers: every listed friend gets
	// UPDATE_FREQUENT; the others applied.
	f := newFixture(t, func(_ int, c captured) reply {
		var b requestBody
		if err := json.Unmarshal(c.body, &b); err != nil {
			return reply{status: 400}
		}
		return reply{body: fmt.Sprintf(`{"ResponseMetadata":{"RequestId":"r"},"Result":{"FailedInfos":[{"UserId":%d,"Code":"UPDATE_FREQUENT","Message":"update frequent"}]}}`, b.FriendInfos[1].FriendUserId)}
	})
	c := serve(t, f, nil)
	attrs := map[string]string{"k": "v"}
	res, err := c.Send(context.Background(), call("10001", item(0, "10002", attrs), item(1, "10003", attrs), item(2, "10004", attrs)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []vendors.Class{vendors.OK, vendors.Retry, vendors.OK}; !reflect.DeepEqual(classes(res), want) {
		t.Errorf("classes %v, want %v", classes(res), want)
	}
	if res.Items[1].Code != "UPDATE_FREQUENT" {
		t.Errorf("code %q", res.Items[1].Code)
	}
}

func TestSendWholeCallAnswers(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	errBody := func(code string) string {
		return `{"ResponseMetadata":{"RequestId":"r","Error":{"Code":"` + code + `","Message":"m"}}}`
	}
	tests := []struct {
		name       string
		rep        reply
		wantClass  vendors.Class
		wantCode   string
		wantStatus int
		wantAfter  time.Duration
	}{
		{"429 with Retry-After seconds", reply{status: 429, header: hdr("Retry-After", "3"), body: readTestdata(t, "qps_over_limit.json")}, vendors.Throttled, "FlowLimitExceeded.QPSOverLimit", 429, 3 * time.Second},
		{"429 without body or header", reply{status: 429}, vendors.Throttled, "", 429, DefaultThrottleWait},
		{"429 Retry-After http date", reply{status: 429, header: hdr("Retry-After", "Wed, 19 Jun 2024 07:13:11 GMT")}, vendors.Throttled, "", 429, 5 * time.Second},
		{"429 Retry-After huge is capped", reply{status: 429, header: hdr("Retry-After", "99999999")}, vendors.Throttled, "", 429, MaxRetryAfter},
		{"200 FlowLimitExceeded", reply{body: readTestdata(t, "qps_over_limit.json")}, vendors.Throttled, "FlowLimitExceeded.QPSOverLimit", 200, DefaultThrottleWait},
		{"400 FlowLimitExceeded", reply{status: 400, body: readTestdata(t, "qps_over_limit.json")}, vendors.Throttled, "FlowLimitExceeded.QPSOverLimit", 400, DefaultThrottleWait},
		{"401 SignatureDoesNotMatch", reply{status: 401, body: readTestdata(t, "signature_mismatch.json")}, vendors.Permanent, "SignatureDoesNotMatch", 401, 0},
		{"200 InvalidTimestamp", reply{body: errBody("InvalidTimestamp")}, vendors.ReSign, "InvalidTimestamp", 200, 0},
		{"200 InternalError", reply{body: errBody("InternalError.Unknown")}, vendors.Retry, "InternalError.Unknown", 200, 0},
		{"200 unknown code", reply{body: errBody("Brand.New")}, vendors.Permanent, "Brand.New", 200, 0},
		{"200 error with only CodeN", reply{body: `{"ResponseMetadata":{"Error":{"CodeN":100013,"Message":"m"}}}`}, vendors.Permanent, "100013", 200, 0},
		{"400 InvalidParameter", reply{status: 400, body: errBody("InvalidParameter.UserId")}, vendors.Permanent, "InvalidParameter.UserId", 400, 0},
		{"403 AccessDenied", reply{status: 403, body: errBody("AccessDenied.NoPolicy")}, vendors.Permanent, "AccessDenied.NoPolicy", 403, 0},
		{"500 no body", reply{status: 500}, vendors.Retry, "", 500, 0},
		{"502 html", reply{status: 502, body: "<html>bad gateway</html>"}, vendors.Retry, "", 502, 0},
		{"503 with Retry-After", reply{status: 503, header: hdr("Retry-After", "2")}, vendors.Retry, "", 503, 2 * time.Second},
		{"500 unknown code", reply{status: 500, body: errBody("Weird")}, vendors.Retry, "Weird", 500, 0},
		{"404 html", reply{status: 404, body: "<html>no</html>"}, vendors.Permanent, "", 404, 0},
		{"200 malformed json", reply{body: `{"ResponseMetadata":`}, vendors.Retry, "", 200, 0},
		{"200 empty body", reply{body: ``}, vendors.Retry, "", 200, 0},
		{"200 null", reply{body: `null`}, vendors.Retry, "", 200, 0},
		{"200 empty object", reply{body: `{}`}, vendors.Retry, "", 200, 0},
		{"200 FailedInfos user id not a number", reply{body: `{"ResponseMetadata":{},"Result":{"FailedInfos":[{"UserId":"x","Code":"59"}]}}`}, vendors.Retry, "", 200, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(int, captured) reply { return tc.rep })
			c := serve(t, f, nil)
			c.now = func() time.Time { return mustTime(t, "20240619T071306Z") }
			res, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
			ve := asVendorError(t, err)
			if ve.Class != tc.wantClass || ve.Code != tc.wantCode || ve.HTTPStatus != tc.wantStatus || ve.RetryAfter != tc.wantAfter {
				t.Errorf("error class %v code %q status %d after %v; want %v %q %d %v (%v)",
					ve.Class, ve.Code, ve.HTTPStatus, ve.RetryAfter, tc.wantClass, tc.wantCode, tc.wantStatus, tc.wantAfter, err)
			}
			if vendors.ClassOf(err) != tc.wantClass {
				t.Errorf("ClassOf = %v", vendors.ClassOf(err))
			}
			if len(res.Items) != 0 {
				t.Errorf("result %+v with a whole-call error", res)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d HTTP attempts, want exactly 1", n)
			}
		})
	}
}

func TestSendFailedInfosEdgeCases(t *testing.T) {
	body := `{"ResponseMetadata":{"RequestId":"r"},"Result":{"FailedInfos":[
		{"UserId":"10002","Code":56,"Message":"numeric code, string id"},
		{"UserId":10002,"Code":"INTERNAL_ERROR","Message":"duplicate entry, first wins"},
		{"UserId":99999,"Code":"NOT_FRIEND","Message":"not in the call"}]}}`
	f := newFixture(t, func(int, captured) reply { return reply{body: body} })
	c := serve(t, f, nil)
	res, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"}), item(1, "10003", map[string]string{"k": "v"})))
	if err != nil {
		t.Fatal(err)
	}
	want := []vendors.ItemResult{{Class: vendors.Permanent, Code: "56", Message: "numeric code, string id"}, {Class: vendors.OK}}
	if !reflect.DeepEqual(res.Items, want) {
		t.Errorf("items %+v, want %+v", res.Items, want)
	}
}

// TestSendReSignsEveryAttempt: two Sends with the injected clock moved carry
// different X-Date and Authorization, and both verify on the server.
func TestSendReSignsEveryAttempt(t *testing.T) {
	f := newFixture(t, okReply)
	c := serve(t, f, nil)
	clock := mustTime(t, "20240619T235959Z")
	c.now = func() time.Time { return clock }
	cl := call("10001", item(0, "10002", map[string]string{"k": "v"}))
	for range 2 {
		if _, err := c.Send(context.Background(), cl); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(2 * time.Second) // crosses midnight: the scope date changes too
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	d0, d1 := reqs[0].header.Get("X-Date"), reqs[1].header.Get("X-Date")
	if d0 != "20240619T235959Z" || d1 != "20240620T000001Z" {
		t.Errorf("X-Date %q then %q", d0, d1)
	}
	a0, a1 := reqs[0].header.Get("Authorization"), reqs[1].header.Get("Authorization")
	if a0 == a1 {
		t.Errorf("both attempts carry the same Authorization")
	}
	if !strings.Contains(a1, "/20240620/cn-north-1/rtc/request") {
		t.Errorf("second Authorization has a stale scope: %s", a1)
	}
	for i, r := range reqs {
		if r.sigErr != nil {
			t.Errorf("request %d: %v", i, r.sigErr)
		}
	}
}

// TestSendOneAttemptOnBrokenConnection: the server drops the connection
// after reading the request; Send reports Retry after exactly one attempt.
func TestSendOneAttemptOnBrokenConnection(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		mu.Lock()
		attempts++
		mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	cfg := validConfig()
	cfg.BaseURL = srv.URL
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
	ve := asVendorError(t, err)
	if ve.Class != vendors.Retry || ve.HTTPStatus != 0 || ve.Err == nil {
		t.Errorf("error %+v, want a retryable transport error", ve)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 {
		t.Errorf("%d attempts, want exactly 1", attempts)
	}
}

// TestSendContextCancel: a cancelled ctx ends a Send stuck on a slow server
// promptly, wrapping context.Canceled.
func TestSendContextCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := validConfig()
	cfg.BaseURL = srv.URL
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, call("10001", item(0, "10002", map[string]string{"k": "v"})))
		done <- err
	}()
	<-arrived
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		if vendors.ClassOf(err) != vendors.Retry {
			t.Errorf("class %v, want retry", vendors.ClassOf(err))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
}

// TestSendTimeout: Config.Timeout bounds one Send (fake clock).
func TestSendTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		cfg := validConfig()
		cfg.Timeout = 3 * time.Second
		c, err := New(cfg, &http.Client{Transport: handlerTransport{block}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
		if !errors.Is(err, context.DeadlineExceeded) || vendors.ClassOf(err) != vendors.Retry {
			t.Errorf("error %v, want a retryable deadline error", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Send took %v, want the 3s timeout", d)
		}
	})
}

// TestSendInMemoryReSignWithFakeClock: inside a bubble, the default clock
// is the fake one; attempts a minute apart verify and differ.
func TestSendInMemoryReSignWithFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, okReply)
		c, err := New(validConfig(), &http.Client{Transport: handlerTransport{f}})
		if err != nil {
			t.Fatal(err)
		}
		cl := call("10001", item(0, "10002", map[string]string{"k": "v"}))
		for range 2 {
			res, err := c.Send(context.Background(), cl)
			if err != nil || res.Items[0].Class != vendors.OK {
				t.Fatalf("Send = %+v, %v", res, err)
			}
			time.Sleep(time.Minute)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[0].sigErr != nil || reqs[1].sigErr != nil {
			t.Fatalf("requests %d, errs %v", len(reqs), reqs)
		}
		if reqs[0].header.Get("X-Date") == reqs[1].header.Get("X-Date") {
			t.Errorf("same X-Date on two attempts a minute apart")
		}
	})
}

func TestNoSecretInErrors(t *testing.T) {
	// A hostile gateway echoes the secret and the Authorization header.
	echo := func(r captured) string {
		return strings.NewReplacer(`"`, ``, `\`, ``).Replace(vecSK + " " + r.header.Get("Authorization"))
	}
	tests := []struct {
		name    string
		respond func(int, captured) reply
	}{
		{"gateway error message", func(_ int, r captured) reply {
			return reply{status: 401, body: `{"ResponseMetadata":{"Error":{"Code":"SignatureDoesNotMatch","Message":"` + echo(r) + `"}}}`}
		}},
		{"200 error message", func(_ int, r captured) reply {
			return reply{body: `{"ResponseMetadata":{"Error":{"Code":"InternalError","Message":"` + echo(r) + `"}}}`}
		}},
		{"error code", func(_ int, r captured) reply {
			return reply{status: 400, body: `{"ResponseMetadata":{"Error":{"Code":"` + echo(r) + `"}}}`}
		}},
		{"failed info code", func(_ int, r captured) reply {
			return reply{body: `{"ResponseMetadata":{},"Result":{"FailedInfos":[{"UserId":10002,"Code":"` + echo(r) + `"}]}}`}
		}},
		{"non-json body", func(_ int, r captured) reply { return reply{status: 500, body: echo(r)} }},
		{"failed info message", func(_ int, r captured) reply {
			return reply{body: `{"ResponseMetadata":{},"Result":{"FailedInfos":[{"UserId":10002,"Code":"NOT_FRIEND","Message":"` + echo(r) + `"}]}}`}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var auth string
			f := newFixture(t, func(n int, r captured) reply {
				auth = r.header.Get("Authorization")
				return tc.respond(n, r)
			})
			c := serve(t, f, nil)
			res, err := c.Send(context.Background(), call("10001", item(0, "10002", map[string]string{"k": "v"})))
			var texts []string
			if err != nil {
				texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			}
			for _, it := range res.Items {
				texts = append(texts, it.Message, it.Code)
			}
			if len(texts) == 0 || auth == "" {
				t.Fatal("nothing to check")
			}
			_, sig, _ := strings.Cut(auth, "Signature=")
			for _, s := range texts {
				for _, secret := range []string{vecSK, auth, sig} {
					if strings.Contains(s, secret) {
						t.Errorf("%q leaks %q", s, secret)
					}
				}
			}
			if !strings.Contains(strings.Join(texts, " "), "***") {
				t.Errorf("no masked text in %q: was the echo read at all?", texts)
			}
		})
	}
}
