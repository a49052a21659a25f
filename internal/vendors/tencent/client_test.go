package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

const (
	testKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	testAppID = 1400000000
	testAdmin = "administrator"
)

// t0 is the injected clock's start.
var t0 = time.Unix(1700000000, 0)

// clock is a settable time source for Client.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// seen is one request the fake server received.
type seen struct {
	method, path, rawQuery, contentType string
	query                               url.Values
	body                                []byte
}

// fakeServer is a friend_update endpoint whose answers the test scripts.
type fakeServer struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []seen
	reply func(w http.ResponseWriter, r *http.Request, n int) // n counts requests from 0
}

func newFake(t *testing.T, prefix string, reply func(w http.ResponseWriter, r *http.Request, n int)) *fakeServer {
	t.Helper()
	f := &fakeServer{reply: reply}
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/v4/sns/friend_update", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.URL.Query(), body})
		f.mu.Unlock()
		f.reply(w, r, n)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// replyJSON answers every request with status and body.
func replyJSON(status int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func okFor(tos ...string) string {
	var items []string
	for _, to := range tos {
		items = append(items, `{"To_Account":"`+to+`","ResultCode":0,"ResultInfo":""}`)
	}
	return `{"ResultItem":[` + strings.Join(items, ",") + `],"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ErrorDisplay":""}`
}

func failWith(code int, info string) string {
	return fmt.Sprintf(`{"ActionStatus":"FAIL","ErrorCode":%d,"ErrorInfo":%q,"ErrorDisplay":""}`, code, info)
}

func testConfig(baseURL string) Config {
	return Config{BaseURL: baseURL, SDKAppID: testAppID, Identifier: testAdmin, Key: testKey}
}

// newTestClient returns a client for baseURL on the injected clock.
func newTestClient(t *testing.T, cfg Config, hc *http.Client) (*Client, *clock) {
	t.Helper()
	c, err := New(cfg, hc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	clk := &clock{t: t0}
	c.now = clk.Now
	return c, clk
}

func str(s string) *string                 { return &s }
func strs(ss ...string) *[]string          { return &ss }
func remarkItem(to, r string) vendors.Item { return vendors.Item{To: to, Remark: str(r)} }

func call(from string, items ...vendors.Item) vendors.Call {
	return vendors.Call{API: API, Budget: "tencent:1400000000:friend_update", From: from, Items: items}
}

func readJSON(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAny(t, b)
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vendorError asserts err is a *vendors.Error and returns it.
func vendorError(t *testing.T, err error) *vendors.Error {
	t.Helper()
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *vendors.Error", err, err)
	}
	if ve.Vendor != "tencent" || ve.API != "friend_update" {
		t.Fatalf("error names vendor %q api %q", ve.Vendor, ve.API)
	}
	return ve
}

// The doc's batch sample: id1 applied, id2 over the group limit (30011),
// id3 in another SDKAppID (30002); the request body equals the doc's batch
// request sample.
func TestSendBatchPartialFailure(t *testing.T) {
	f := newFake(t, "", replyJSON(200, mustRead(t, "batch_response.json")))
	c, _ := newTestClient(t, testConfig(f.URL), nil)
	res, err := c.Send(context.Background(), call("id",
		vendors.Item{Ref: 7, To: "id1", Remark: str("remark1")},
		vendors.Item{Ref: 8, To: "id2", Remark: str("remark2"), Groups: strs("group1", "group2")},
		vendors.Item{Ref: 9, To: "id3", Remark: str("remark3"), Groups: strs("group3"), Attrs: map[string]string{"Test": "test"}},
	))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []vendors.ItemResult{
		{Class: vendors.OK, Code: "0"},
		{Class: vendors.Permanent, Code: "30011", Message: "friend-group count at system limit: Err_SNS_FriendUpdate_Group_Num_Exceed_Threshold"},
		{Class: vendors.Permanent, Code: "30002", Message: "sdkappid mismatch: Err_SNS_FriendImport_SdkAppId_Illegal"},
	}
	if !reflect.DeepEqual(res.Items, want) {
		t.Fatalf("results\n got %+v\nwant %+v", res.Items, want)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if got, want := decodeAny(t, reqs[0].body), readJSON(t, "batch_request.json"); !reflect.DeepEqual(got, want) {
		t.Fatalf("request body\n got %s\nwant the doc's batch sample %v", reqs[0].body, want)
	}
}

func TestSendMatchesResultsByToAccount(t *testing.T) {
	tests := []struct {
		name  string
		items []vendors.Item
		body  string
		want  []vendors.ItemResult
	}{
		{
			name:  "results in another order",
			items: []vendors.Item{remarkItem("a", "1"), remarkItem("b", "2"), remarkItem("c", "3")},
			body:  `{"ResultItem":[{"To_Account":"c","ResultCode":30008,"ResultInfo":"conflict"},{"To_Account":"a","ResultCode":0},{"To_Account":"b","ResultCode":30001,"ResultInfo":""}],"ActionStatus":"OK","ErrorCode":0}`,
			want: []vendors.ItemResult{
				{Class: vendors.OK, Code: "0"},
				{Class: vendors.Permanent, Code: "30001", Message: lookup(30001).text},
				{Class: vendors.Retry, Code: "30008", Message: "write conflict from concurrent writes: conflict"},
			},
		},
		{
			name:  "item without a result",
			items: []vendors.Item{remarkItem("a", "1"), remarkItem("b", "2")},
			body:  okFor("a", "stranger"),
			want: []vendors.ItemResult{
				{Class: vendors.OK, Code: "0"},
				{Class: vendors.Retry, Message: "no result for item"},
			},
		},
		{
			name:  "no ResultItem at all",
			items: []vendors.Item{remarkItem("a", "1")},
			body:  `{"ActionStatus":"OK","ErrorCode":0}`,
			want:  []vendors.ItemResult{{Class: vendors.Retry, Message: "no result for item"}},
		},
		{
			name:  "unknown item code",
			items: []vendors.Item{remarkItem("a", "1")},
			body:  `{"ResultItem":[{"To_Account":"a","ResultCode":31999,"ResultInfo":"new thing"}],"ActionStatus":"OK","ErrorCode":0}`,
			want:  []vendors.ItemResult{{Class: vendors.Permanent, Code: "31999", Message: "unknown code: new thing"}},
		},
		{
			name:  "call failed with partial ResultItem",
			items: []vendors.Item{remarkItem("a", "1"), remarkItem("b", "2")},
			body:  `{"ResultItem":[{"To_Account":"a","ResultCode":0}],"ActionStatus":"FAIL","ErrorCode":30006,"ErrorInfo":"busy"}`,
			want: []vendors.ItemResult{
				{Class: vendors.OK, Code: "0"},
				{Class: vendors.Retry, Code: "30006", Message: "server internal error, retry: busy"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", replyJSON(200, tc.body))
			c, _ := newTestClient(t, testConfig(f.URL), nil)
			res, err := c.Send(context.Background(), call("me", tc.items...))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !reflect.DeepEqual(res.Items, tc.want) {
				t.Fatalf("results\n got %+v\nwant %+v", res.Items, tc.want)
			}
		})
	}
}

func TestSendWholeCallFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		class  vendors.Class
		code   string
		after  time.Duration
	}{
		{name: "30008 write conflict", status: 200, body: failWith(30008, "write conflict"), class: vendors.Retry, code: "30008"},
		{name: "30006 ErrorCode without ActionStatus", status: 200, body: `{"ErrorCode":30006}`, class: vendors.Retry, code: "30006"},
		{name: "60007 rest frequency", status: 200, body: failWith(60007, "freq limit"), class: vendors.Throttled, code: "60007"},
		{name: "60011 sdkappid frequency", status: 200, body: failWith(60011, ""), class: vendors.Throttled, code: "60011"},
		{name: "70050 sig failed and frequency limited", status: 200, body: failWith(70050, ""), class: vendors.Throttled, code: "70050", after: time.Minute},
		{name: "70001 usersig expired", status: 200, body: failWith(70001, "sig expired"), class: vendors.ReSign, code: "70001"},
		{name: "60003 bad json", status: 200, body: failWith(60003, ""), class: vendors.Permanent, code: "60003"},
		{name: "unknown code", status: 200, body: failWith(12345, ""), class: vendors.Permanent, code: "12345"},
		{name: "FAIL without a code", status: 200, body: `{"ActionStatus":"FAIL","ErrorCode":0}`, class: vendors.Retry},
		{name: "malformed json", status: 200, body: `{"ResultItem":[{"To_Account":`, class: vendors.Retry},
		{name: "empty body", status: 200, body: ``, class: vendors.Retry},
		{name: "html page", status: 200, body: `<html>oops</html>`, class: vendors.Retry},
		{name: "wrong types", status: 200, body: `{"ErrorCode":"30008"}`, class: vendors.Retry},
		{name: "502 gateway", status: 502, body: `<html>bad gateway</html>`, class: vendors.Retry},
		{name: "500 with body code", status: 500, body: failWith(30003, ""), class: vendors.Retry, code: "30003"},
		{name: "503 with retry-after", status: 503, header: map[string]string{"Retry-After": "4"}, class: vendors.Retry, after: 4 * time.Second},
		{name: "429 retry-after seconds", status: 429, header: map[string]string{"Retry-After": "7"}, class: vendors.Throttled, after: 7 * time.Second},
		{name: "429 retry-after date", status: 429, header: map[string]string{"Retry-After": t0.Add(90 * time.Second).UTC().Format(http.TimeFormat)}, class: vendors.Throttled, after: 90 * time.Second},
		{name: "429 retry-after huge", status: 429, header: map[string]string{"Retry-After": "99999999999999"}, class: vendors.Throttled, after: time.Hour},
		{name: "429 without header", status: 429, class: vendors.Throttled},
		{name: "404 no body", status: 404, body: "not found", class: vendors.Permanent},
		{name: "403 with ReSign code", status: 403, body: failWith(70001, ""), class: vendors.ReSign, code: "70001"},
		{name: "400 with retry code", status: 400, body: failWith(60008, ""), class: vendors.Retry, code: "60008"},
		{name: "302 not followed", status: 302, header: map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, class: vendors.Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", func(w http.ResponseWriter, _ *http.Request, _ int) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			c, _ := newTestClient(t, testConfig(f.URL), nil)
			res, err := c.Send(context.Background(), call("me", remarkItem("a", "x"), remarkItem("b", "y")))
			if err == nil {
				t.Fatalf("Send = %+v, nil error; want a whole-call error", res)
			}
			if res.Items != nil {
				t.Fatalf("Send returned items %+v with a whole-call error", res.Items)
			}
			ve := vendorError(t, err)
			if ve.Class != tc.class || ve.Code != tc.code || ve.RetryAfter != tc.after || ve.HTTPStatus != tc.status {
				t.Fatalf("error %+v: class %s code %q after %s status %d; want %s %q %s %d",
					ve, ve.Class, ve.Code, ve.RetryAfter, ve.HTTPStatus, tc.class, tc.code, tc.after, tc.status)
			}
			if vendors.ClassOf(err) != tc.class {
				t.Fatalf("ClassOf = %s, want %s", vendors.ClassOf(err), tc.class)
			}
			if n := len(f.requests()); n != 1 {
				t.Fatalf("%d HTTP attempts, want exactly 1", n)
			}
		})
	}
}

func TestSendTransportErrorIsRetry(t *testing.T) {
	f := newFake(t, "", replyJSON(200, okFor("a")))
	base := f.URL
	f.Close() // connection refused from now on
	c, _ := newTestClient(t, testConfig(base), nil)
	_, err := c.Send(context.Background(), call("me", remarkItem("a", "x")))
	ve := vendorError(t, err)
	if ve.Class != vendors.Retry || ve.HTTPStatus != 0 || ve.Err == nil {
		t.Fatalf("transport error %+v: want class retry, no status, a cause", ve)
	}
}

// decodedSig returns the usersig a request carried, after checking it
// verifies under the test key.
func decodedSig(t *testing.T, r seen) (string, UserSigDoc) {
	t.Helper()
	sig := r.query.Get("usersig")
	doc, err := DecodeUserSig(sig)
	if err != nil {
		t.Fatalf("request usersig does not decode: %v", err)
	}
	if SigOf(testKey, doc) != doc.Sig {
		t.Fatal("request usersig HMAC does not verify under the key")
	}
	return sig, doc
}

func TestSendRequestShape(t *testing.T) {
	f := newFake(t, "", replyJSON(200, okFor("id1", "id2")))
	c, _ := newTestClient(t, testConfig(f.URL), nil)
	var noGroups []string
	items := []vendors.Item{
		{To: "id1", Remark: str("remark1"), Groups: strs("group1", "group2"), Attrs: map[string]string{"Test": "test", "Level": "<3>&"}},
		{To: "id2", Remark: str(""), Groups: &noGroups, Attrs: map[string]string{"Test": ""}},
	}
	for range 2 {
		if _, err := c.Send(context.Background(), call("id", items...)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	reqs := f.requests()
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/v4/sns/friend_update" || r.contentType != "application/json" {
		t.Fatalf("request %s %s (%s), want POST /v4/sns/friend_update (application/json)", r.method, r.path, r.contentType)
	}
	if !strings.HasPrefix(r.rawQuery, "sdkappid=1400000000&identifier=administrator&usersig=") {
		t.Fatalf("query %q does not start with sdkappid, identifier, usersig", r.rawQuery)
	}
	if got := r.query.Get("contenttype"); got != "json" {
		t.Fatalf("contenttype = %q, want json", got)
	}
	if len(r.query) != 5 {
		t.Fatalf("query has %d parameters (%v), want 5", len(r.query), r.query)
	}
	_, doc := decodedSig(t, r)
	if doc.Identifier != testAdmin || doc.SDKAppID != testAppID || doc.Expire != 86400 || doc.Time != t0.Unix() {
		t.Fatalf("usersig doc %+v: want identifier %s, sdkappid %d, expire 86400, time %d", doc, testAdmin, testAppID, t0.Unix())
	}
	rand0, err0 := strconv.ParseUint(reqs[0].query.Get("random"), 10, 32)
	rand1, err1 := strconv.ParseUint(reqs[1].query.Get("random"), 10, 32)
	if err0 != nil || err1 != nil {
		t.Fatalf("random is not a uint32: %q, %q", reqs[0].query.Get("random"), reqs[1].query.Get("random"))
	}
	if rand0 == rand1 {
		t.Fatalf("random repeated across requests: %d", rand0)
	}
	want := `{"From_Account":"id","UpdateItem":[` +
		`{"To_Account":"id1","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"remark1"},{"Tag":"Tag_SNS_IM_Group","Value":["group1","group2"]},` +
		`{"Tag":"Tag_SNS_Custom_Level","Value":"<3>&"},{"Tag":"Tag_SNS_Custom_Test","Value":"test"}]},` +
		`{"To_Account":"id2","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":""},{"Tag":"Tag_SNS_IM_Group","Value":[]},{"Tag":"Tag_SNS_Custom_Test","Value":""}]}]}`
	if string(r.body) != want {
		t.Fatalf("body\n got %s\nwant %s", r.body, want)
	}
}

// The doc's basic and complete request samples come out of the matching
// items.
func TestSendBodyMatchesDocSamples(t *testing.T) {
	tests := []struct {
		name, sample string
		item         vendors.Item
	}{
		{"basic form", "basic_request.json", vendors.Item{To: "id1", Remark: str("remark1")}},
		{"complete form", "complete_request.json", vendors.Item{To: "id1", Remark: str("remark1"), Groups: strs("group1", "group2"), Attrs: map[string]string{"Test": "test"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", replyJSON(200, mustRead(t, "basic_response.json")))
			c, _ := newTestClient(t, testConfig(f.URL), nil)
			res, err := c.Send(context.Background(), call("id", tc.item))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res.Items) != 1 || res.Items[0].Class != vendors.OK {
				t.Fatalf("results %+v, want one OK", res.Items)
			}
			if got, want := decodeAny(t, f.requests()[0].body), readJSON(t, tc.sample); !reflect.DeepEqual(got, want) {
				t.Fatalf("body %s differs from the doc sample %v", f.requests()[0].body, want)
			}
		})
	}
}

func TestUserSigReusedWhileFreshRegeneratedWhenStale(t *testing.T) {
	f := newFake(t, "", replyJSON(200, okFor("a")))
	c, clk := newTestClient(t, testConfig(f.URL), nil) // SigTTL 24h
	steps := []struct {
		advance time.Duration
		newSig  bool
	}{
		{0, true},                          // first Send signs
		{time.Hour, false},                 // 23h left
		{11 * time.Hour, false},            // exactly half (12h) left: still fresh
		{time.Second, true},                // less than half left: re-sign
		{12 * time.Hour, false},            // half of the new sig left
		{12*time.Hour + time.Second, true}, // stale again
	}
	var prev string
	for i, s := range steps {
		clk.Add(s.advance)
		if _, err := c.Send(context.Background(), call("me", remarkItem("a", "x"))); err != nil {
			t.Fatalf("step %d: Send: %v", i, err)
		}
		reqs := f.requests()
		sig, doc := decodedSig(t, reqs[len(reqs)-1])
		if got := sig != prev; got != s.newSig {
			t.Fatalf("step %d (+%s): new usersig = %t, want %t", i, s.advance, got, s.newSig)
		}
		if s.newSig && doc.Time != clk.Now().Unix() {
			t.Fatalf("step %d: new usersig TLS.time %d, want now %d", i, doc.Time, clk.Now().Unix())
		}
		prev = sig
	}
}

func TestReSignDropsCachedSig(t *testing.T) {
	tests := []struct {
		name   string
		first  string
		class  vendors.Class
		isItem bool
	}{
		{"70001 whole call", failWith(70001, "expired"), vendors.ReSign, false},
		{"60004 whole call", failWith(60004, ""), vendors.ReSign, false},
		{"70050 throttled and drops sig", failWith(70050, ""), vendors.Throttled, false},
		{"70003 on an item", `{"ResultItem":[{"To_Account":"a","ResultCode":70003}],"ActionStatus":"OK","ErrorCode":0}`, vendors.ReSign, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					io.WriteString(w, tc.first)
					return
				}
				io.WriteString(w, okFor("a"))
			})
			c, clk := newTestClient(t, testConfig(f.URL), nil)
			res, err := c.Send(context.Background(), call("me", remarkItem("a", "x")))
			if tc.isItem {
				if err != nil || res.Items[0].Class != tc.class {
					t.Fatalf("first Send = %+v, %v; want item class %s", res, err, tc.class)
				}
			} else if got := vendors.ClassOf(err); got != tc.class {
				t.Fatalf("first Send class %s (%v), want %s", got, err, tc.class)
			}
			clk.Add(time.Second) // still fresh by age: only the drop can force a new sig
			if _, err := c.Send(context.Background(), call("me", remarkItem("a", "x"))); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			reqs := f.requests()
			sig0, _ := decodedSig(t, reqs[0])
			sig1, doc1 := decodedSig(t, reqs[1])
			if sig0 == sig1 {
				t.Fatal("the Send after a re-sign code reused the dropped usersig")
			}
			if doc1.Time != clk.Now().Unix() {
				t.Fatalf("new usersig TLS.time %d, want %d", doc1.Time, clk.Now().Unix())
			}
		})
	}
}

