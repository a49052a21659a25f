package vendorsim

import (
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

func TestZegoAlias(t *testing.T) {
	h := newHarness(t, nil)
	r := h.zego(APIZegoAlias, zAlias("u1", "u2", "Two", "u3", "Three"), nil)
	if r.Code != 0 || len(r.ErrorList) != 0 || r.RequestId == "" {
		t.Fatalf("response %+v", r)
	}
	if f := h.friend(event.Zego, zApp, "u1", "u3"); f.Remark != "Three" {
		t.Fatalf("u3 = %+v", f)
	}

	// Partial: Code 0 and ErrorList with SubCodes.
	r = h.zego(APIZegoAlias, zAlias("u1",
		"u2", "ok",
		strings.Repeat("x", 33), "a",
		"u4", strings.Repeat("a", 257),
		"u1", "self",
		"bad/id", "a",
	), nil)
	if r.Code != 0 {
		t.Fatalf("Code %d %s", r.Code, r.Message)
	}
	var got []string
	for _, e := range r.ErrorList {
		got = append(got, e.UserId[:min(len(e.UserId), 6)]+":"+strconv.Itoa(e.SubCode))
	}
	want := []string{"xxxxxx:660000012", "u4:660800021", "u1:660800033", "bad/id:660000002"}
	if !slices.Equal(got, want) {
		t.Fatalf("ErrorList %v, want %v", got, want)
	}
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Remark != "ok" || f.Updates != 2 {
		t.Fatalf("u2 = %+v", f)
	}

	// Every item failed: Code is non-zero and ErrorList is given.
	r = h.zego(APIZegoAlias, zAlias("u1", "u5", strings.Repeat("a", 257)), nil)
	if r.Code != 660800021 || len(r.ErrorList) != 1 {
		t.Fatalf("all failed: %+v", r)
	}
	// An absent alias leaves the alias; "" clears it.
	h.zego(APIZegoAlias, map[string]any{"FromUserId": "u1", "UserIds": []any{map[string]any{"UserId": "u2"}}}, nil)
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Remark != "ok" {
		t.Fatalf("absent alias changed u2: %+v", f)
	}
	h.zego(APIZegoAlias, zAlias("u1", "u2", ""), nil)
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Remark != "" {
		t.Fatalf("\"\" did not clear: %+v", f)
	}
}

func TestZegoAttributes(t *testing.T) {
	h := newHarness(t, nil)
	r := h.zego(APIZegoAttributes, zAttrs("u1", "u2", "k0", "a", "k4", "b"), nil)
	if r.Code != 0 || len(r.FailKey) != 0 {
		t.Fatalf("response %+v", r)
	}
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Attrs["k0"] != "a" || f.Attrs["k4"] != "b" {
		t.Fatalf("u2 = %+v", f)
	}
	// Partial: an invalid key fails in FailKey, the others apply.
	r = h.zego(APIZegoAttributes, zAttrs("u1", "u2", "k1", "c", "k9", "x", "k0", ""), nil)
	if r.Code != 0 || len(r.FailKey) != 1 || r.FailKey[0].Key != "k9" || r.FailKey[0].SubCode != 660800023 {
		t.Fatalf("partial %+v", r)
	}
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Attrs["k1"] != "c" || f.Attrs["k4"] != "b" || len(f.Attrs) != 2 {
		t.Fatalf("after partial u2 = %+v", f)
	}
	// The friends alias and attributes share one Friend.
	h.zego(APIZegoAlias, zAlias("u1", "u2", "Two"), nil)
	if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Remark != "Two" || f.Attrs["k1"] != "c" {
		t.Fatalf("u2 = %+v", f)
	}
}

func TestZegoWholeCallErrors(t *testing.T) {
	ids := func(n int) map[string]any {
		var pairs []string
		for i := range n {
			pairs = append(pairs, "f"+strconv.Itoa(i), "a")
		}
		return zAlias("u1", pairs...)
	}
	now := time.Now()
	cases := []struct {
		name   string
		action string
		body   any
		mod    func(url.Values)
		code   int
		sigErr bool
	}{
		{"20 aliases", APIZegoAlias, ids(20), nil, 0, false},
		{"21 aliases", APIZegoAlias, ids(21), nil, 660800019, false},
		{"duplicate UserId", APIZegoAlias, zAlias("u1", "u2", "a", "u2", "b"), nil, 660800022, false},
		{"no UserIds", APIZegoAlias, map[string]any{"FromUserId": "u1"}, nil, 660000002, false},
		{"FromUserId over 32 bytes", APIZegoAlias, zAlias(strings.Repeat("u", 33), "u2", "a"), nil, 660000012, false},
		{"FriendAlias a number", APIZegoAlias, map[string]any{"FromUserId": "u1", "UserIds": []any{map[string]any{"UserId": "u2", "FriendAlias": 5}}}, nil, 660000002, false},
		{"body not JSON", APIZegoAlias, "nope", nil, 660000002, false},
		{"5 attributes", APIZegoAttributes, zAttrs("u1", "u2", "k0", "a", "k1", "a", "k2", "a", "k3", "a", "k4", "a"), nil, 0, false},
		{"6 attributes", APIZegoAttributes, zAttrs("u1", "u2", "k0", "a", "k1", "a", "k2", "a", "k3", "a", "k4", "a", "k0", "b"), nil, 660800023, false},
		{"duplicate key", APIZegoAttributes, zAttrs("u1", "u2", "k0", "a", "k0", "b"), nil, 660800032, false},
		{"key+value 1024 bytes", APIZegoAttributes, zAttrs("u1", "u2", "k0", strings.Repeat("v", 1022)), nil, 0, false},
		{"key+value 1025 bytes", APIZegoAttributes, zAttrs("u1", "u2", "k0", strings.Repeat("v", 1021), "k1", "ab"), nil, 660800024, false},
		{"only invalid keys", APIZegoAttributes, zAttrs("u1", "u2", "kx", "a"), nil, 660800023, false},
		{"attributes for self", APIZegoAttributes, zAttrs("u1", "u1", "k0", "a"), nil, 660800033, false},
		{"Action 1", APIZegoAttributes, map[string]any{"FromUserId": "u1", "UserId": "u2", "Action": 1, "Attributes": []any{map[string]any{"Key": "k0", "Value": "a"}}}, nil, 660000002, false},
		{"unknown Action", "DeleteFriends", zAlias("u1", "u2", "a"), nil, 100000006, false},
		{"AppId missing", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Del("AppId") }, 100000001, false},
		{"unknown AppId", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Set("AppId", "999") }, 3, true},
		{"nonce missing", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Del("SignatureNonce") }, 100000007, false},
		{"Timestamp missing", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Del("Timestamp") }, 100000002, false},
		{"Timestamp not a number", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Set("Timestamp", "x") }, 100000003, false},
		{"SignatureVersion 1.0", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Set("SignatureVersion", "1.0") }, 100000009, false},
		{"Signature missing", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Del("Signature") }, 100000008, false},
		{"wrong secret", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) {
			q.Set("Signature", zegoQuery(DemoZegoAppID, "other", APIZegoAlias, "n", now.Unix()).Get("Signature"))
		}, 100000005, true},
		{"nonce changed after signing", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) { q.Set("SignatureNonce", "0000000000000000") }, 100000005, true},
		{"Timestamp 11 min old", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) {
			for k, v := range zegoQuery(DemoZegoAppID, DemoZegoServerSecret, APIZegoAlias, "n", now.Add(-11*time.Minute).Unix()) {
				q[k] = v
			}
		}, 100000004, true},
		{"Timestamp 9 min ahead", APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) {
			for k, v := range zegoQuery(DemoZegoAppID, DemoZegoServerSecret, APIZegoAlias, "n", now.Add(9*time.Minute).Unix()) {
				q[k] = v
			}
		}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.zego(tc.action, tc.body, tc.mod)
			if r.Code != tc.code {
				t.Fatalf("Code = %d (%s), want %d", r.Code, r.Message, tc.code)
			}
			c := h.sim.Counters()
			if tc.code == 0 {
				if c.StateEntries == 0 {
					t.Fatal("nothing stored")
				}
				return
			}
			if c.StateEntries != 0 {
				t.Fatal("a rejected call changed state")
			}
			if got := c.Zego.SigFailures == 1; got != tc.sigErr {
				t.Fatalf("SigFailures = %d", c.Zego.SigFailures)
			}
		})
	}
}

