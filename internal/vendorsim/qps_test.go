package vendorsim

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestTencentQPSWindow: 201 calls in one instant against the 200/s budget:
// exactly the 201st is throttled with 60007, MaxWindow reports 201 and one
// call arrived over budget. One second later the window has room again.
func TestTencentQPSWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = -1 })
		var throttled []int
		for i := range 201 {
			r := h.tencent(tBody("u"+strconv.Itoa(i), tItem("f", "Tag_SNS_IM_Remark", "r")), nil)
			if r.ErrorCode == 60007 {
				throttled = append(throttled, i)
			} else if r.ErrorCode != 0 {
				t.Fatalf("call %d: %+v", i, r)
			}
		}
		if !slices.Equal(throttled, []int{200}) {
			t.Fatalf("throttled calls %v, want [200]", throttled)
		}
		b := h.sim.Counters().Tencent.Budgets["tencent:"+tApp]
		if b.Limit != 200 || b.Calls != 201 || b.Throttled != 1 || b.MaxWindow != 201 || b.OverBudgetWindows != 1 {
			t.Fatalf("budget %+v", b)
		}
		if len(b.PerSecond) != 1 || b.PerSecond[0].Calls != 201 || b.PerSecond[0].Unix != time.Now().Unix() {
			t.Fatalf("PerSecond %+v", b.PerSecond)
		}
		if c := h.sim.Counters().Tencent; c.Throttles != 1 || c.Codes["60007"] != 1 || c.Items != 200 {
			t.Fatalf("counters %+v", c)
		}

		// 999ms later the 200 admitted calls are still in the window.
		time.Sleep(999 * time.Millisecond)
		if r := h.tencent(tBody("late", tItem("f", "Tag_SNS_IM_Remark", "r")), nil); r.ErrorCode != 60007 {
			t.Fatalf("at +999ms: %+v", r)
		}
		time.Sleep(time.Millisecond)
		if r := h.tencent(tBody("later", tItem("f", "Tag_SNS_IM_Remark", "r")), nil); r.ErrorCode != 0 {
			t.Fatalf("at +1s: %+v", r)
		}
		b = h.sim.Counters().Tencent.Budgets["tencent:"+tApp]
		if b.MaxWindow != 202 || b.OverBudgetWindows != 2 || len(b.PerSecond) != 2 {
			t.Fatalf("budget after 1s %+v", b)
		}
	})
}

// TestQPSWindowAtTheBudget: a client pacing exactly at the budget is never
// throttled and MaxWindow equals the budget.
func TestQPSWindowAtTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = -1; c.TencentQPS = 10 })
		for i := range 35 {
			if r := h.tencent(tBody("u"+strconv.Itoa(i), tItem("f", "Tag_SNS_IM_Remark", "r")), nil); r.ErrorCode != 0 {
				t.Fatalf("call %d: %+v", i, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b := h.sim.Counters().Tencent.Budgets["tencent:"+tApp]
		if b.MaxWindow != 10 || b.OverBudgetWindows != 0 || b.Throttled != 0 {
			t.Fatalf("budget %+v", b)
		}
		var perSec []int64
		for _, s := range b.PerSecond {
			perSec = append(perSec, s.Calls)
		}
		if !slices.Equal(perSec, []int64{10, 10, 10, 5}) {
			t.Fatalf("per second %v", perSec)
		}
	})
}

func TestZegoQPSPerAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = -1 })
		count := func(action string, n int) (ok, throttled int) {
			for i := range n {
				var body any = zAlias("u"+strconv.Itoa(i), "f", "a")
				if action == APIZegoAttributes {
					body = zAttrs("u"+strconv.Itoa(i), "f", "k0", "a")
				}
				switch r := h.zego(action, body, nil); r.Code {
				case 0:
					ok++
				case 660300005:
					throttled++
				default:
					t.Fatalf("%s call %d: %+v", action, i, r)
				}
			}
			return ok, throttled
		}
		if ok, th := count(APIZegoAlias, 21); ok != 20 || th != 1 {
			t.Fatalf("alias: %d ok, %d throttled", ok, th)
		}
		if ok, th := count(APIZegoAttributes, 20); ok != 20 || th != 0 {
			t.Fatalf("attributes (own budget): %d ok, %d throttled", ok, th)
		}
		bs := h.sim.Counters().Zego.Budgets
		if bs["zego:"+zApp+":"+APIZegoAlias].MaxWindow != 21 || bs["zego:"+zApp+":"+APIZegoAttributes].MaxWindow != 20 {
			t.Fatalf("budgets %+v", bs)
		}
	})
}

