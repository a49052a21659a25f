package vendorsim

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
)

func TestVolcHappyPathAndPartial(t *testing.T) {
	h := newHarness(t, nil)
	status, r := h.volc(vBody(10001,
		map[string]any{"FriendUserId": 10002, "Ext": map[string]string{"k": "v", "j": "w"}},
		map[string]any{"FriendUserId": 10003, "Alias": "Tom"},
		map[string]any{"FriendUserId": 10004, "Alias": strings.Repeat("a", 257)},
		map[string]any{"FriendUserId": 10001, "Alias": "me"},
	))
	if status != http.StatusOK || r.ResponseMetadata.Error != nil || r.Result == nil {
		t.Fatalf("HTTP %d %+v", status, r)
	}
	m := r.ResponseMetadata
	if m.Action != "UpdateFriend" || m.Version != "2020-12-01" || m.Service != "rtc" || m.Region != "cn-north-1" || m.RequestId == "" {
		t.Fatalf("metadata %+v", m)
	}
	fi := r.Result.FailedInfos
	if len(fi) != 2 || fi[0].UserId != 10004 || fi[0].Code != "ALIAS_TOO_LONG" || fi[1].UserId != 10001 || fi[1].Code != "NOT_FRIEND" {
		t.Fatalf("FailedInfos %+v", fi)
	}
	if f := h.friend(event.Volc, vApp, "10001", "10002"); f.Attrs["k"] != "v" || f.Attrs["j"] != "w" {
		t.Fatalf("10002 = %+v", f)
	}
	if f := h.friend(event.Volc, vApp, "10001", "10003"); f.Remark != "Tom" {
		t.Fatalf("10003 = %+v", f)
	}
	if _, ok := h.sim.Friend(event.Volc, vApp, "10001", "10004"); ok {
		t.Fatal("failed item applied")
	}
	// Ext merges; "" deletes a key.
	h.volc(vBody(10001, map[string]any{"FriendUserId": 10002, "Ext": map[string]string{"k": "", "n": "1"}}))
	if f := h.friend(event.Volc, vApp, "10001", "10002"); f.Attrs["k"] != "" || f.Attrs["j"] != "w" || f.Attrs["n"] != "1" {
		t.Fatalf("after merge 10002 = %+v", f)
	}
	// All OK: FailedInfos is an empty list.
	_, r = h.volc(vBody(10001, map[string]any{"FriendUserId": 10002, "Alias": "x"}))
	if r.Result == nil || r.Result.FailedInfos == nil || len(r.Result.FailedInfos) != 0 {
		t.Fatalf("Result %+v", r.Result)
	}
}

