package zego

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// Credentials of the official signature vector (VENDORS.md C.1).
const (
	testAppID  = 12345
	testSecret = "9193cc662a4c0ec135ec71fb57194b38"
	testNonce  = "4fd24687296dd9f3"
	testTS     = 1615186943
	testSig    = "43e5cfcca828314675f91b001390566a"
)

// seedSample is the sample response of seeds/003 (UpdateFriendsAlias).
const seedSample = `{
    "Code": 0,
    "Message": "success",
    "RequestId": "343649807833778782",
    "ErrorList": [
        {
            "UserId": "aaa",
            "SubCode": 660000012,
            "SubMessage": "user length limit"
        },
        {
            "UserId": "bbb",
            "SubCode": 660000013,
            "SubMessage": "this is a demo"
        }
    ]
}`

// seen is one request the fixture accepted.
type seen struct {
	Path     string
	RawQuery string
	Query    url.Values
	Body     []byte
}

type reply struct {
	status int
	header http.Header
	body   string
}

// fixture is a ZIM server API stand-in: it checks the common parameters
// and recomputes the signature from its own copy of the secret, records
// the request, and answers with reply.
type fixture struct {
	t      *testing.T
	secret string
	prefix string // path prefix of BaseURL, "" for none
	reply  func(s seen) reply
	// reject reports a request the fixture refused; nil fails the test.
	reject func(problems string)

	mu   sync.Mutex
	reqs []seen
}

var nonceRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func newFixture(t *testing.T, reply func(seen) reply) *fixture {
	t.Helper()
	return &fixture{t: t, secret: testSecret, reply: reply}
}

