package vendorsim

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
)

func TestTencentHappyPathAndClear(t *testing.T) {
	h := newHarness(t, nil)
	r := h.tencent(tBody("alice",
		tItem("bob", "Tag_SNS_IM_Remark", "Bobby", "Tag_SNS_IM_Group", []string{"g1", "g2"}, "Tag_SNS_Custom_Level", "7"),
		tItem("carol", "Tag_SNS_Custom_Score", 42),
	), nil)
	if r.ActionStatus != "OK" || r.ErrorCode != 0 || len(r.ResultItem) != 2 || len(r.Fail_Account) != 0 {
		t.Fatalf("response %+v", r)
	}
	for i, to := range []string{"bob", "carol"} {
		if r.ResultItem[i].To_Account != to || r.ResultItem[i].ResultCode != 0 {
			t.Fatalf("ResultItem[%d] = %+v", i, r.ResultItem[i])
		}
	}
	bob := h.friend(event.Tencent, tApp, "alice", "bob")
	if bob.Remark != "Bobby" || !slices.Equal(bob.Groups, []string{"g1", "g2"}) || bob.Attrs["Level"] != "7" || bob.Updates != 1 {
		t.Fatalf("bob = %+v", bob)
	}
	if c := h.friend(event.Tencent, tApp, "alice", "carol"); c.Attrs["Score"] != "42" {
		t.Fatalf("carol = %+v", c)
	}

	// "" clears the remark, [] clears the groups, "" deletes a custom key;
	// fields not sent stay.
	h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "", "Tag_SNS_IM_Group", []string{}, "Tag_SNS_Custom_Level", "")), nil)
	bob = h.friend(event.Tencent, tApp, "alice", "bob")
	if bob.Remark != "" || bob.Groups != nil || bob.Attrs != nil || bob.Updates != 2 {
		t.Fatalf("after clear bob = %+v", bob)
	}
	c := h.sim.Counters().Tencent
	if c.Calls != 2 || c.Items != 3 || c.Applied != 3 || c.Codes["0"] != 2 || c.Overlaps != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestTencentPartialFailure(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	groups := func(n int) []string {
		gs := make([]string, n)
		for i := range gs {
			gs[i] = "g" + strconv.Itoa(i)
		}
		return gs
	}
	cases := []struct {
		name string
		item map[string]any
		code int
	}{
		{"remark at limit", tItem("f", "Tag_SNS_IM_Remark", long(96)), 0},
		{"remark over 96 bytes", tItem("f", "Tag_SNS_IM_Remark", long(97)), 30001},
		{"remark counted in bytes", tItem("f", "Tag_SNS_IM_Remark", strings.Repeat("好", 33)), 30001},
		{"32 groups", tItem("f", "Tag_SNS_IM_Group", groups(32)), 0},
		{"33 groups", tItem("f", "Tag_SNS_IM_Group", groups(33)), 30011},
		{"group name 30 bytes", tItem("f", "Tag_SNS_IM_Group", []string{long(30)}), 0},
		{"group name 31 bytes", tItem("f", "Tag_SNS_IM_Group", []string{long(31)}), 30001},
		{"empty group name", tItem("f", "Tag_SNS_IM_Group", []string{""}), 30001},
		{"custom 500 bytes", tItem("f", "Tag_SNS_Custom_K", long(500)), 0},
		{"custom 501 bytes", tItem("f", "Tag_SNS_Custom_K", long(501)), 30001},
		{"custom bad key", tItem("f", "Tag_SNS_Custom_a-b", "v"), 30001},
		{"custom empty key", tItem("f", "Tag_SNS_Custom_", "v"), 30001},
		{"read-only tag", tItem("f", "Tag_SNS_IM_AddWording", "hi"), 30001},
		{"unknown tag", tItem("f", "Tag_Profile_IM_Nick", "n"), 30001},
		{"remark not a string", tItem("f", "Tag_SNS_IM_Remark", 5), 30001},
		{"groups not an array", tItem("f", "Tag_SNS_IM_Group", "g"), 30001},
		{"no SnsItem", map[string]any{"To_Account": "f"}, 30001},
		{"To_Account equals From_Account", tItem("alice", "Tag_SNS_IM_Remark", "me"), 30001},
		{"case-mismatched key", map[string]any{"to_account": "f", "SnsItem": []any{map[string]any{"Tag": "Tag_SNS_IM_Remark", "Value": "x"}}}, 30001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			// The failing item sits between two good ones: the call is OK
			// and only that item fails and stays unapplied.
			r := h.tencent(tBody("alice", tItem("ok1", "Tag_SNS_IM_Remark", "a"), tc.item, tItem("ok2", "Tag_SNS_IM_Remark", "b")), nil)
			if r.ActionStatus != "OK" || r.ErrorCode != 0 || len(r.ResultItem) != 3 {
				t.Fatalf("response %+v", r)
			}
			if got := r.ResultItem[1].ResultCode; got != tc.code {
				t.Fatalf("ResultCode = %d (%s), want %d", got, r.ResultItem[1].ResultInfo, tc.code)
			}
			if r.ResultItem[0].ResultCode != 0 || r.ResultItem[2].ResultCode != 0 {
				t.Fatalf("good items failed: %+v", r.ResultItem)
			}
			to := r.ResultItem[1].To_Account
			_, stored := h.sim.Friend(event.Tencent, tApp, "alice", to)
			if tc.code == 0 {
				if len(r.Fail_Account) != 0 || !stored {
					t.Fatalf("Fail_Account %v, stored %t", r.Fail_Account, stored)
				}
				return
			}
			if !slices.Equal(r.Fail_Account, []string{to}) {
				t.Fatalf("Fail_Account = %v, want [%s]", r.Fail_Account, to)
			}
			if to != "alice" && stored {
				t.Fatal("a failed item was applied")
			}
			if c := h.sim.Counters().Tencent; c.ItemFailures != 1 || c.ItemCodes[strconv.Itoa(tc.code)] != 1 || c.Applied != 2 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

func TestTencentWholeCallErrors(t *testing.T) {
	items := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = tItem("f"+strconv.Itoa(i), "Tag_SNS_IM_Remark", "r")
		}
		return out
	}
	sigAt := func(id string, app uint64, key string, at time.Time, expire int64) func(url.Values) {
		return func(q url.Values) { q.Set("usersig", signUserSig(key, app, id, at.Unix(), expire)) }
	}
	now := time.Now()
	cases := []struct {
		name   string
		body   any
		mod    func(url.Values)
		code   int
		sigErr bool
	}{
		{"1000 items", tBody("alice", items(1000)...), nil, 0, false},
		{"1001 items", tBody("alice", items(1001)...), nil, 30001, false},
		{"empty UpdateItem", tBody("alice"), nil, 30001, false},
		{"no From_Account", map[string]any{"UpdateItem": items(1)}, nil, 30001, false},
		{"From_Account not a string", map[string]any{"From_Account": 5, "UpdateItem": items(1)}, nil, 30001, false},
		{"body not JSON", "{", nil, 60003, false},
		{"body an array", "[]", nil, 60003, false},
		{"no sdkappid", tBody("a", items(1)...), func(q url.Values) { q.Del("sdkappid") }, 60012, false},
		{"sdkappid not a number", tBody("a", items(1)...), func(q url.Values) { q.Set("sdkappid", "x") }, 60006, false},
		{"unknown sdkappid", tBody("a", items(1)...), func(q url.Values) { q.Set("sdkappid", "1400000001") }, 70020, true},
		{"contenttype not json", tBody("a", items(1)...), func(q url.Values) { q.Set("contenttype", "xml") }, 60002, false},
		{"random missing", tBody("a", items(1)...), func(q url.Values) { q.Del("random") }, 60002, false},
		{"random over uint32", tBody("a", items(1)...), func(q url.Values) { q.Set("random", "4294967296") }, 60002, false},
		{"identifier missing", tBody("a", items(1)...), func(q url.Values) { q.Del("identifier") }, 60004, true},
		{"usersig missing", tBody("a", items(1)...), func(q url.Values) { q.Del("usersig") }, 70002, true},
		{"usersig garbage", tBody("a", items(1)...), func(q url.Values) { q.Set("usersig", "abc") }, 70003, true},
		{"usersig wrong key", tBody("a", items(1)...), sigAt(DemoTencentAdmin, DemoTencentSDKAppID, "other", now, 86400), 70009, true},
		{"usersig expired", tBody("a", items(1)...), sigAt(DemoTencentAdmin, DemoTencentSDKAppID, DemoTencentKey, now.Add(-2*time.Hour), 3600), 70001, true},
		{"usersig of another identifier", tBody("a", items(1)...), sigAt("bob", DemoTencentSDKAppID, DemoTencentKey, now, 86400), 70013, true},
		{"usersig of another app", tBody("a", items(1)...), sigAt(DemoTencentAdmin, 1400000001, DemoTencentKey, now, 86400), 70014, true},
		{"identifier not admin", tBody("a", items(1)...), func(q url.Values) {
			q.Set("identifier", "bob")
			q.Set("usersig", signUserSig(DemoTencentKey, DemoTencentSDKAppID, "bob", now.Unix(), 86400))
		}, 60010, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.tencent(tc.body, tc.mod)
			if r.ErrorCode != tc.code {
				t.Fatalf("ErrorCode = %d (%s), want %d", r.ErrorCode, r.ErrorInfo, tc.code)
			}
			c := h.sim.Counters()
			if tc.code == 0 {
				if r.ActionStatus != "OK" || len(r.ResultItem) != 1000 || c.StateEntries != 1000 {
					t.Fatalf("ActionStatus %s, %d results, %d entries", r.ActionStatus, len(r.ResultItem), c.StateEntries)
				}
				return
			}
			if r.ActionStatus != "FAIL" || len(r.ResultItem) != 0 || c.StateEntries != 0 {
				t.Fatalf("ActionStatus %s, %d results, %d entries", r.ActionStatus, len(r.ResultItem), c.StateEntries)
			}
			if got := c.Tencent.SigFailures == 1; got != tc.sigErr {
				t.Fatalf("SigFailures = %d", c.Tencent.SigFailures)
			}
			if c.Tencent.Codes[strconv.Itoa(tc.code)] != 1 {
				t.Fatalf("Codes = %v", c.Tencent.Codes)
			}
		})
	}
	t.Run("GET and other paths", func(t *testing.T) {
		h := newHarness(t, nil)
		req := h.tencentReq(context.Background(), "", nil)
		req.Method = http.MethodGet
		_, b := h.do(req)
		if r := decode[tResp](t, b); r.ErrorCode != 60002 {
			t.Fatalf("GET: %+v", r)
		}
		req = h.tencentReq(context.Background(), "", nil)
		req.URL.Path = "/tencent/v4/sns/friend_add"
		_, b = h.do(req)
		if r := decode[tResp](t, b); r.ErrorCode != 60009 {
			t.Fatalf("friend_add: %+v", r)
		}
	})
}