func TestVolcWholeCallErrors(t *testing.T) {
	info := map[string]any{"FriendUserId": 2, "Alias": "a"}
	infos := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"FriendUserId": i + 2, "Alias": "a"}
		}
		return out
	}
	now := time.Now()
	signWith := func(ak, sk, region, service string, at time.Time) func(*http.Request, []byte) {
		return func(req *http.Request, b []byte) { signVolc(req, b, ak, sk, region, service, at) }
	}
	cases := []struct {
		name   string
		body   any
		sign   func(*http.Request, []byte)
		status int
		code   string
		codeN  int
	}{
		{"10 friends", vBody(1, infos(10)...), nil, 200, "", 0},
		{"11 friends", vBody(1, infos(11)...), nil, 400, "InvalidParameter", 1},
		{"no FriendInfos", map[string]any{"AppId": DemoVolcAppID, "UserId": 1}, nil, 400, "InvalidParameter", 1},
		{"string UserId", map[string]any{"AppId": DemoVolcAppID, "UserId": "1", "FriendInfos": []any{info}}, nil, 400, "InvalidParameter", 1},
		{"fractional FriendUserId", vBody(1, map[string]any{"FriendUserId": 2.5, "Alias": "a"}), nil, 400, "InvalidParameter", 1},
		{"string AppId", map[string]any{"AppId": "123456", "UserId": 1, "FriendInfos": []any{info}}, nil, 400, "InvalidParameter", 1},
		{"neither Ext nor Alias", vBody(1, map[string]any{"FriendUserId": 2}), nil, 400, "InvalidParameter", 1},
		{"Ext value not a string", vBody(1, map[string]any{"FriendUserId": 2, "Ext": map[string]any{"k": 1}}), nil, 400, "InvalidParameter", 1},
		{"body not JSON", "{", nil, 400, "InvalidParameter", 1},
		{"AppId of another account", map[string]any{"AppId": 7, "UserId": 1, "FriendInfos": []any{info}}, nil, 403, "AccessDenied", 100013},
		{"no Authorization", vBody(1, info), func(*http.Request, []byte) {}, 401, "MissingAuthenticationToken", 100003},
		{"unknown access key", vBody(1, info), signWith("AKother", DemoVolcSecretKey, "cn-north-1", "rtc", now), 401, "InvalidAccessKey", 100009},
		{"wrong secret", vBody(1, info), signWith(DemoVolcAccessKey, "nope", "cn-north-1", "rtc", now), 401, "SignatureDoesNotMatch", 100010},
		{"wrong region", vBody(1, info), signWith(DemoVolcAccessKey, DemoVolcSecretKey, "cn-beijing", "rtc", now), 401, "SignatureDoesNotMatch", 100010},
		{"X-Date 14 min old", vBody(1, info), signWith(DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now.Add(-14*time.Minute)), 200, "", 0},
		{"X-Date 16 min old", vBody(1, info), signWith(DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now.Add(-16*time.Minute)), 400, "InvalidTimestamp", 100006},
		{"X-Date 16 min ahead", vBody(1, info), signWith(DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now.Add(16*time.Minute)), 400, "InvalidTimestamp", 100006},
		{"body changed after signing", vBody(1, info), func(req *http.Request, b []byte) {
			signVolc(req, []byte(`{"AppId":1}`), DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now)
		}, 401, "SignatureDoesNotMatch", 100010},
		{"body changed, hash header dropped", vBody(1, info), func(req *http.Request, b []byte) {
			signVolc(req, []byte(`{"AppId":1}`), DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now)
			req.Header.Del("X-Content-Sha256")
		}, 401, "SignatureDoesNotMatch", 100010},
		{"x-date not signed", vBody(1, info), func(req *http.Request, b []byte) {
			signVolc(req, b, DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now)
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), ";x-date", "", 1))
		}, 401, "SignatureDoesNotMatch", 100010},
		{"signed for another path", vBody(1, info), func(req *http.Request, b []byte) {
			u := *req.URL
			req.URL.Path = "/"
			signVolc(req, b, DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", now)
			req.URL = &u
		}, 401, "SignatureDoesNotMatch", 100010},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			status, b := h.do(h.volcReq(context.Background(), tc.body, tc.sign))
			r := decode[vResp](t, b)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tc.status, b)
			}
			e := r.ResponseMetadata.Error
			if tc.code == "" {
				if e != nil || r.Result == nil || len(r.Result.FailedInfos) != 0 {
					t.Fatalf("unexpected failure: %s", b)
				}
				return
			}
			if e == nil || e.Code != tc.code || e.CodeN != tc.codeN || e.Message == "" {
				t.Fatalf("Error = %+v, want %s/%d", e, tc.code, tc.codeN)
			}
			if strings.Contains(string(b), DemoVolcSecretKey) {
				t.Fatal("response leaks the secret key")
			}
			if h.sim.Counters().StateEntries != 0 {
				t.Fatal("a rejected call changed state")
			}
		})
	}
	t.Run("other action", func(t *testing.T) {
		h := newHarness(t, nil)
		req := h.volcReq(context.Background(), vBody(1, info), nil)
		req.URL.RawQuery = "Action=AddFriend&Version=2020-12-01"
		status, b := h.do(req)
		if r := decode[vResp](t, b); status != 404 || r.ResponseMetadata.Error == nil || r.ResponseMetadata.Error.Code != "InvalidActionOrVersion" {
			t.Fatalf("HTTP %d %s", status, b)
		}
	})
}

func TestVolcFriendshipAndConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.RequireFriendship = true })
		h.sim.AddFriends(event.Volc, vApp, "1", "2")
		var wg sync.WaitGroup
		results := make([][]string, 2)
		for i := range results {
			wg.Go(func() {
				_, r := h.volc(vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"}, map[string]any{"FriendUserId": 3, "Alias": "b"}))
				for _, f := range r.Result.FailedInfos {
					results[i] = append(results[i], f.Code)
				}
			})
		}
		wg.Wait()
		slices.SortFunc(results, func(a, b []string) int { return len(a) - len(b) })
		// The applied call fails only the non-friend; the overlapping one
		// fails every item with UPDATE_FREQUENT.
		if !slices.Equal(results[0], []string{"NOT_FRIEND"}) || !slices.Equal(results[1], []string{"UPDATE_FREQUENT", "UPDATE_FREQUENT"}) {
			t.Fatalf("FailedInfos codes %v", results)
		}
		c := h.sim.Counters().Volc
		if c.Overlaps != 1 || c.Conflicts != 1 || c.ItemCodes["UPDATE_FREQUENT"] != 2 || c.ItemCodes["NOT_FRIEND"] != 1 {
			t.Fatalf("counters %+v", c)
		}
	})
}