func TestNonSigCodesKeepCachedSig(t *testing.T) {
	f := newFake(t, "", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			io.WriteString(w, failWith(60007, ""))
			return
		}
		io.WriteString(w, okFor("a"))
	})
	c, clk := newTestClient(t, testConfig(f.URL), nil)
	c.Send(context.Background(), call("me", remarkItem("a", "x")))
	clk.Add(time.Second)
	c.Send(context.Background(), call("me", remarkItem("a", "x")))
	reqs := f.requests()
	if s0, s1 := reqs[0].query.Get("usersig"), reqs[1].query.Get("usersig"); s0 != s1 {
		t.Fatal("a throttle code (60007) dropped the cached usersig")
	}
}

func TestConcurrentSendsShareOneSig(t *testing.T) {
	f := newFake(t, "", replyJSON(200, okFor("a")))
	c, _ := newTestClient(t, testConfig(f.URL), nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := c.Send(context.Background(), call("me", remarkItem("a", "x"))); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	sigs := map[string]bool{}
	for _, r := range f.requests() {
		sigs[r.query.Get("usersig")] = true
	}
	if len(sigs) != 1 {
		t.Fatalf("16 concurrent Sends used %d usersigs, want 1", len(sigs))
	}
}

func TestSendCancelReturnsPromptly(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	f := newFake(t, "", func(w http.ResponseWriter, r *http.Request, _ int) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release) // runs before f.Close (registered earlier in Cleanup)
	c, _ := newTestClient(t, testConfig(f.URL), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, call("me", remarkItem("a", "x")))
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done // the handler is still blocked on release: Send did not wait for it
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send after cancel = %v, want an error wrapping context.Canceled", err)
	}
	if vendorError(t, err).Class != vendors.Retry {
		t.Fatalf("cancelled Send class %s, want retry", vendors.ClassOf(err))
	}
}

