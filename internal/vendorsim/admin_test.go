package vendorsim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

func (h *harness) admin(method, path, body string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://sim.test"+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func TestAdminAPI(t *testing.T) {
	h := newHarness(t, nil)
	h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "Bobby"), tItem("carol", "Tag_SNS_Custom_K", "v")), nil)

	status, b := h.admin("GET", "/admin/counters", "")
	c := decode[Counters](t, b)
	if status != 200 || c.Tencent.Calls != 1 || c.Tencent.Applied != 2 || c.StateEntries != 2 || c.Tencent.Budgets["tencent:"+tApp].Calls != 1 {
		t.Fatalf("counters HTTP %d %s", status, b)
	}

	status, b = h.admin("GET", "/admin/state?vendor=tencent&app="+tApp+"&from=alice&to=bob", "")
	if f := decode[Friend](t, b); status != 200 || f.Remark != "Bobby" {
		t.Fatalf("state HTTP %d %s", status, b)
	}
	status, b = h.admin("GET", "/admin/state?vendor=tencent&app="+tApp+"&from=alice", "")
	list := decode[struct {
		Friends   map[string]Friend
		Truncated bool
	}](t, b)
	if status != 200 || len(list.Friends) != 2 || list.Friends["carol"].Attrs["K"] != "v" || list.Truncated {
		t.Fatalf("state list HTTP %d %s", status, b)
	}

	status, b = h.admin("POST", "/admin/faults?vendor=tencent", `{"error_rates":{"30007":1},"latency":"0s","seed":4}`)
	if status != 200 || !strings.Contains(string(b), `"30007":1`) {
		t.Fatalf("faults HTTP %d %s", status, b)
	}
	if r := h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "x")), nil); r.ErrorCode != 30007 {
		t.Fatalf("after fault: %+v", r)
	}
	status, b = h.admin("GET", "/admin/faults?vendor=tencent", "")
	if f := decode[FaultSpec](t, b); status != 200 || f.ErrorRates["30007"] != 1 || f.Seed != 4 {
		t.Fatalf("get faults HTTP %d %s", status, b)
	}
	h.admin("POST", "/admin/faults?vendor=tencent", `{}`)
	if r := h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "x")), nil); r.ErrorCode != 0 {
		t.Fatalf("after clearing faults: %+v", r)
	}

	status, b = h.admin("POST", "/admin/friends", `{"vendor":"zego","app":"12345","from":"u1","to":["u2","u3"]}`)
	if f, ok := h.sim.Friend(event.Zego, zApp, "u1", "u3"); status != 200 || !ok || !f.Added {
		t.Fatalf("friends HTTP %d %s", status, b)
	}

	status, _ = h.admin("POST", "/admin/reset", "")
	if c := h.sim.Counters(); status != 200 || c.Tencent.Calls != 0 || c.StateEntries != 0 || len(c.Tencent.Codes) != 0 {
		t.Fatalf("after reset HTTP %d %+v", status, c)
	}
	if _, ok := h.sim.Friend(event.Tencent, tApp, "alice", "bob"); ok {
		t.Fatal("state survived reset")
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown friend", "GET", "/admin/state?vendor=tencent&app=1&from=a&to=b", "", 404},
		{"state without from", "GET", "/admin/state?vendor=tencent&app=1", "", 400},
		{"state bad vendor", "GET", "/admin/state?vendor=qq&app=1&from=a", "", 400},
		{"counters by POST", "POST", "/admin/counters", "", 405},
		{"reset by GET", "GET", "/admin/reset", "", 405},
		{"faults bad JSON", "POST", "/admin/faults?vendor=zego", "{", 400},
		{"faults invalid spec", "POST", "/admin/faults?vendor=zego", `{"timeout_rate":2}`, 400},
		{"faults no vendor", "POST", "/admin/faults", `{}`, 400},
		{"friends bad vendor", "POST", "/admin/friends", `{"vendor":"qq","app":"1","from":"a","to":["b"]}`, 400},
		{"unknown admin path", "GET", "/admin/nope", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, b := h.admin(tc.method, tc.path, tc.body); status != tc.status || !strings.Contains(string(b), `"error"`) {
				t.Fatalf("HTTP %d %s, want %d", status, b, tc.status)
			}
		})
	}
}

