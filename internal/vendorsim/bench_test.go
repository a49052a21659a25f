package vendorsim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
)

// The simulator is the target of the worker's benchmarks; these measure
// its own cost per call (handler only, no sockets), with every goroutine
// writing its own accounts.

func BenchmarkTencent100Items(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.WriteTime = -1; c.TencentQPS = -1; c.MaxFriends = 1 << 20 })
	items := make([]map[string]any, 100)
	for i := range items {
		items[i] = tItem("f"+strconv.Itoa(i), "Tag_SNS_IM_Remark", "remark", "Tag_SNS_IM_Group", []string{"g1"})
	}
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = bodyOf(tBody("u"+strconv.Itoa(i), items...))
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := h.tencentReq(b.Context(), bodies[n.Add(1)%int64(len(bodies))], nil)
			rec := httptest.NewRecorder()
			h.sim.Handler().ServeHTTP(rec, req)
			if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"ActionStatus":"OK"`)) {
				b.Fatalf("HTTP %d %s", rec.Code, rec.Body.Bytes())
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "items/s")
}

func BenchmarkZegoAlias(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.WriteTime = -1; c.ZegoQPS = -1; c.MaxFriends = 1 << 20 })
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := zAlias("u"+strconv.FormatInt(i%1000, 10), "f"+strconv.FormatInt(i%20, 10), "alias")
			req := h.zegoReq(b.Context(), APIZegoAlias, body, nil)
			rec := httptest.NewRecorder()
			h.sim.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("HTTP %d", rec.Code)
			}
		}
	})
}