// blockingTransport answers nothing until the request's context ends.
type blockingTransport struct{ calls int }

func (b *blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls++
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func TestSendTimeoutIsConfigTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &blockingTransport{}
		cfg := testConfig("https://console.tim.qq.com")
		cfg.Timeout = 3 * time.Second
		c, err := New(cfg, &http.Client{Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.Send(context.Background(), call("me", remarkItem("a", "x")))
		if elapsed := time.Since(start); elapsed != 3*time.Second {
			t.Fatalf("Send returned after %s, want the 3s timeout", elapsed)
		}
		if !errors.Is(err, context.DeadlineExceeded) || vendors.ClassOf(err) != vendors.Retry {
			t.Fatalf("Send = %v, want a retry error wrapping DeadlineExceeded", err)
		}
		if tr.calls != 1 {
			t.Fatalf("%d round trips, want 1", tr.calls)
		}
	})
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	for _, suffix := range []string{"/tencent", "/tencent/"} {
		t.Run(suffix, func(t *testing.T) {
			f := newFake(t, "/tencent", replyJSON(200, okFor("a")))
			c, _ := newTestClient(t, testConfig(f.URL+suffix), nil)
			res, err := c.Send(context.Background(), call("me", remarkItem("a", "x")))
			if err != nil || len(res.Items) != 1 || res.Items[0].Class != vendors.OK {
				t.Fatalf("Send = %+v, %v; want one OK item", res, err)
			}
			if got := f.requests()[0].path; got != "/tencent/v4/sns/friend_update" {
				t.Fatalf("path %q", got)
			}
		})
	}
}

