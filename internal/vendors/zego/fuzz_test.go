package zego

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// FuzzDecide feeds arbitrary answers to the response mapping: it must never
// panic, must answer every item or fail the whole call with a classified
// *vendors.Error, and must never call a failure OK.
func FuzzDecide(f *testing.F) {
	seeds := []string{
		seedSample,
		`{"Code":0,"Message":"success","RequestId":"1"}`,
		`{"Code":0,"ErrorList":[]}`,
		`{"Code":660300005}`,
		`{"Code":660000001,"ErrorList":[{"UserId":"u0","SubCode":660800034}]}`,
		`{"Code":0,"FailKey":[{"Key":"k0","SubCode":660800024},{"Key":"k1","SubCode":660000001}]}`,
		`{"Code":660300005,"FailKey":[{"Key":"k0"}]}`,
		`{"Code":0,"ErrorList":[{"UserId":"u1"}]}`,
		`{"Code":"0"}`,
		`{"Code":1e3}`,
		`{"Code":-9223372036854775808,"ErrorList":null}`,
		`{}`, `null`, `[]`, ``, `{"Code":0,"ErrorList":[`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), 200, []byte(s), "", uint8(3))
	}
	f.Add(uint8(0), 429, []byte(``), "7", uint8(1))
	f.Add(uint8(1), 503, []byte(`{"Code":1}`), "Wed, 21 Oct 2015 07:28:00 GMT", uint8(1))
	f.Add(uint8(0), 302, []byte(`<html/>`), "-5", uint8(2))

	now := time.Date(2015, 10, 21, 7, 27, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, sel uint8, status int, body []byte, ra string, n uint8) {
		call := vendors.Call{API: APIUpdateFriendsAlias, From: "me"}
		if sel%2 == 1 {
			call.API = APIUpdateFriendAttributes
		}
		for i := range int(n % 25) {
			call.Items = append(call.Items, vendors.Item{Ref: i, To: "u" + strconv.Itoa(i%7),
				Remark: str("r"), Attrs: map[string]string{"k0": "a", "k" + strconv.Itoa(i%5): "b"}})
		}
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		res, err := decide(call, status, h, body, now)
		if err != nil {
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *vendors.Error", err, err)
			}
			if ve.Class == vendors.OK || ve.Vendor != VendorName || ve.API != call.API || ve.HTTPStatus != status {
				t.Fatalf("bad whole-call error %+v", ve)
			}
			if ve.Class == vendors.Throttled && ve.RetryAfter <= 0 {
				t.Fatalf("throttled without a wait: %+v", ve)
			}
			if ve.RetryAfter < 0 || ve.RetryAfter > time.Hour {
				t.Fatalf("RetryAfter %s out of range", ve.RetryAfter)
			}
			if len(res.Items) != 0 {
				t.Fatalf("error with %d item results", len(res.Items))
			}
			checkText(t, ve.Message)
			return
		}
		if status != http.StatusOK {
			t.Fatalf("HTTP %d mapped to item results", status)
		}
		if len(res.Items) != len(call.Items) {
			t.Fatalf("%d results for %d items", len(res.Items), len(call.Items))
		}
		for i, r := range res.Items {
			if r.Code == "" {
				t.Fatalf("item %d has no code: %+v", i, r)
			}
			if r.Class == vendors.OK && r.Code != "0" {
				t.Fatalf("item %d OK with code %s", i, r.Code)
			}
			if r.Class == vendors.OK && r.Message != "" {
				t.Fatalf("item %d OK with a message %q", i, r.Message)
			}
			checkText(t, r.Message)
		}
	})
}

func checkText(t *testing.T, s string) {
	t.Helper()
	if len(s) > maxMessageBytes+len("…") {
		t.Fatalf("message of %d bytes", len(s))
	}
}

// FuzzSplit checks that any mix of remarks and attributes splits into calls
// within ZEGO's limits that together carry exactly the input.
func FuzzSplit(f *testing.F) {
	f.Add(uint8(45), uint16(600), uint16(600), uint8(0), uint8(0b11))
	f.Add(uint8(3), uint16(1020), uint16(0), uint8(30), uint8(0b10))
	f.Add(uint8(0), uint16(0), uint16(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, n uint8, l0, l1 uint16, maxAlias uint8, mode uint8) {
		cfg := testConfig()
		cfg.MaxAliasBatch = int(maxAlias % 51)
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var items []vendors.Item
		for i := range int(n % 80) {
			it := vendors.Item{Ref: i, To: "u" + strconv.Itoa(i%9)}
			if mode&1 != 0 && i%3 != 2 {
				it.Remark = str("r" + strconv.Itoa(i))
			}
			if mode&2 != 0 && i%2 == 0 {
				it.Attrs = map[string]string{}
				for k := range 1 + i%5 {
					size := int(l0 % 1100)
					if k%2 == 1 {
						size = int(l1 % 1100)
					}
					it.Attrs["k"+strconv.Itoa(k)] = string(make([]byte, size))
				}
			}
			items = append(items, it)
		}
		checkSplit(t, cmpOr(cfg.MaxAliasBatch, DefaultMaxAliasBatch), "me", items, c.Split("me", items))
	})
}
