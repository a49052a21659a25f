package vendorsim

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/event"
)

// TestFaultErrorRateSeeded: a seeded error rate hits a reproducible subset
// of calls at about the configured rate, and those calls change nothing.
func TestFaultErrorRateSeeded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WriteTime = -1; c.TencentQPS = -1 })
	run := func(seed uint64) []int {
		h.sim.Reset()
		if err := h.sim.SetFaults(event.Tencent, FaultSpec{ErrorRates: map[string]float64{"30006": 0.3}, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		var hit []int
		for i := range 200 {
			r := h.tencent(tBody("u"+strconv.Itoa(i), tItem("f", "Tag_SNS_IM_Remark", "r")), nil)
			switch r.ErrorCode {
			case 30006:
				hit = append(hit, i)
				if _, ok := h.sim.Friend(event.Tencent, tApp, "u"+strconv.Itoa(i), "f"); ok {
					t.Fatal("a call failed by a fault changed state")
				}
			case 0:
			default:
				t.Fatalf("call %d: %+v", i, r)
			}
		}
		if c := h.sim.Counters().Tencent; c.Faults != int64(len(hit)) || c.Codes["30006"] != int64(len(hit)) {
			t.Fatalf("faults counter %d, codes %v, hits %d", c.Faults, c.Codes, len(hit))
		}
		return hit
	}
	a, b, other := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different faults")
	}
	if slices.Equal(a, other) {
		t.Fatal("different seeds, same faults")
	}
	if len(a) < 35 || len(a) > 85 {
		t.Fatalf("%d of 200 calls failed at rate 0.3", len(a))
	}
}

func TestFaultItemErrors(t *testing.T) {
	for _, tc := range []struct {
		vendor event.Vendor
		code   string
	}{{event.Tencent, "30006"}, {event.Volc, "INTERNAL_ERROR"}, {event.Zego, "660000001"}} {
		t.Run(string(tc.vendor), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.Faults = map[event.Vendor]FaultSpec{tc.vendor: {ItemErrorRates: map[string]float64{tc.code: 1}}}
			})
			var got []string
			switch tc.vendor {
			case event.Tencent:
				r := h.tencent(tBody("a", tItem("f1", "Tag_SNS_IM_Remark", "r"), tItem("f2", "Tag_SNS_IM_Remark", "r")), nil)
				if r.ErrorCode != 0 || len(r.Fail_Account) != 2 {
					t.Fatalf("%+v", r)
				}
				for _, it := range r.ResultItem {
					got = append(got, strconv.Itoa(it.ResultCode))
				}
			case event.Volc:
				_, r := h.volc(vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"}, map[string]any{"FriendUserId": 3, "Alias": "a"}))
				for _, f := range r.Result.FailedInfos {
					got = append(got, f.Code)
				}
			case event.Zego:
				r := h.zego(APIZegoAlias, zAlias("a", "f1", "x", "f2", "y"), nil)
				for _, e := range r.ErrorList {
					got = append(got, strconv.Itoa(e.SubCode))
				}
				if r.Code != 660000001 {
					t.Fatalf("all items failed but Code = %d", r.Code)
				}
				ra := h.zego(APIZegoAttributes, zAttrs("a", "f1", "k0", "x"), nil)
				if ra.Code != 660000001 || len(ra.FailKey) != 1 || ra.FailKey[0].SubCode != 660000001 {
					t.Fatalf("attributes %+v", ra)
				}
			}
			if !slices.Equal(got, []string{tc.code, tc.code}) {
				t.Fatalf("item codes %v", got)
			}
			if n := h.sim.Counters().StateEntries; n != 0 {
				t.Fatalf("%d entries stored", n)
			}
		})
	}
}

func TestFaultVolcWholeCallStatus(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{{"InternalError", 500}, {"FlowLimitExceeded.QPSOverLimit", 429}, {"InvalidParameter.Foo", 400}, {"ServiceUnavailable", 503}} {
		t.Run(tc.code, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.Faults = map[event.Vendor]FaultSpec{event.Volc: {ErrorRates: map[string]float64{tc.code: 1}}}
			})
			status, r := h.volc(vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"}))
			if status != tc.status || r.ResponseMetadata.Error == nil || r.ResponseMetadata.Error.Code != tc.code || r.ResponseMetadata.Error.CodeN == 0 {
				t.Fatalf("HTTP %d %+v", status, r.ResponseMetadata.Error)
			}
		})
	}
}