// TestHandlerOverHTTP serves the handler on a real loopback listener, as
// cmd/vendorsim does.
func TestHandlerOverHTTP(t *testing.T) {
	h := newHarness(t, nil)
	srv := httptest.NewServer(h.sim.Handler())
	defer srv.Close()
	h.c = srv.Client()
	req := h.volcReq(context.Background(), vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"}), func(req *http.Request, b []byte) {
		req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
		req.Host = req.URL.Host
		signVolc(req, b, DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", time.Now())
	})
	status, b := h.do(req)
	if status != 200 || decode[vResp](t, b).ResponseMetadata.Error != nil {
		t.Fatalf("HTTP %d %s", status, b)
	}
}

func TestMaxFriendsBound(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxFriends = 10 })
	var items []map[string]any
	for i := range 15 {
		items = append(items, tItem("f"+strconv.Itoa(i), "Tag_SNS_IM_Remark", "r"))
	}
	r := h.tencent(tBody("alice", items...), nil)
	if r.ErrorCode != 0 || len(r.Fail_Account) != 0 {
		t.Fatalf("%+v", r)
	}
	c := h.sim.Counters()
	if c.StateEntries != 10 || c.StateDropped != 5 {
		t.Fatalf("entries %d dropped %d", c.StateEntries, c.StateDropped)
	}
	// Existing entries still update; new ones are still dropped.
	h.tencent(tBody("alice", tItem("f0", "Tag_SNS_IM_Remark", "new"), tItem("g", "Tag_SNS_IM_Remark", "r")), nil)
	if f := h.friend(event.Tencent, tApp, "alice", "f0"); f.Remark != "new" {
		t.Fatalf("f0 = %+v", f)
	}
	if c := h.sim.Counters(); c.StateEntries != 10 || c.StateDropped != 6 {
		t.Fatalf("entries %d dropped %d", c.StateEntries, c.StateDropped)
	}
	h.sim.Reset()
	if c := h.sim.Counters(); c.StateEntries != 0 {
		t.Fatalf("after reset %d entries", c.StateEntries)
	}
	h.tencent(tBody("alice", tItem("g", "Tag_SNS_IM_Remark", "r")), nil)
	if _, ok := h.sim.Friend(event.Tencent, tApp, "alice", "g"); !ok {
		t.Fatal("reset did not free room")
	}
}

// TestConcurrentAccounts: many accounts written concurrently, each by one
// writer at a time, never overlap and every item lands.
func TestConcurrentAccounts(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WriteTime = time.Millisecond; c.ZegoQPS = -1 })
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if r := h.zego(APIZegoAlias, zAlias("w"+strconv.Itoa(w), "f"+strconv.Itoa(i), "a"), nil); r.Code != 0 {
					t.Errorf("writer %d call %d: %+v", w, i, r)
					return
				}
			}
		})
	}
	wg.Wait()
	c := h.sim.Counters()
	if c.Zego.Overlaps != 0 || c.Zego.Applied != 160 || c.StateEntries != 160 {
		t.Fatalf("overlaps %d applied %d entries %d", c.Zego.Overlaps, c.Zego.Applied, c.StateEntries)
	}
}

func TestConfigValidateAndString(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
	bad := DemoConfig()
	bad.Tencent[1] = TencentApp{Key: "k"}
	bad.Zego[7] = ""
	bad.MaxFriends = -1
	bad.Faults = map[event.Vendor]FaultSpec{event.Zego: {TimeoutRate: 3}}
	err := bad.Validate()
	for _, want := range []string{"tencent 1: empty Admin", "zego 7: empty ServerSecret", "MaxFriends", "timeout_rate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := New(bad); err == nil {
		t.Fatal("New accepted a bad config")
	}
	s := DemoConfig().String()
	for _, secret := range []string{DemoTencentKey, DemoVolcSecretKey, DemoZegoServerSecret} {
		if strings.Contains(s, secret) {
			t.Fatalf("String() leaks a secret: %s", s)
		}
	}
	if !strings.Contains(s, DemoTencentAdmin) {
		t.Fatalf("String() = %s", s)
	}
}