func TestNoSecretInErrors(t *testing.T) {
	// echo answers with the request URL (which holds the usersig) and the
	// key in every text field a server controls.
	echo := func(status int, shape string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			leak := "sig=" + r.URL.Query().Get("usersig") + " key=" + testKey + " url=" + r.URL.String()
			w.WriteHeader(status)
			switch shape {
			case "whole":
				io.WriteString(w, failWith(70003, leak))
			case "item":
				fmt.Fprintf(w, `{"ResultItem":[{"To_Account":"a","ResultCode":30001,"ResultInfo":%q}],"ActionStatus":"OK","ErrorCode":0}`, leak)
			default:
				io.WriteString(w, leak)
			}
		}
	}
	closed := newFake(t, "", replyJSON(200, okFor("a")))
	closed.Close()
	tests := []struct {
		name  string
		base  func(t *testing.T) string
		block bool
	}{
		{name: "whole-call ErrorInfo echo", base: func(t *testing.T) string { return newFake(t, "", echo(200, "whole")).URL }},
		{name: "item ResultInfo echo", base: func(t *testing.T) string { return newFake(t, "", echo(200, "item")).URL }},
		{name: "5xx body echo", base: func(t *testing.T) string { return newFake(t, "", echo(500, "raw")).URL }},
		{name: "4xx body code echo", base: func(t *testing.T) string { return newFake(t, "", echo(403, "whole")).URL }},
		{name: "malformed body echo", base: func(t *testing.T) string { return newFake(t, "", echo(200, "raw")).URL }},
		{name: "connection refused", base: func(t *testing.T) string { return closed.URL }},
		{name: "cancelled", base: func(t *testing.T) string { return closed.URL }, block: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestClient(t, testConfig(tc.base(t)), nil)
			ctx := context.Background()
			if tc.block {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				ctx = cctx
			}
			res, sendErr := c.Send(ctx, call("me", remarkItem("a", "x")))
			// The clock is pinned, so this is the usersig every request used.
			sig, err := GenUserSig(testAppID, testKey, testAdmin, 24*time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			if sendErr != nil {
				texts = append(texts, sendErr.Error(), fmt.Sprintf("%+v", sendErr), fmt.Sprintf("%#v", sendErr))
				if ve := vendorError(t, sendErr); ve.Err != nil {
					texts = append(texts, ve.Err.Error())
				}
			}
			for _, it := range res.Items {
				texts = append(texts, it.Message)
			}
			if len(texts) == 0 {
				t.Fatal("scenario produced no error or message to check")
			}
			// A cut secret is still a leak: any 16-byte window of the key
			// and any 32-byte window of the usersig count.
			var secrets []string
			for i := 0; i+16 <= len(testKey); i++ {
				secrets = append(secrets, testKey[i:i+16])
			}
			for i := 0; i+32 <= len(sig); i++ {
				secrets = append(secrets, sig[i:i+32])
			}
			for _, s := range texts {
				for _, secret := range secrets {
					if strings.Contains(s, secret) {
						t.Fatalf("text leaks a secret (%q): %s", secret, s)
					}
				}
			}
		})
	}
}