func TestVolcQPS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = -1; c.VolcQPS = 5 })
		var statuses []int
		for i := range 6 {
			status, r := h.volc(vBody(int64(i+10), map[string]any{"FriendUserId": 1, "Alias": "a"}))
			statuses = append(statuses, status)
			if status == http.StatusTooManyRequests && (r.ResponseMetadata.Error == nil || r.ResponseMetadata.Error.Code != "FlowLimitExceeded.QPSOverLimit") {
				t.Fatalf("429 body %+v", r)
			}
		}
		if !slices.Equal(statuses, []int{200, 200, 200, 200, 200, 429}) {
			t.Fatalf("statuses %v", statuses)
		}
	})
	t.Run("unlimited by default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.WriteTime = -1 })
			for i := range 50 {
				if status, _ := h.volc(vBody(int64(i+10), map[string]any{"FriendUserId": 1, "Alias": "a"})); status != 200 {
					t.Fatalf("call %d: HTTP %d", i, status)
				}
			}
			if b := h.sim.Counters().Volc.Budgets["volc:"+DemoVolcAccessKey]; b.Limit != 0 || b.MaxWindow != 50 || b.OverBudgetWindows != 0 {
				t.Fatalf("budget %+v", b)
			}
		})
	})
}

// TestQPSCountsRejectedCalls: a call with a bad signature still spends the
// budget (the vendor received it), and a throttled call is answered before
// its signature is checked.
func TestQPSCountsRejectedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = -1; c.TencentQPS = 2 })
		bad := func(q url.Values) { q.Set("usersig", "garbage") }
		codes := []int{
			h.tencent(tBody("a", tItem("f", "Tag_SNS_IM_Remark", "r")), bad).ErrorCode,
			h.tencent(tBody("a", tItem("f", "Tag_SNS_IM_Remark", "r")), nil).ErrorCode,
			h.tencent(tBody("a", tItem("f", "Tag_SNS_IM_Remark", "r")), bad).ErrorCode,
		}
		if !slices.Equal(codes, []int{70003, 0, 60007}) {
			t.Fatalf("codes %v", codes)
		}
	})
}

func TestBudgetWindowRingGrowsAndSaturates(t *testing.T) {
	b := newBudget("x", 0)
	b.recvCap = 1000
	for i := range 1500 {
		b.arrive(int64(i), 0) // 1500 calls within one microsecond
	}
	s := b.snapshot()
	if s.MaxWindow != 1000 || !s.Saturated || s.Calls != 1500 {
		t.Fatalf("%+v", s)
	}
	b.arrive(int64(2*time.Second), 2)
	if s := b.snapshot(); s.MaxWindow != 1000 || s.PerSecond[len(s.PerSecond)-1].Calls != 1 {
		t.Fatalf("after the window moved: %+v", s)
	}
}

// TestTransportHonoursContext: RoundTrip returns when the request context
// ends even while the handler still applies the write.
func TestTransportHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.WriteTime = time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := h.c.Do(h.tencentReq(ctx, tBody("a", tItem("f", "Tag_SNS_IM_Remark", "r")), nil))
		if err == nil || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("err %v after %s", err, time.Since(start))
		}
		// The vendor still applies the write it received.
		time.Sleep(time.Second)
		if f, ok := h.sim.Friend("tencent", tApp, "a", "f"); !ok || f.Remark != "r" {
			t.Fatalf("state %+v %t", f, ok)
		}
	})
}

// TestConcurrentArrivalsKeepTimeOrder: calls recorded from many goroutines
// at once enter the window of received calls in the order of their times.
// A time read before waiting for the lock could be older than calls
// recorded meanwhile; it would then stay in the window too long and count
// a window over the limit that never happened.
func TestConcurrentArrivalsKeepTimeOrder(t *testing.T) {
	b := newBudget("x", 0)
	b.recvCap = 1 << 16
	epoch := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 500 {
				b.arriveNow(epoch)
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recvN != 32*500 {
		t.Fatalf("%d calls in the window, want all %d (they took under a second)", b.recvN, 32*500)
	}
	for i := 1; i < b.recvN; i++ {
		prev, cur := b.recv[(b.recvHead+i-1)%len(b.recv)], b.recv[(b.recvHead+i)%len(b.recv)]
		if cur < prev {
			t.Fatalf("call %d recorded at %d after call %d at %d: out of time order", i, cur, i-1, prev)
		}
	}
}