func (f *fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	var problems []string
	if r.Method != http.MethodPost {
		problems = append(problems, "method "+r.Method)
	}
	if r.URL.Path != f.prefix+"/" {
		problems = append(problems, "path "+r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "content type "+ct)
	}
	for _, k := range []string{"Action", "AppId", "SignatureNonce", "Timestamp", "SignatureVersion", "Signature"} {
		if len(q[k]) != 1 {
			problems = append(problems, "query "+k+" appears "+strconv.Itoa(len(q[k]))+" times")
		}
	}
	if _, err := strconv.ParseUint(q.Get("AppId"), 10, 32); err != nil {
		problems = append(problems, "AppId "+q.Get("AppId"))
	}
	if _, err := strconv.ParseInt(q.Get("Timestamp"), 10, 64); err != nil {
		problems = append(problems, "Timestamp "+q.Get("Timestamp"))
	}
	if !nonceRE.MatchString(q.Get("SignatureNonce")) {
		problems = append(problems, "nonce "+q.Get("SignatureNonce"))
	}
	if q.Get("SignatureVersion") != "2.0" {
		problems = append(problems, "SignatureVersion "+q.Get("SignatureVersion"))
	}
	want := md5hex(q.Get("AppId") + q.Get("SignatureNonce") + f.secret + q.Get("Timestamp"))
	if q.Get("Signature") != want {
		problems = append(problems, "signature mismatch")
	}
	if !json.Valid(body) {
		problems = append(problems, "body is not JSON")
	}
	if len(problems) > 0 {
		if f.reject != nil {
			f.reject(strings.Join(problems, "; "))
		} else {
			f.t.Errorf("fixture rejected request: %s", strings.Join(problems, "; "))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"Code":100000005,"Message":"signature wrong"}`)
		return
	}
	s := seen{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: q, Body: body}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()
	rp := f.reply(s)
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	if rp.status == 0 {
		rp.status = http.StatusOK
	}
	w.WriteHeader(rp.status)
	_, _ = io.WriteString(w, rp.body)
}

func (f *fixture) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// memTransport reaches a handler without sockets, so it works inside a
// synctest bubble; it returns when the request's context ends.
type memTransport struct {
	h     http.Handler
	mu    sync.Mutex
	trips int
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.trips++
	m.mu.Unlock()
	done := make(chan *http.Response, 1)
	go func() {
		rec := httptest.NewRecorder()
		m.h.ServeHTTP(rec, r)
		done <- rec.Result()
	}()
	select {
	case resp := <-done:
		return resp, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

func (m *memTransport) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trips
}

func testConfig() Config {
	return Config{BaseURL: "https://zim-api.example.test", AppID: testAppID, ServerSecret: testSecret}
}

// newTestClient returns a Client wired to f through an in-memory transport.
func newTestClient(t *testing.T, cfg Config, h http.Handler) (*Client, *memTransport) {
	t.Helper()
	mt := &memTransport{h: h}
	c, err := New(cfg, &http.Client{Transport: mt})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, mt
}

func str(s string) *string { return &s }

func ok(rp string) func(seen) reply { return func(seen) reply { return reply{body: rp} } }

func aliasCall(tos ...string) vendors.Call {
	call := vendors.Call{API: APIUpdateFriendsAlias, From: "zego_user"}
	for i, to := range tos {
		call.Items = append(call.Items, vendors.Item{Ref: i, To: to, Remark: str("alias-" + to)})
	}
	return call
}

func attrsCall(to string, attrs map[string]string) vendors.Call {
	return vendors.Call{API: APIUpdateFriendAttributes, From: "zego_user",
		Items: []vendors.Item{{Ref: 7, To: to, Attrs: attrs}}}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"empty base url means default", func(c *Config) { c.BaseURL = "" }, ""},
		{"path prefix", func(c *Config) { c.BaseURL = "http://127.0.0.1:8090/zego" }, ""},
		{"regional host", func(c *Config) { c.BaseURL = BaseURLSingapore }, ""},
		{"alias batch 50", func(c *Config) { c.MaxAliasBatch = 50 }, ""},
		{"alias batch 51", func(c *Config) { c.MaxAliasBatch = 51 }, "MaxAliasBatch must be 1..50"},
		{"alias batch negative", func(c *Config) { c.MaxAliasBatch = -1 }, "MaxAliasBatch must be 1..50"},
		{"no app id", func(c *Config) { c.AppID = 0 }, "AppID is required"},
		{"no secret", func(c *Config) { c.ServerSecret = "" }, "ServerSecret is required"},
		{"secret with space", func(c *Config) { c.ServerSecret = testSecret + "\n" }, "white space"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout must not be negative"},
		{"ftp scheme", func(c *Config) { c.BaseURL = "ftp://zim-api.zego.im" }, "scheme must be https or http"},
		{"no host", func(c *Config) { c.BaseURL = "https://" }, "no host"},
		{"query", func(c *Config) { c.BaseURL = "https://zim-api.zego.im/?x=1" }, "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate: nil, want %q", tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate: %v, want it to mention %q", err, tc.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "zego: config: ") {
					t.Errorf("error %q lacks the zego: config: prefix", err)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Errorf("error leaks the secret: %v", err)
				}
			}
		})
	}
}

func TestConfigMasksSecret(t *testing.T) {
	cfg := testConfig()
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "zego", cfg)
	outs := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"slog":   logged.String(),
	}
	for name, out := range outs {
		if strings.Contains(out, testSecret) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "***") || !strings.Contains(out, "12345") {
			t.Errorf("%s = %s, want the app id and a mask", name, out)
		}
	}
}

func TestNew(t *testing.T) {
	t.Run("nil http client gets a tuned transport", func(t *testing.T) {
		c, err := New(Config{AppID: testAppID, ServerSecret: testSecret}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr, isTr := c.hc.Transport.(*http.Transport)
		if !isTr {
			t.Fatalf("transport is %T", c.hc.Transport)
		}
		if tr.MaxIdleConnsPerHost < 64 {
			t.Errorf("MaxIdleConnsPerHost = %d, want >= 64", tr.MaxIdleConnsPerHost)
		}
		if c.Vendor() != "zego" {
			t.Errorf("Vendor = %q", c.Vendor())
		}
		if c.cfg.MaxAliasBatch != 20 || c.cfg.Timeout != 10*time.Second || c.cfg.BaseURL != DefaultBaseURL {
			t.Errorf("defaults not applied: %s", c.cfg)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		cfg := testConfig()
		cfg.AppID = 0
		c, err := New(cfg, nil)
		if err == nil || c != nil {
			t.Fatalf("New = %v, %v; want an error", c, err)
		}
		if !strings.HasPrefix(err.Error(), "zego: new: ") || strings.Contains(err.Error(), testSecret) {
			t.Errorf("error = %q", err)
		}
	})
}

// checkSplit verifies the invariants every Split result keeps and that the
// parts add up to exactly the remarks and attributes of the input.
func checkSplit(t *testing.T, maxAlias int, from string, items []vendors.Item, calls []vendors.Call) {
	t.Helper()
	type key struct {
		ref   int
		to    string
		field string
	}
	want := map[key]string{}
	for _, it := range items {
		if it.Remark != nil {
			want[key{it.Ref, it.To, "remark"}] = *it.Remark
		}
		for k, v := range it.Attrs {
			want[key{it.Ref, it.To, "attr:" + k}] = v
		}
	}
	got := map[key]string{}
	for i, c := range calls {
		if c.From != from {
			t.Errorf("call %d From = %q", i, c.From)
		}
		if len(c.Items) == 0 {
			t.Errorf("call %d is empty", i)
		}
		switch c.API {
		case APIUpdateFriendsAlias:
			if c.Budget != "zego:12345:UpdateFriendsAlias" {
				t.Errorf("call %d Budget = %q", i, c.Budget)
			}
			if len(c.Items) > maxAlias {
				t.Errorf("call %d has %d alias items, cap %d", i, len(c.Items), maxAlias)
			}
			tos := map[string]bool{}
			for _, it := range c.Items {
				if it.Remark == nil || it.Attrs != nil || it.Groups != nil {
					t.Errorf("call %d alias part %+v carries other fields", i, it)
					continue
				}
				if tos[it.To] {
					t.Errorf("call %d repeats UserId %q", i, it.To)
				}
				tos[it.To] = true
				got[key{it.Ref, it.To, "remark"}] = *it.Remark
			}
		case APIUpdateFriendAttributes:
			if c.Budget != "zego:12345:UpdateFriendAttributes" {
				t.Errorf("call %d Budget = %q", i, c.Budget)
			}
			if len(c.Items) != 1 {
				t.Fatalf("call %d has %d friends, want 1", i, len(c.Items))
			}
			it := c.Items[0]
			if it.Remark != nil || it.Groups != nil || len(it.Attrs) == 0 || len(it.Attrs) > MaxAttrsPerCall {
				t.Errorf("call %d attrs part %+v", i, it)
			}
			size := 0
			for k, v := range it.Attrs {
				size += len(k) + len(v)
				got[key{it.Ref, it.To, "attr:" + k}] = v
			}
			if size > MaxAttrBytes && len(it.Attrs) > 1 {
				t.Errorf("call %d carries %d bytes of attributes", i, size)
			}
		default:
			t.Errorf("call %d API %q", i, c.API)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("parts do not add up to the input:\n got %v\nwant %v", got, want)
	}
}

// shape renders calls compactly: "A[ref:to ref:to]" or "T[ref:to k0 k1]".
func shape(calls []vendors.Call) []string {
	var out []string
	for _, c := range calls {
		var b strings.Builder
		if c.API == APIUpdateFriendsAlias {
			b.WriteString("A[")
		} else {
			b.WriteString("T[")
		}
		for j, it := range c.Items {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d:%s", it.Ref, it.To)
			for _, k := range slices.Sorted(maps.Keys(it.Attrs)) {
				b.WriteString(" " + k)
			}
		}
		b.WriteByte(']')
		out = append(out, b.String())
	}
	return out
}

func TestSplit(t *testing.T) {
	many := func(n int) []vendors.Item {
		items := make([]vendors.Item, n)
		for i := range items {
			items[i] = vendors.Item{Ref: i, To: "u" + strconv.Itoa(i), Remark: str("r" + strconv.Itoa(i))}
		}
		return items
	}
	big := strings.Repeat("x", 600)
	tests := []struct {
		name     string
		maxAlias int
		items    []vendors.Item
		want     []string // shape, nil to check only the invariants and sizes
		sizes    []int    // alias call sizes, when want is nil
	}{
		{name: "no items", items: nil, want: nil},
		{name: "45 aliases at the default cap", items: many(45), sizes: []int{20, 20, 5}},
		{name: "45 aliases at cap 50", maxAlias: 50, items: many(45), sizes: []int{45}},
		{name: "20 aliases fill one call", items: many(20), sizes: []int{20}},
		{
			name: "remark and attrs of one item go to two calls with the same ref",
			items: []vendors.Item{
				{Ref: 3, To: "bob", Remark: str("Bobby"), Attrs: map[string]string{"k1": "b", "k0": "a"}},
			},
			want: []string{"A[3:bob]", "T[3:bob k0 k1]"},
		},
		{
			name: "aliases first in input order, attrs by to then key",
			items: []vendors.Item{
				{Ref: 0, To: "zed", Attrs: map[string]string{"k4": "4", "k2": "2"}},
				{Ref: 1, To: "amy", Remark: str("A")},
				{Ref: 2, To: "bob", Attrs: map[string]string{"k0": "0"}},
				{Ref: 3, To: "cat", Remark: str(""), Attrs: map[string]string{"k3": ""}},
			},
			want: []string{"A[1:amy 3:cat]", "T[2:bob k0]", "T[3:cat k3]", "T[0:zed k2 k4]"},
		},
		{
			name: "over 1024 bytes of one friend's attributes are split",
			items: []vendors.Item{
				{Ref: 5, To: "dan", Attrs: map[string]string{"k0": big, "k1": big, "k2": "small", "k3": ""}},
			},
			want: []string{"T[5:dan k0]", "T[5:dan k1 k2 k3]"},
		},
		{
			name: "exactly 1024 bytes stay in one call",
			items: []vendors.Item{
				{Ref: 5, To: "dan", Attrs: map[string]string{"k0": strings.Repeat("y", 510), "k1": strings.Repeat("z", 510)}},
			},
			want: []string{"T[5:dan k0 k1]"},
		},
		{
			name: "groups are ignored",
			items: []vendors.Item{
				{Ref: 1, To: "amy", Groups: &[]string{"g"}},
				{Ref: 2, To: "bob", Groups: &[]string{"g"}, Remark: str("B")},
			},
			want: []string{"A[2:bob]"},
		},
		{
			name: "a repeated friend starts a new alias call",
			items: []vendors.Item{
				{Ref: 1, To: "amy", Remark: str("A1")},
				{Ref: 2, To: "bob", Remark: str("B")},
				{Ref: 3, To: "amy", Remark: str("A2")},
			},
			want: []string{"A[1:amy 2:bob]", "A[3:amy]"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxAliasBatch = tc.maxAlias
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			calls := c.Split("me", tc.items)
			maxAlias := cmpOr(tc.maxAlias, 20)
			checkSplit(t, maxAlias, "me", tc.items, calls)
			if tc.sizes != nil {
				var sizes []int
				for _, call := range calls {
					sizes = append(sizes, len(call.Items))
				}
				if !slices.Equal(sizes, tc.sizes) {
					t.Errorf("alias call sizes = %v, want %v", sizes, tc.sizes)
				}
				return
			}
			if got := shape(calls); !slices.Equal(got, tc.want) {
				t.Errorf("Split =\n %v\nwant\n %v", got, tc.want)
			}
			// Deterministic: the same input splits the same way again.
			if again := shape(c.Split("me", tc.items)); !slices.Equal(again, shape(calls)) {
				t.Errorf("second Split = %v, first %v", again, shape(calls))
			}
		})
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func TestSplitDoesNotShareInputMaps(t *testing.T) {
	c, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"k0": "a"}
	calls := c.Split("me", []vendors.Item{{To: "bob", Attrs: attrs}})
	attrs["k0"] = "changed"
	if got := calls[0].Items[0].Attrs["k0"]; got != "a" {
		t.Errorf("part sees the caller's later change: %q", got)
	}
}

func TestSendRequest(t *testing.T) {
	tests := []struct {
		name     string
		call     vendors.Call
		wantBody string
	}{
		{
			name: "UpdateFriendsAlias",
			call: vendors.Call{API: APIUpdateFriendsAlias, From: "zego_user", Items: []vendors.Item{
				{To: "user1", Remark: str("FriendAlias1")}, {To: "user2", Remark: str("")},
			}},
			wantBody: `{"FromUserId":"zego_user","UserIds":[{"UserId":"user1","FriendAlias":"FriendAlias1"},` +
				`{"UserId":"user2","FriendAlias":""}]}`,
		},
		{
			name: "UpdateFriendAttributes",
			call: attrsCall("user1", map[string]string{"k3": "", "k0": "v0"}),
			wantBody: `{"FromUserId":"zego_user","UserId":"user1","Attributes":[{"Key":"k0","Value":"v0"},` +
				`{"Key":"k3","Value":""}],"Action":0}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ok(`{"Code":0,"Message":"success","RequestId":"1"}`))
			c, _ := newTestClient(t, testConfig(), f)
			c.now = func() time.Time { return time.Unix(testTS, 0) }
			c.nonce = func() string { return testNonce }
			if _, err := c.Send(t.Context(), tc.call); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			wantQuery := "Action=" + tc.name + "&AppId=12345&SignatureNonce=" + testNonce +
				"&Timestamp=1615186943&SignatureVersion=2.0&Signature=" + testSig
			if reqs[0].RawQuery != wantQuery {
				t.Errorf("query\n got %s\nwant %s", reqs[0].RawQuery, wantQuery)
			}
			if string(reqs[0].Body) != tc.wantBody {
				t.Errorf("body\n got %s\nwant %s", reqs[0].Body, tc.wantBody)
			}
		})
	}
}