func TestZegoFriendship(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireFriendship = true })
	h.sim.AddFriends(event.Zego, zApp, "u1", "u2")
	r := h.zego(APIZegoAlias, zAlias("u1", "u2", "a", "u3", "b"), nil)
	if r.Code != 0 || len(r.ErrorList) != 1 || r.ErrorList[0].UserId != "u3" || r.ErrorList[0].SubCode != 660800034 {
		t.Fatalf("alias %+v", r)
	}
	if r := h.zego(APIZegoAttributes, zAttrs("u1", "u3", "k0", "a"), nil); r.Code != 660800034 {
		t.Fatalf("attributes %+v", r)
	}
	if _, ok := h.sim.Friend(event.Zego, zApp, "u1", "u3"); ok {
		t.Fatal("non-friend stored")
	}
}

// TestZegoOverlap: ZEGO documents no conflict code: an overlapping write
// is applied and counted, or answered with ZegoConflictCode when set. The
// alias and attributes APIs share the account.
func TestZegoOverlap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		wantCode []int
		updates  int
	}{
		{"counted only", 0, []int{0, 0}, 2},
		{"answered with ZegoConflictCode", ZegoBusinessError, []int{0, ZegoBusinessError}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, func(c *Config) { c.ZegoConflictCode = tc.code })
				var wg sync.WaitGroup
				codes := make([]int, 2)
				wg.Go(func() { codes[0] = h.zego(APIZegoAlias, zAlias("u1", "u2", "a"), nil).Code })
				wg.Go(func() { codes[1] = h.zego(APIZegoAttributes, zAttrs("u1", "u2", "k0", "v"), nil).Code })
				wg.Wait()
				slices.Sort(codes)
				if !slices.Equal(codes, tc.wantCode) {
					t.Fatalf("codes %v, want %v", codes, tc.wantCode)
				}
				c := h.sim.Counters().Zego
				if c.Overlaps != 1 || c.Conflicts != int64(min(tc.code, 1)) {
					t.Fatalf("overlaps %d conflicts %d", c.Overlaps, c.Conflicts)
				}
				if f := h.friend(event.Zego, zApp, "u1", "u2"); f.Updates != tc.updates {
					t.Fatalf("updates %d, want %d", f.Updates, tc.updates)
				}
			})
		})
	}
}