func TestTencentCustomKeysAndFriendship(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.RequireFriendship = true
		c.Limits.TencentCustomKeys = []string{"Level"}
	})
	if err := h.sim.AddFriends(event.Tencent, tApp, "alice", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	r := h.tencent(tBody("alice",
		tItem("bob", "Tag_SNS_Custom_Level", "1"),
		tItem("carol", "Tag_SNS_Custom_Other", "1"),
		tItem("dave", "Tag_SNS_IM_Remark", "d"),
	), nil)
	got := []int{r.ResultItem[0].ResultCode, r.ResultItem[1].ResultCode, r.ResultItem[2].ResultCode}
	if !slices.Equal(got, []int{0, 30001, 30001}) || !slices.Equal(r.Fail_Account, []string{"carol", "dave"}) {
		t.Fatalf("codes %v, Fail_Account %v", got, r.Fail_Account)
	}
	if _, ok := h.sim.Friend(event.Tencent, tApp, "alice", "dave"); ok {
		t.Fatal("a non-friend got state")
	}
	if f := h.friend(event.Tencent, tApp, "alice", "bob"); !f.Added || f.Attrs["Level"] != "1" {
		t.Fatalf("bob = %+v", f)
	}
}

// TestTencentConflict: two concurrent writes for one From_Account: one is
// applied, the other answered 30008 and counted as an overlap. A write
// after the first finished does not overlap, and other accounts never do.
func TestTencentConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = 50 * time.Millisecond })
		var wg sync.WaitGroup
		codes := make([]int, 3)
		for i, from := range []string{"alice", "alice", "zed"} {
			wg.Go(func() {
				codes[i] = h.tencent(tBody(from, tItem("bob", "Tag_SNS_IM_Remark", fmt.Sprint(i))), nil).ErrorCode
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if !slices.Equal(codes, []int{0, 0, 30008}) {
			t.Fatalf("codes = %v, want one 30008", codes)
		}
		c := h.sim.Counters().Tencent
		if c.Overlaps != 1 || c.Conflicts != 1 || c.Codes["30008"] != 1 {
			t.Fatalf("overlaps %d conflicts %d codes %v", c.Overlaps, c.Conflicts, c.Codes)
		}
		if f := h.friend(event.Tencent, tApp, "alice", "bob"); f.Updates != 1 {
			t.Fatalf("bob updated %d times", f.Updates)
		}

		// Sequential writes (the worker's discipline) never overlap, and a
		// write takes WriteTime.
		start := time.Now()
		for range 3 {
			if r := h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "x")), nil); r.ErrorCode != 0 {
				t.Fatalf("sequential write: %+v", r)
			}
		}
		if el := time.Since(start); el != 150*time.Millisecond {
			t.Fatalf("3 writes took %s, want 150ms", el)
		}
		if c := h.sim.Counters().Tencent; c.Overlaps != 1 {
			t.Fatalf("overlaps grew to %d", c.Overlaps)
		}
	})
}