func TestSendFreshSignatureEveryAttempt(t *testing.T) {
	f := newFixture(t, ok(`{"Code":0}`))
	c, _ := newTestClient(t, testConfig(), f)
	clock := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return clock }

	for range 3 {
		if _, err := c.Send(t.Context(), aliasCall("a")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		clock = clock.Add(7 * time.Second)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	nonces := map[string]bool{}
	sigs := map[string]bool{}
	for i, r := range reqs {
		if got, want := r.Query.Get("Timestamp"), strconv.FormatInt(1_700_000_000+7*int64(i), 10); got != want {
			t.Errorf("request %d Timestamp = %s, want %s", i, got, want)
		}
		nonces[r.Query.Get("SignatureNonce")] = true
		sigs[r.Query.Get("Signature")] = true
	}
	if len(nonces) != 3 || len(sigs) != 3 {
		t.Errorf("nonces %v and signatures %v are not all fresh", nonces, sigs)
	}
}

func TestSendWrongSecretIsRejectedByFixture(t *testing.T) {
	// The fixture's signature check can fail: a client with another secret
	// is refused, so the passing tests above prove the signature.
	f := newFixture(t, ok(`{"Code":0}`))
	var rejected string
	f.reject = func(p string) { rejected = p }
	cfg := testConfig()
	cfg.ServerSecret = "another-secret"
	c, _ := newTestClient(t, cfg, f)
	_, err := c.Send(t.Context(), aliasCall("a"))
	if vendors.ClassOf(err) != vendors.Permanent || !strings.Contains(err.Error(), "100000005") {
		t.Fatalf("Send with a wrong secret: %v, want the signature-wrong code", err)
	}
	if len(f.requests()) != 0 || rejected != "signature mismatch" {
		t.Fatalf("fixture accepted a wrong signature (rejected: %q)", rejected)
	}
}

func TestSendResults(t *testing.T) {
	type want struct {
		items []vendors.ItemResult // nil when a whole-call error is expected
		err   *vendors.Error       // Class, Code, HTTPStatus, RetryAfter compared
	}
	okItem := vendors.ItemResult{Class: vendors.OK, Code: "0"}
	it := func(class vendors.Class, code, msg string) vendors.ItemResult {
		return vendors.ItemResult{Class: class, Code: code, Message: msg}
	}
	k01 := map[string]string{"k0": "a", "k1": "b"}
	tests := []struct {
		name  string
		call  vendors.Call
		reply reply
		want  want
	}{
		{
			name:  "alias all ok",
			call:  aliasCall("aaa", "bbb"),
			reply: reply{body: `{"Code":0,"Message":"success","RequestId":"1","ErrorList":[]}`},
			want:  want{items: []vendors.ItemResult{okItem, okItem}},
		},
		{
			name:  "alias seed sample is a partial failure",
			call:  aliasCall("aaa", "ccc", "bbb"),
			reply: reply{body: seedSample},
			want: want{items: []vendors.ItemResult{
				it(vendors.Permanent, "660000012", "user length limit"),
				okItem,
				it(vendors.Permanent, "660000013", "this is a demo"),
			}},
		},
		{
			name: "alias partial with retryable and throttled subcodes, no SubMessage",
			call: aliasCall("a", "b", "c"),
			reply: reply{body: `{"Code":0,"ErrorList":[{"UserId":"c","SubCode":660000001},` +
				`{"UserId":"a","SubCode":660300005},{"UserId":"zz","SubCode":2}]}`},
			want: want{items: []vendors.ItemResult{
				it(vendors.Throttled, "660300005", "call frequency exceeds the AppID-level limit"),
				okItem,
				it(vendors.Retry, "660000001", "common business error, retry"),
			}},
		},
		{
			name: "alias code with a list fails every item",
			call: aliasCall("aaa", "bbb"),
			reply: reply{body: `{"Code":660000001,"Message":"all failed",` +
				`"ErrorList":[{"UserId":"aaa","SubCode":660800034,"SubMessage":"not a friend"}]}`},
			want: want{items: []vendors.ItemResult{
				it(vendors.Permanent, "660800034", "not a friend"),
				it(vendors.Retry, "660000001", "common business error, retry"),
			}},
		},
		{
			name:  "alias listed without subcode takes the call code",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":660800034,"ErrorList":[{"UserId":"aaa"}]}`},
			want:  want{items: []vendors.ItemResult{it(vendors.Permanent, "660800034", "target user is not a friend of FromUserId")}},
		},
		{
			name:  "alias rate limited",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":660300005,"Message":"qps limit","RequestId":"9"}`},
			want:  want{err: &vendors.Error{Class: vendors.Throttled, Code: "660300005", HTTPStatus: 200, RetryAfter: time.Second}},
		},
		{
			name:  "system overload code 7",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":7}`},
			want:  want{err: &vendors.Error{Class: vendors.Throttled, Code: "7", HTTPStatus: 200, RetryAfter: time.Second}},
		},
		{
			name:  "signature expired",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":100000004,"Message":"signature expired"}`},
			want:  want{err: &vendors.Error{Class: vendors.ReSign, Code: "100000004", HTTPStatus: 200}},
		},
		{
			name:  "server busy",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":1}`},
			want:  want{err: &vendors.Error{Class: vendors.Retry, Code: "1", HTTPStatus: 200}},
		},
		{
			name:  "unknown code is permanent",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":123456789}`},
			want:  want{err: &vendors.Error{Class: vendors.Permanent, Code: "123456789", HTTPStatus: 200}},
		},
		{
			name:  "attrs ok",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":0,"Message":"success","RequestId":"1","FailKey":[]}`},
			want:  want{items: []vendors.ItemResult{okItem}},
		},
		{
			name:  "attrs one failed key fails the friend",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":0,"FailKey":[{"Key":"k1","SubCode":660800024}]}`},
			want: want{items: []vendors.ItemResult{
				it(vendors.Permanent, "660800024", "key k1: attribute keys and values exceed the total length limit"),
			}},
		},
		{
			name: "attrs worst class among keys wins",
			call: attrsCall("bob", k01),
			reply: reply{body: `{"Code":0,"FailKey":[{"Key":"k0","SubCode":660000001,"SubMessage":"busy"},` +
				`{"Key":"k1","SubCode":660800023,"SubMessage":"bad key"}]}`},
			want: want{items: []vendors.ItemResult{it(vendors.Permanent, "660800023", "key k1: bad key (2 keys failed)")}},
		},
		{
			name:  "attrs retryable key",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":0,"FailKey":[{"Key":"k0","SubCode":660000003,"SubMessage":"logic"}]}`},
			want:  want{items: []vendors.ItemResult{it(vendors.Retry, "660000003", "key k0: logic")}},
		},
		{
			name:  "attrs code with a list: unlisted keys fail with the code",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":660300005,"FailKey":[{"Key":"k0","SubCode":660000001}]}`},
			want: want{items: []vendors.ItemResult{
				it(vendors.Throttled, "660300005", "call frequency exceeds the AppID-level limit"),
			}},
		},
		{
			name:  "attrs code without a list",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":660000002,"Message":"bad param"}`},
			want:  want{err: &vendors.Error{Class: vendors.Permanent, Code: "660000002", HTTPStatus: 200}},
		},
		{
			name:  "attrs ignores an ErrorList",
			call:  attrsCall("bob", k01),
			reply: reply{body: `{"Code":0,"ErrorList":[{"UserId":"bob","SubCode":2}]}`},
			want:  want{items: []vendors.ItemResult{okItem}},
		},
		{
			name:  "http 503",
			call:  aliasCall("aaa"),
			reply: reply{status: 503, body: "<html>busy</html>"},
			want:  want{err: &vendors.Error{Class: vendors.Retry, HTTPStatus: 503}},
		},
		{
			name:  "http 429 with Retry-After",
			call:  aliasCall("aaa"),
			reply: reply{status: 429, header: http.Header{"Retry-After": {"3"}}},
			want:  want{err: &vendors.Error{Class: vendors.Throttled, HTTPStatus: 429, RetryAfter: 3 * time.Second}},
		},
		{
			name:  "http 429 without Retry-After",
			call:  attrsCall("bob", k01),
			reply: reply{status: 429},
			want:  want{err: &vendors.Error{Class: vendors.Throttled, HTTPStatus: 429, RetryAfter: time.Second}},
		},
		{
			name:  "http 403 with a ZIM body",
			call:  aliasCall("aaa"),
			reply: reply{status: 403, body: `{"Code":3,"Message":"auth failed"}`},
			want:  want{err: &vendors.Error{Class: vendors.Permanent, HTTPStatus: 403, Code: "3"}},
		},
		{
			name:  "malformed json",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":0,"ErrorList":[`},
			want:  want{err: &vendors.Error{Class: vendors.Retry, HTTPStatus: 200}},
		},
		{
			name:  "json without Code",
			call:  aliasCall("aaa"),
			reply: reply{body: `{}`},
			want:  want{err: &vendors.Error{Class: vendors.Retry, HTTPStatus: 200}},
		},
		{
			name:  "subcode of the wrong type",
			call:  aliasCall("aaa"),
			reply: reply{body: `{"Code":0,"ErrorList":[{"UserId":"aaa","SubCode":"x"}]}`},
			want:  want{err: &vendors.Error{Class: vendors.Retry, HTTPStatus: 200}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(seen) reply { return tc.reply })
			c, mt := newTestClient(t, testConfig(), f)
			res, err := c.Send(t.Context(), tc.call)
			if n := mt.count(); n != 1 {
				t.Errorf("%d HTTP attempts, want exactly 1", n)
			}
			if tc.want.err != nil {
				var ve *vendors.Error
				if !errors.As(err, &ve) {
					t.Fatalf("Send = %+v, %v; want a *vendors.Error", res, err)
				}
				w := tc.want.err
				if ve.Class != w.Class || ve.Code != w.Code || ve.HTTPStatus != w.HTTPStatus || ve.RetryAfter != w.RetryAfter {
					t.Errorf("error {class %s code %q http %d wait %s}, want {class %s code %q http %d wait %s} (%v)",
						ve.Class, ve.Code, ve.HTTPStatus, ve.RetryAfter, w.Class, w.Code, w.HTTPStatus, w.RetryAfter, err)
				}
				if ve.Vendor != "zego" || ve.API != tc.call.API {
					t.Errorf("error names %s/%s", ve.Vendor, ve.API)
				}
				if len(res.Items) != 0 {
					t.Errorf("whole-call error with %d item results", len(res.Items))
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !slices.Equal(res.Items, tc.want.items) {
				t.Errorf("items\n got %+v\nwant %+v", res.Items, tc.want.items)
			}
		})
	}
}

func TestSendRejectsMalformedCallsWithoutHTTP(t *testing.T) {
	tooMany := aliasCall()
	for i := range 21 {
		tooMany.Items = append(tooMany.Items, vendors.Item{To: "u" + strconv.Itoa(i), Remark: str("r")})
	}
	tests := []struct {
		name string
		call vendors.Call
	}{
		{"unknown api", vendors.Call{API: "DeleteFriends", From: "a", Items: []vendors.Item{{To: "b", Remark: str("")}}}},
		{"no items", vendors.Call{API: APIUpdateFriendsAlias, From: "a"}},
		{"no from", vendors.Call{API: APIUpdateFriendsAlias, Items: []vendors.Item{{To: "b", Remark: str("")}}}},
		{"21 aliases", tooMany},
		{"alias item without remark", vendors.Call{API: APIUpdateFriendsAlias, From: "a", Items: []vendors.Item{{To: "b"}}}},
		{"two friends in an attrs call", vendors.Call{API: APIUpdateFriendAttributes, From: "a", Items: []vendors.Item{
			{To: "b", Attrs: map[string]string{"k0": ""}}, {To: "c", Attrs: map[string]string{"k0": ""}}}}},
		{"six attributes", attrsCall("b", map[string]string{"k0": "", "k1": "", "k2": "", "k3": "", "k4": "", "k5": ""})},
		{"no attributes", attrsCall("b", nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, mt := newTestClient(t, testConfig(), newFixture(t, ok(`{"Code":0}`)))
			_, err := c.Send(t.Context(), tc.call)
			if vendors.ClassOf(err) != vendors.Permanent {
				t.Errorf("Send = %v, want a permanent error", err)
			}
			if mt.count() != 0 {
				t.Errorf("%d HTTP attempts for an invalid call", mt.count())
			}
		})
	}
}

func TestSendBaseURLWithPathPrefix(t *testing.T) {
	for _, base := range []string{"/zego", "/zego/", "/api/v1/zego"} {
		t.Run(base, func(t *testing.T) {
			f := newFixture(t, ok(`{"Code":0}`))
			f.prefix = strings.TrimSuffix(base, "/")
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := testConfig()
			cfg.BaseURL = srv.URL + base
			c, err := New(cfg, nil) // real tuned transport over a socket
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Send(t.Context(), aliasCall("a", "b"))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res.Items) != 2 || res.Items[0].Class != vendors.OK {
				t.Errorf("result %+v", res)
			}
			reqs := f.requests()
			if len(reqs) != 1 || reqs[0].Path != f.prefix+"/" {
				t.Fatalf("requests %+v, want one at %s/", reqs, f.prefix)
			}
		})
	}
}

func TestSendContextCancel(t *testing.T) {
	t.Run("in-memory, cancelled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			c, _ := newTestClient(t, testConfig(), h)
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				time.Sleep(1500 * time.Millisecond)
				cancel()
			}()
			start := time.Now()
			_, err := c.Send(ctx, aliasCall("a"))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Send = %v, want it to wrap context.Canceled", err)
			}
			if d := time.Since(start); d != 1500*time.Millisecond {
				t.Errorf("Send returned after %s, want 1.5s (at the cancel)", d)
			}
			close(release)
		})
	})
	t.Run("timeout from Config", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			cfg := testConfig()
			cfg.Timeout = 3 * time.Second
			c, _ := newTestClient(t, cfg, h)
			start := time.Now()
			_, err := c.Send(t.Context(), aliasCall("a"))
			if !errors.Is(err, context.DeadlineExceeded) || vendors.ClassOf(err) != vendors.Retry {
				t.Fatalf("Send = %v, want a retryable deadline error", err)
			}
			if d := time.Since(start); d != 3*time.Second {
				t.Errorf("Send returned after %s, want the 3s timeout", d)
			}
		})
	})
	t.Run("real socket", func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body) // lets the server notice the client going away
			close(entered)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		cfg := testConfig()
		cfg.BaseURL = srv.URL
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := c.Send(ctx, aliasCall("a"))
			done <- err
		}()
		<-entered
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Send = %v, want it to wrap context.Canceled", err)
			}
			if strings.Contains(err.Error(), "Signature=") {
				t.Errorf("error carries the request URL: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Send did not return after cancel")
		}
	})
}

