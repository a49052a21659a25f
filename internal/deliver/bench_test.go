package deliver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/coalesce"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

// Benchmark shape: events for benchAccounts accounts with benchFriends
// friends each, every event a remark, one in eight also a group list, one
// in eight also an attribute. Rounds of benchRound events.
const (
	benchAccounts = 1000
	benchFriends  = 50
	benchRound    = 100_000
	benchCap      = 1000 // Tencent's per-call cap
)

// okSender splits by benchCap and answers OK without I/O or allocation.
type okSender struct{ ok []vendors.ItemResult }

func (s *okSender) Vendor() string { return "bench" }

func (s *okSender) Split(from string, items []vendors.Item) []vendors.Call {
	calls := make([]vendors.Call, 0, (len(items)+benchCap-1)/benchCap)
	for i := 0; i < len(items); i += benchCap {
		calls = append(calls, vendors.Call{API: "friend_update", Budget: "bench:1:friend_update", From: from,
			Items: items[i:min(i+benchCap, len(items))]})
	}
	return calls
}

func (s *okSender) Send(_ context.Context, call vendors.Call) (vendors.Result, error) {
	return vendors.Result{Items: s.ok[:len(call.Items)]}, nil
}

type nopLimiter struct{}

func (nopLimiter) Wait(context.Context, string, event.Lane) error { return nil }
func (nopLimiter) Throttled(string, time.Duration)                {}

// benchEvents returns one round of events, with versions from base.
func benchEvents(rng *rand.Rand) []*jobs.Envelope {
	froms := make([]string, benchAccounts)
	for i := range froms {
		froms[i] = fmt.Sprintf("user-%06d", i)
	}
	tos := make([]string, benchFriends)
	for i := range tos {
		tos[i] = fmt.Sprintf("friend-%06d", i)
	}
	envs := make([]*jobs.Envelope, benchRound)
	for i := range envs {
		e := &jobs.Envelope{Event: event.Event{
			App: "app1", From: froms[rng.IntN(benchAccounts)], To: tos[rng.IntN(benchFriends)],
			Remark: event.Ptr(fmt.Sprint("remark ", i)),
		}, Meta: jobs.Meta{Lane: event.LaneLive, Seq: uint64(i + 1)}}
		switch rng.IntN(8) {
		case 0:
			e.Event.Groups = &[]string{"friends", "work"}
		case 1:
			e.Event.Attrs = map[string]string{"level": fmt.Sprint(i % 10)}
		}
		e.Version = jobs.Version{TS: int64(1_000_000 + i), Seq: uint64(i + 1)}
		envs[i] = e
	}
	return envs
}

// BenchmarkCoalesceMergeChunk measures the worker's CPU path without I/O:
// coalesce by account, load versions (preloaded, in memory), merge newest
// per field, split into calls of up to 1000 items, a no-op OK Sender, raise
// versions. One op is one event.
//
// Sub-benchmarks: "Deliver" allocates the outcome slice per batch;
// "DeliverAppend" reuses pooled outcome slices (what a pipeline can do).
func BenchmarkCoalesceMergeChunk(b *testing.B) {
	b.Run("Deliver", func(b *testing.B) { benchCoalesceMergeChunk(b, false) })
	b.Run("DeliverAppend", func(b *testing.B) { benchCoalesceMergeChunk(b, true) })
}

func benchCoalesceMergeChunk(b *testing.B, reuse bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	envs := benchEvents(rng)
	ver := newMemVersions()
	ver.noRecord = true
	for _, e := range envs { // older versions of every field: nothing is superseded at load
		k := e.Key()
		for _, f := range e.Event.Fields() {
			ver.set(k, e.Event.To+"/"+f, jobs.Version{TS: 1, Seq: 1})
		}
	}
	s := &okSender{ok: vendors.Whole(benchCap, vendors.ItemResult{Class: vendors.OK, Code: "0"}).Items}
	d, err := New(Config{}, func(string) (Sender, bool) { return s, true }, nopLimiter{}, ver, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var outs sync.Pool // *[]jobs.Outcome
	flush := func(ctx context.Context, key jobs.Key, batch []*jobs.Envelope) {
		var out []jobs.Outcome
		if reuse {
			p, _ := outs.Get().(*[]jobs.Outcome)
			if p == nil {
				p = new([]jobs.Outcome)
			}
			out = d.DeliverAppend(ctx, key, batch, (*p)[:0])
			defer func() { *p = out; outs.Put(p) }()
		} else {
			out = d.Deliver(ctx, key, batch)
		}
		for i := range out {
			if out[i].Kind != jobs.Applied && out[i].Kind != jobs.Superseded {
				panic(fmt.Sprintf("outcome %+v", out[i]))
			}
		}
	}
	cfg := coalesce.Config{MaxSize: benchCap, MaxBuffered: benchRound, MaxKeys: benchAccounts}
	ctx := context.Background()
	newC := func() *coalesce.Coalescer[jobs.Key, *jobs.Envelope] {
		c, err := coalesce.New(cfg, flush)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	c := newC()
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchRound
		if j == 0 && i > 0 {
			// Drain the round, then make its events newer for the next one.
			if err := c.Close(ctx); err != nil {
				b.Fatal(err)
			}
			for _, e := range envs {
				e.Version.TS += benchRound
			}
			c = newC()
		}
		e := envs[j]
		if err := c.Add(ctx, e.Key(), e); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/event")
}

// BenchmarkMapInsert is the yardstick: the same events inserted into a
// plain map keyed by (app, from, to), a fresh map per round.
func BenchmarkMapInsert(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	envs := benchEvents(rng)
	type key struct {
		jobs.Key
		to string
	}
	var m map[key]*jobs.Envelope
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchRound
		if j == 0 {
			m = make(map[key]*jobs.Envelope)
		}
		e := envs[j]
		m[key{e.Key(), e.Event.To}] = e
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/event")
}

// cpuTime is the CPU time (user + system) this process has used: on a
// shared machine it measures the work done, where wall time also measures
// the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