func TestFaultHTTP5xx(t *testing.T) {
	for _, status := range []int{0, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			h := newHarness(t, nil)
			if err := h.sim.SetFaults(event.Zego, FaultSpec{HTTP5xxRate: 1, HTTPStatus: status}); err != nil {
				t.Fatal(err)
			}
			got, b := h.do(h.zegoReq(context.Background(), APIZegoAlias, zAlias("a", "b", "c"), nil))
			want := cmp.Or(status, 502)
			if got != want || !strings.Contains(string(b), "injected") {
				t.Fatalf("HTTP %d %q, want %d", got, b, want)
			}
			if c := h.sim.Counters().Zego; c.Faults != 1 || c.Codes["http_"+strconv.Itoa(want)] != 1 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

func TestFaultOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		if err := h.sim.SetFaults(event.Tencent, FaultSpec{OutageFor: Duration(10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		req := func() int {
			status, _ := h.do(h.tencentReq(context.Background(), tBody("a", tItem("f", "Tag_SNS_IM_Remark", "r")), nil))
			return status
		}
		if s := req(); s != 503 {
			t.Fatalf("during outage HTTP %d", s)
		}
		time.Sleep(9 * time.Second)
		if s := req(); s != 503 {
			t.Fatalf("at +9s HTTP %d", s)
		}
		time.Sleep(time.Second)
		if s := req(); s != 200 {
			t.Fatalf("after outage HTTP %d", s)
		}
		// A window in the future.
		now := time.Now()
		h.sim.SetFaults(event.Tencent, FaultSpec{Outages: []Outage{{From: now.Add(time.Minute), Until: now.Add(2 * time.Minute)}}})
		if s := req(); s != 200 {
			t.Fatalf("before window HTTP %d", s)
		}
		time.Sleep(time.Minute)
		if s := req(); s != 503 {
			t.Fatalf("in window HTTP %d", s)
		}
	})
}

func TestFaultTimeoutAndLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.sim.SetFaults(event.Volc, FaultSpec{TimeoutRate: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := h.c.Do(h.volcReq(ctx, vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"}), nil))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("err %v after %s", err, time.Since(start))
		}
		synctest.Wait() // the hung handler has returned
		if c := h.sim.Counters(); c.Volc.Codes["timeout"] != 1 || c.StateEntries != 0 {
			t.Fatalf("counters %+v", c)
		}

		h.sim.SetFaults(event.Volc, FaultSpec{Latency: Duration(200 * time.Millisecond), Jitter: Duration(100 * time.Millisecond), Seed: 3})
		for range 5 {
			start = time.Now()
			if status, _ := h.volc(vBody(1, map[string]any{"FriendUserId": 2, "Alias": "a"})); status != 200 {
				t.Fatalf("HTTP %d", status)
			}
			// latency + jitter + WriteTime (5ms)
			if el := time.Since(start); el < 205*time.Millisecond || el >= 305*time.Millisecond {
				t.Fatalf("call took %s", el)
			}
		}
	})
}

func TestFaultSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vendor event.Vendor
		spec   FaultSpec
		ok     bool
	}{
		{"zero", event.Tencent, FaultSpec{}, true},
		{"volc string code", event.Volc, FaultSpec{ErrorRates: map[string]float64{"InternalError": 0.5}}, true},
		{"rate over 1", event.Tencent, FaultSpec{ErrorRates: map[string]float64{"30006": 1.5}}, false},
		{"rates sum over 1", event.Tencent, FaultSpec{ErrorRates: map[string]float64{"30006": 0.6, "30007": 0.6}}, false},
		{"tencent code not a number", event.Tencent, FaultSpec{ErrorRates: map[string]float64{"busy": 0.1}}, false},
		{"code 0", event.Zego, FaultSpec{ItemErrorRates: map[string]float64{"0": 0.1}}, false},
		{"status 404", event.Zego, FaultSpec{HTTP5xxRate: 0.1, HTTPStatus: 404}, false},
		{"negative latency", event.Zego, FaultSpec{Latency: -1}, false},
		{"empty outage", event.Zego, FaultSpec{Outages: []Outage{{}}}, false},
		{"unknown vendor", "wechat", FaultSpec{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if err := h.sim.SetFaults(tc.vendor, tc.spec); (err == nil) != tc.ok {
				t.Fatalf("SetFaults err = %v, want ok %t", err, tc.ok)
			}
		})
	}
}