// leakyTransport fails with the full request URL in its error text, as
// net/http's own errors do.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, errors.New("transport broke on " + r.URL.String())
}

func TestNoSecretOrSignatureInErrors(t *testing.T) {
	// echo answers with everything the request carried, so a careless
	// client would copy the signature into its error or item messages.
	echo := func(status int, tmpl string) *fixture {
		return &fixture{t: t, secret: testSecret, reply: func(s seen) reply {
			leak := s.RawQuery + " secret=" + testSecret
			return reply{status: status, body: fmt.Sprintf(tmpl, leak)}
		}}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		client  func(t *testing.T) *Client
		call    vendors.Call
		noQuery bool // the request URL must not appear at all
	}{
		{"vendor message echoes the query", func(t *testing.T) *Client {
			c, _ := newTestClient(t, testConfig(), echo(200, `{"Code":1,"Message":%q}`))
			return c
		}, aliasCall("a"), false},
		{"sub message echoes the query", func(t *testing.T) *Client {
			c, _ := newTestClient(t, testConfig(), echo(200, `{"Code":0,"ErrorList":[{"UserId":"a","SubCode":2,"SubMessage":%q}]}`))
			return c
		}, aliasCall("a"), false},
		{"fail key message echoes the query", func(t *testing.T) *Client {
			c, _ := newTestClient(t, testConfig(), echo(200, `{"Code":0,"FailKey":[{"Key":"k0","SubCode":2,"SubMessage":%q}]}`))
			return c
		}, attrsCall("b", map[string]string{"k0": "v"}), false},
		{"http error body echoes the query", func(t *testing.T) *Client {
			c, _ := newTestClient(t, testConfig(), echo(500, `{"Code":1,"Message":%q}`))
			return c
		}, aliasCall("a"), false},
		{"connection refused", func(t *testing.T) *Client {
			cfg := testConfig()
			cfg.BaseURL = closedURL
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, aliasCall("a"), true},
		{"transport error quoting the URL", func(t *testing.T) *Client {
			c, err := New(testConfig(), &http.Client{Transport: leakyTransport{}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, aliasCall("a"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client(t)
			var sig string
			c.nonce = func() string { return testNonce }
			c.now = func() time.Time { return time.Unix(testTS, 0) }
			sig = testSig
			res, err := c.Send(t.Context(), tc.call)
			texts := []string{fmt.Sprint(res)}
			if err != nil {
				texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
				if u := errors.Unwrap(err); u != nil {
					texts = append(texts, u.Error())
				}
			}
			if err == nil && len(res.Items) == 0 {
				t.Fatal("no error and no results")
			}
			for _, s := range texts {
				if strings.Contains(s, sig) || strings.Contains(s, testSecret) {
					t.Errorf("leak: %s", s)
				}
				if tc.noQuery && strings.Contains(s, "SignatureNonce=") {
					t.Errorf("request URL copied into %s", s)
				}
			}
		})
	}
}