func TestConfigStringMasksKey(t *testing.T) {
	cfg := testConfig("https://adminapisgp.im.qcloud.com")
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(s, testKey) || strings.Contains(s, testKey[:16]) {
			t.Fatalf("config text leaks the key: %s", s)
		}
		if !strings.Contains(s, "[redacted]") || !strings.Contains(s, "1400000000") {
			t.Fatalf("config text %q lacks the masked key or the sdkappid", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"explicit max batch 1", func(c *Config) { c.MaxBatch = 1 }, ""},
		{"base url with prefix", func(c *Config) { c.BaseURL = "http://127.0.0.1:8090/tencent" }, ""},
		{"no sdkappid", func(c *Config) { c.SDKAppID = 0 }, "SDKAppID"},
		{"no identifier", func(c *Config) { c.Identifier = "" }, "Identifier"},
		{"long identifier", func(c *Config) { c.Identifier = strings.Repeat("a", 33) }, "Identifier"},
		{"no key", func(c *Config) { c.Key = "" }, "Key"},
		{"max batch 1001", func(c *Config) { c.MaxBatch = 1001 }, "MaxBatch"},
		{"max batch negative", func(c *Config) { c.MaxBatch = -1 }, "MaxBatch"},
		{"sig ttl too short", func(c *Config) { c.SigTTL = 30 * time.Second }, "SigTTL"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"ftp scheme", func(c *Config) { c.BaseURL = "ftp://console.tim.qq.com" }, "scheme"},
		{"no host", func(c *Config) { c.BaseURL = "https://" }, "host"},
		{"query", func(c *Config) { c.BaseURL = "https://console.tim.qq.com?x=1" }, "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("")
			tc.mutate(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg, nil)
			if tc.wantErr == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v; want valid", err, newErr)
				}
				return
			}
			if err == nil || newErr == nil {
				t.Fatalf("Validate = %v, New = %v; want an error naming %s", err, newErr, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "tencent: config: ") {
				t.Fatalf("error %q does not name %s with the package prefix", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{SDKAppID: testAppID, Identifier: testAdmin, Key: testKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://console.tim.qq.com/v4/sns/friend_update" || c.cfg.SigTTL != 24*time.Hour ||
		c.cfg.MaxBatch != 1000 || c.cfg.Timeout != 10*time.Second {
		t.Fatalf("defaults not applied: endpoint %q, %v", c.endpoint, c.cfg)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost < 64 {
		t.Fatalf("default transport %T does not keep ≥64 idle connections per host", c.hc.Transport)
	}
	if c.Vendor() != "tencent" {
		t.Fatalf("Vendor() = %q", c.Vendor())
	}
	own := &http.Client{}
	if c2, _ := New(testConfig(""), own); c2.hc != own {
		t.Fatal("New ignored the given *http.Client")
	}
}

func TestSendRejectsCallsWithoutHTTP(t *testing.T) {
	f := newFake(t, "", replyJSON(200, okFor("a")))
	cfg := testConfig(f.URL)
	cfg.MaxBatch = 2
	c, _ := newTestClient(t, cfg, nil)
	tests := []struct {
		name string
		call vendors.Call
	}{
		{"no items", call("me")},
		{"over MaxBatch", call("me", remarkItem("a", "1"), remarkItem("b", "2"), remarkItem("c", "3"))},
		{"other api", vendors.Call{API: "friend_add", From: "me", Items: []vendors.Item{remarkItem("a", "1")}}},
		{"no from", call("", remarkItem("a", "1"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Send(context.Background(), tc.call)
			if ve := vendorError(t, err); ve.Class != vendors.Permanent {
				t.Fatalf("class %s, want permanent", ve.Class)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d HTTP requests for rejected calls, want 0", n)
	}
}

func TestSplit(t *testing.T) {
	items := func(n int) []vendors.Item {
		out := make([]vendors.Item, n)
		for i := range out {
			out[i] = vendors.Item{Ref: 100 + i, To: "u" + strconv.Itoa(i), Remark: str("r")}
		}
		return out
	}
	tests := []struct {
		name     string
		maxBatch int
		n        int
		sizes    []int
	}{
		{"empty", 0, 0, nil},
		{"one", 0, 1, []int{1}},
		{"exactly 1000", 0, 1000, []int{1000}},
		{"1001", 0, 1001, []int{1000, 1}},
		{"2500", 0, 2500, []int{1000, 1000, 500}},
		{"small MaxBatch", 3, 7, []int{3, 3, 1}},
		{"MaxBatch 1", 1, 3, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("")
			cfg.MaxBatch = tc.maxBatch
			c, _ := newTestClient(t, cfg, nil)
			in := items(tc.n)
			calls := c.Split("alice", in)
			if len(calls) != len(tc.sizes) {
				t.Fatalf("%d calls, want %d", len(calls), len(tc.sizes))
			}
			next := 0
			for i, cl := range calls {
				if len(cl.Items) != tc.sizes[i] {
					t.Fatalf("call %d has %d items, want %d", i, len(cl.Items), tc.sizes[i])
				}
				if cl.API != "friend_update" || cl.Budget != "tencent:1400000000:friend_update" || cl.From != "alice" {
					t.Fatalf("call %d: API %q Budget %q From %q", i, cl.API, cl.Budget, cl.From)
				}
				for _, it := range cl.Items {
					if it.Ref != 100+next || it.To != in[next].To {
						t.Fatalf("item %d out of order: ref %d to %q", next, it.Ref, it.To)
					}
					next++
				}
			}
			if next != tc.n {
				t.Fatalf("calls hold %d items, want %d", next, tc.n)
			}
			if len(calls) > 0 {
				calls[0].Items[0].To = "changed"
				if in[0].To == "changed" {
					t.Fatal("Split's calls alias the caller's items")
				}
			}
		})
	}
}

// The request body never depends on map order.
func TestEncodeRequestDeterministic(t *testing.T) {
	attrs := map[string]string{}
	for i := range 20 {
		attrs["k"+strconv.Itoa(i)] = "v"
	}
	cl := call("me", vendors.Item{To: "a", Attrs: attrs})
	first, err := encodeRequest(cl)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, _ := encodeRequest(cl)
		if !bytes.Equal(b, first) {
			t.Fatalf("body changed between encodings:\n%s\n%s", first, b)
		}
	}
}
