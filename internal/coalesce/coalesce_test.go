package coalesce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// flushed is one recorded flush.
type flushed struct {
	at    time.Duration // since the recorder started
	key   string
	batch []int
}

// recorder is a FlushFunc that records every batch, with an optional hook
// that runs inside the flush (to block it, or to call Defer).
type recorder struct {
	start time.Time
	hook  func(ctx context.Context, key string, batch []int)
	// top, if set, runs after hook and returns the batch the flush ends
	// with (a flush that tops its batch up); the record is updated.
	top func(ctx context.Context, key string, batch []int) []int

	mu       sync.Mutex
	got      []flushed
	flying   map[string]int
	maxPer   int // most flushes seen at once for one key
	cur      int
	maxTotal int // most flushes seen at once overall
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), flying: map[string]int{}}
}

func (r *recorder) flush(ctx context.Context, key string, batch []int) {
	r.mu.Lock()
	idx := len(r.got)
	r.got = append(r.got, flushed{at: time.Since(r.start), key: key, batch: slices.Clone(batch)})
	r.flying[key]++
	r.maxPer = max(r.maxPer, r.flying[key])
	r.cur++
	r.maxTotal = max(r.maxTotal, r.cur)
	r.mu.Unlock()
	if r.hook != nil {
		r.hook(ctx, key, batch)
	}
	if r.top != nil {
		batch = r.top(ctx, key, batch)
		r.mu.Lock()
		r.got[idx].batch = slices.Clone(batch)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.flying[key]--
	r.cur--
	r.mu.Unlock()
}

// peaks returns the most flushes seen at once for one key and overall.
func (r *recorder) peaks() (perKey, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxPer, r.maxTotal
}

func (r *recorder) flushes() []flushed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func newCoalescer(t *testing.T, cfg Config, r *recorder) *Coalescer[string, int] {
	t.Helper()
	c, err := New(cfg, r.flush)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustAdd(t *testing.T, c *Coalescer[string, int], key string, v int) {
	t.Helper()
	if err := c.Add(context.Background(), key, v); err != nil {
		t.Fatalf("Add(%q, %d): %v", key, v, err)
	}
}

func mustClose(t *testing.T, c *Coalescer[string, int]) {
	t.Helper()
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func wantFlushes(t *testing.T, got, want []flushed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d flushes %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].at != want[i].at || got[i].key != want[i].key || !slices.Equal(got[i].batch, want[i].batch) {
			t.Errorf("flush %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// seq adds values at the given offsets from now, sleeping in between.
func addAt(t *testing.T, c *Coalescer[string, int], key string, start time.Time, at ...time.Duration) {
	t.Helper()
	for i, d := range at {
		time.Sleep(time.Until(start.Add(d)))
		mustAdd(t, c, key, i)
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestGraceRenewedPerValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: time.Second}, r)
		// Each value arrives within the grace of the previous one: one batch,
		// 50ms after the last.
		addAt(t, c, "a", r.start, 0, ms(30), ms(60), ms(100))
		time.Sleep(ms(149) - time.Since(r.start))
		synctest.Wait()
		if n := len(r.flushes()); n != 0 {
			t.Fatalf("flushed %d times before the grace after the last value ran out", n)
		}
		time.Sleep(ms(200))
		wantFlushes(t, r.flushes(), []flushed{{at: ms(150), key: "a", batch: []int{0, 1, 2, 3}}})
		mustClose(t, c)
	})
}

func TestMaxDelayBoundsABusyKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(200)}, r)
		// A value every 30ms never lets the grace run out; max delay cuts
		// batches at 200ms after each batch's first value.
		var at []time.Duration
		for d := 0; d <= 300; d += 30 {
			at = append(at, ms(d))
		}
		addAt(t, c, "a", r.start, at...)
		time.Sleep(time.Second)
		wantFlushes(t, r.flushes(), []flushed{
			{at: ms(200), key: "a", batch: []int{0, 1, 2, 3, 4, 5, 6}}, // 0..180ms
			{at: ms(350), key: "a", batch: []int{7, 8, 9, 10}},         // 210..300ms, grace after 300
		})
		mustClose(t, c)
	})
}

func TestMaxSizeFlushesAtOnceAndCapsBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: time.Second, MaxSize: 3}, r)
		for i := range 7 {
			mustAdd(t, c, "a", i)
		}
		synctest.Wait()
		wantFlushes(t, r.flushes(), []flushed{
			{at: 0, key: "a", batch: []int{0, 1, 2}},
			{at: 0, key: "a", batch: []int{3, 4, 5}},
		})
		time.Sleep(time.Second)
		wantFlushes(t, r.flushes(), []flushed{
			{at: 0, key: "a", batch: []int{0, 1, 2}},
			{at: 0, key: "a", batch: []int{3, 4, 5}},
			{at: ms(50), key: "a", batch: []int{6}},
		})
		mustClose(t, c)
	})
}

func TestOneFlightPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		release := make(chan struct{})
		r.hook = func(_ context.Context, key string, _ []int) {
			if key == "slow" {
				<-release
			}
		}
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(200), MaxSize: 4}, r)
		mustAdd(t, c, "slow", 0)
		mustAdd(t, c, "slow", 1)
		time.Sleep(ms(60)) // the first batch is in flight and blocked
		for i := 2; i < 11; i++ {
			mustAdd(t, c, "slow", i) // reaches MaxSize twice, passes grace and max delay
			mustAdd(t, c, "fast", i)
			time.Sleep(ms(40))
		}
		time.Sleep(time.Second)
		got := r.flushes()
		var slow, fast []flushed
		for _, f := range got {
			if f.key == "slow" {
				slow = append(slow, f)
			} else {
				fast = append(fast, f)
			}
		}
		wantFlushes(t, slow, []flushed{{at: ms(50), key: "slow", batch: []int{0, 1}}})
		if len(fast) == 0 {
			t.Fatal("the fast key waited for the slow key's flight")
		}
		if st := c.Stats(); st.InFlight != 1 || st.Buffered != 9 || st.Keys != 1 {
			t.Errorf("Stats = %+v, want one flight, 9 buffered, 1 key", st)
		}
		releasedAt := time.Since(r.start)
		close(release)
		synctest.Wait()
		// The flight ended: the rest follows at once, MaxSize at a time.
		slow = nil
		for _, f := range r.flushes() {
			if f.key == "slow" {
				slow = append(slow, f)
			}
		}
		wantFlushes(t, slow, []flushed{
			{at: ms(50), key: "slow", batch: []int{0, 1}},
			{at: releasedAt, key: "slow", batch: []int{2, 3, 4, 5}},
			{at: releasedAt, key: "slow", batch: []int{6, 7, 8, 9}},
			{at: releasedAt, key: "slow", batch: []int{10}},
		})
		if perKey, _ := r.peaks(); perKey != 1 {
			t.Errorf("saw %d flushes of one key at once, want 1", perKey)
		}
		mustClose(t, c)
	})
}

func TestNextBatchWaitsForItsOwnDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		release := make(chan struct{})
		r.hook = func(context.Context, string, []int) { <-release }
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: time.Second}, r)
		mustAdd(t, c, "a", 0)
		time.Sleep(ms(60))
		mustAdd(t, c, "a", 1) // arrives during the flight at 60ms
		time.Sleep(ms(20))
		close(release) // flight ends at 80ms: the new batch is not due before 110ms
		time.Sleep(time.Second)
		wantFlushes(t, r.flushes(), []flushed{
			{at: ms(50), key: "a", batch: []int{0}},
			{at: ms(110), key: "a", batch: []int{1}},
		})
		mustClose(t, c)
	})
}

func TestDefer(t *testing.T) {
	t.Run("delays the next flush of a waiting key", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(100), MaxSize: 2}, r)
			mustAdd(t, c, "a", 0)
			c.Defer("a", ms(300))
			mustAdd(t, c, "a", 1) // MaxSize reached, still deferred
			mustAdd(t, c, "b", 0)
			time.Sleep(time.Second)
			wantFlushes(t, r.flushes(), []flushed{
				{at: ms(50), key: "b", batch: []int{0}},
				{at: ms(300), key: "a", batch: []int{0, 1}},
			})
			mustClose(t, c)
		})
	})
	t.Run("called during a flight delays the next batch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(100)}, r)
			r.hook = func(_ context.Context, key string, batch []int) {
				if batch[0] == 0 {
					time.Sleep(ms(10))
					c.Defer(key, ms(500)) // at 60ms: not before 560ms
				}
			}
			mustAdd(t, c, "a", 0)
			time.Sleep(ms(55))
			mustAdd(t, c, "a", 1)
			time.Sleep(time.Second)
			wantFlushes(t, r.flushes(), []flushed{
				{at: ms(50), key: "a", batch: []int{0}},
				{at: ms(560), key: "a", batch: []int{1}},
			})
			mustClose(t, c)
		})
	})
	t.Run("on an idle key applies to its next values", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(100)}, r)
			c.Defer("a", ms(200))
			if st := c.Stats(); st.Keys != 0 {
				t.Errorf("a deferred idle key counts as a key: %+v", st)
			}
			time.Sleep(ms(100))
			mustAdd(t, c, "a", 0)
			time.Sleep(time.Second)
			mustAdd(t, c, "a", 1) // the deferral has passed and is forgotten
			time.Sleep(time.Second)
			wantFlushes(t, r.flushes(), []flushed{
				{at: ms(200), key: "a", batch: []int{0}},
				{at: ms(1150), key: "a", batch: []int{1}},
			})
			c.mu.Lock()
			n := len(c.keys)
			c.mu.Unlock()
			if n != 0 {
				t.Errorf("%d entries left after everything flushed", n)
			}
			mustClose(t, c)
		})
	})
}

func TestBackpressure(t *testing.T) {
	t.Run("Add blocks at MaxBuffered until a flush completes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			release := make(chan struct{})
			r.hook = func(context.Context, string, []int) { <-release }
			c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(100), MaxSize: 2, MaxBuffered: 4}, r)
			for i := range 4 {
				mustAdd(t, c, "a", i) // [0 1] flies, [2 3] waits
			}
			done := make(chan error, 1)
			go func() { done <- c.Add(context.Background(), "b", 9) }()
			time.Sleep(time.Second)
			select {
			case err := <-done:
				t.Fatalf("Add returned %v with MaxBuffered values held", err)
			default:
			}
			if st := c.Stats(); st.Held != 4 || st.InFlight != 1 {
				t.Errorf("Stats = %+v, want 4 held, 1 in flight", st)
			}
			release <- struct{}{} // [0 1] completes; [2 3] starts
			synctest.Wait()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Add after room freed: %v", err)
				}
			default:
				t.Fatal("Add still blocked after a flush completed")
			}
			close(release)
			mustClose(t, c)
			var n int
			for _, f := range r.flushes() {
				n += len(f.batch)
			}
			if n != 5 {
				t.Errorf("flushed %d values, want 5", n)
			}
		})
	})
	t.Run("blocked Add returns the context error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			release := make(chan struct{})
			r.hook = func(context.Context, string, []int) { <-release }
			c := newCoalescer(t, Config{MaxSize: 2, MaxBuffered: 2}, r)
			mustAdd(t, c, "a", 0)
			mustAdd(t, c, "a", 1)
			ctx, cancel := context.WithTimeout(context.Background(), ms(300))
			defer cancel()
			start := time.Now()
			err := c.Add(ctx, "a", 2)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Add = %v, want context.DeadlineExceeded", err)
			}
			if waited := time.Since(start); waited != ms(300) {
				t.Errorf("Add returned after %v, want 300ms", waited)
			}
			close(release)
			mustClose(t, c)
		})
	})
	t.Run("Add for a new key blocks at MaxKeys", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: ms(100), MaxKeys: 2}, r)
			mustAdd(t, c, "a", 0)
			mustAdd(t, c, "b", 0)
			mustAdd(t, c, "a", 1) // an existing key is never blocked by MaxKeys
			start := time.Now()
			mustAdd(t, c, "c", 0) // waits for a or b to flush
			if waited := time.Since(start); waited != ms(50) {
				t.Errorf("Add of a third key waited %v, want 50ms (the first flush)", waited)
			}
			mustClose(t, c)
		})
	})
}

func TestMaxFlushesBoundsConcurrentFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.hook = func(context.Context, string, []int) { time.Sleep(ms(100)) }
		c := newCoalescer(t, Config{Grace: ms(10), MaxDelay: ms(10), MaxFlushes: 2}, r)
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			mustAdd(t, c, k, 0)
		}
		time.Sleep(time.Second)
		if _, total := r.peaks(); total != 2 {
			t.Errorf("saw %d flushes at once, want 2", total)
		}
		var at []time.Duration
		for _, f := range r.flushes() {
			at = append(at, f.at)
		}
		if want := []time.Duration{ms(10), ms(10), ms(110), ms(110), ms(210)}; !slices.Equal(at, want) {
			t.Errorf("flush times %v, want %v", at, want)
		}
		mustClose(t, c)
	})
}

func TestCloseDrainsAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.hook = func(_ context.Context, key string, _ []int) {
			if key == "slow" {
				time.Sleep(ms(500))
			}
		}
		c := newCoalescer(t, Config{Grace: time.Hour, MaxDelay: time.Hour, MaxSize: 3, MaxFlushes: 2}, r)
		for i := range 4 {
			mustAdd(t, c, "slow", i) // [0 1 2] flies now, [3] waits
		}
		for _, k := range []string{"a", "b", "c"} {
			mustAdd(t, c, k, 1)
			mustAdd(t, c, k, 2)
		}
		c.Defer("a", time.Hour) // Close ignores Defer
		time.Sleep(ms(100))
		if err := c.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if took := time.Since(r.start); took != ms(1000) {
			t.Errorf("Close returned at %v, want 1s (two slow flights)", took)
		}
		got := map[string][]int{}
		for _, f := range r.flushes() {
			got[f.key] = append(got[f.key], f.batch...)
		}
		want := map[string][]int{"slow": {0, 1, 2, 3}, "a": {1, 2}, "b": {1, 2}, "c": {1, 2}}
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				t.Errorf("key %s flushed %v, want %v", k, got[k], w)
			}
		}
		if st := c.Stats(); st != (Stats{}) {
			t.Errorf("Stats after Close = %+v, want zero", st)
		}
		if err := c.Add(context.Background(), "a", 1); !errors.Is(err, ErrClosed) {
			t.Errorf("Add after Close = %v, want ErrClosed", err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		var cancelled atomic.Int32
		r.hook = func(ctx context.Context, _ string, _ []int) {
			<-ctx.Done() // a flush that only ends when told to stop
			cancelled.Add(1)
		}
		c := newCoalescer(t, Config{Grace: time.Hour, MaxDelay: time.Hour, MaxSize: 2}, r)
		for i := range 5 {
			mustAdd(t, c, "a", i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), ms(200))
		defer cancel()
		err := c.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(r.start); d != ms(200) {
			t.Errorf("Close returned after %v, want 200ms", d)
		}
		synctest.Wait() // every flush ran with the cancelled context; nothing leaks
		got := r.flushes()
		var all []int
		for _, f := range got {
			all = append(all, f.batch...)
		}
		if !slices.Equal(all, []int{0, 1, 2, 3, 4}) || int(cancelled.Load()) != len(got) {
			t.Errorf("after the deadline flushed %v in %d flushes (%d cancelled), want 0..4 all cancelled",
				all, len(got), cancelled.Load())
		}
	})
}

func TestCloseReleasesBlockedAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		release := make(chan struct{})
		r.hook = func(context.Context, string, []int) { <-release }
		c := newCoalescer(t, Config{MaxSize: 1, MaxBuffered: 1}, r)
		mustAdd(t, c, "a", 0)
		done := make(chan error, 1)
		go func() { done <- c.Add(context.Background(), "a", 1) }()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- c.Close(context.Background()) }()
		synctest.Wait()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Add = %v, want ErrClosed", err)
		}
		close(release)
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// TestRandomInterleavings checks, for random arrival patterns and flush
// durations, that every value is flushed exactly once, in order per key,
// in batches of at most MaxSize, never two flushes of one key at once,
// and never later than the rules allow.
func TestRandomInterleavings(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 1))
				cfg := Config{
					Grace:       ms(10 + rng.IntN(40)),
					MaxDelay:    ms(60 + rng.IntN(100)),
					MaxSize:     1 + rng.IntN(8),
					MaxKeys:     2 + rng.IntN(6),
					MaxBuffered: 10 + rng.IntN(30),
					MaxFlushes:  1 + rng.IntN(4),
				}
				r := newRecorder()
				var durMu sync.Mutex
				r.hook = func(context.Context, string, []int) {
					durMu.Lock()
					d := ms(rng.IntN(80))
					durMu.Unlock()
					time.Sleep(d)
				}
				c := newCoalescer(t, cfg, r)
				const producers, perProducer = 6, 60
				var wg sync.WaitGroup
				for p := range producers {
					key := fmt.Sprint("k", p)
					durMu.Lock()
					gaps := make([]time.Duration, perProducer)
					for i := range gaps {
						gaps[i] = ms(rng.IntN(25))
					}
					durMu.Unlock()
					wg.Go(func() {
						for i, g := range gaps {
							time.Sleep(g)
							if err := c.Add(context.Background(), key, i); err != nil {
								t.Errorf("Add: %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
				mustClose(t, c)
				checkProducersFlushed(t, r, cfg, producers, perProducer)
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero takes defaults", Config{}, true},
		{"explicit", Config{Grace: ms(10), MaxDelay: ms(10), MaxSize: 1, MaxKeys: 1, MaxBuffered: 1, MaxFlushes: 1}, true},
		{"negative grace", Config{Grace: -1}, false},
		{"negative max delay", Config{MaxDelay: -1}, false},
		{"negative max size", Config{MaxSize: -1}, false},
		{"negative max keys", Config{MaxKeys: -1}, false},
		{"negative max buffered", Config{MaxBuffered: -1}, false},
		{"negative max flushes", Config{MaxFlushes: -1}, false},
		{"grace above max delay", Config{Grace: 2 * time.Second}, false},
		{"max buffered below max size", Config{MaxBuffered: 10, MaxSize: 20}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			c, nerr := New(tc.cfg, func(context.Context, string, []int) {})
			if (nerr == nil) != tc.ok {
				t.Fatalf("New() error = %v, want ok=%v", nerr, tc.ok)
			}
			if c != nil {
				if err := c.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if _, err := New[string, int](Config{}, nil); err == nil {
		t.Error("New with a nil flush func succeeded")
	}
}

func TestAddAllocations(t *testing.T) {
	c, err := New(Config{Grace: time.Hour, MaxDelay: time.Hour, MaxSize: 1 << 20, MaxBuffered: 1 << 20},
		func(context.Context, string, []int) {})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()
	allocs := testing.AllocsPerRun(10000, func() {
		if err := c.Add(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Add on a busy key: %v allocations per value, want 0 amortised", allocs)
	}
}

func BenchmarkAdd(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("account-", i)
	}
	c, err := New(Config{MaxSize: 1000, MaxBuffered: 1 << 20, MaxKeys: 1 << 20}, func(context.Context, string, []int) {})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := c.Add(ctx, keys[i%len(keys)], i); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// checkProducersFlushed checks what r saw after producers keys "k<p>"
// each added 0..perProducer-1 in order: every batch within MaxSize, each
// key's values flushed once and in order, at most one flush per key and
// MaxFlushes overall at a time.
func checkProducersFlushed(t *testing.T, r *recorder, cfg Config, producers, perProducer int) {
	t.Helper()
	got := map[string][]int{}
	for _, f := range r.flushes() {
		if len(f.batch) == 0 || len(f.batch) > cfg.MaxSize {
			t.Errorf("batch of %d values, MaxSize %d", len(f.batch), cfg.MaxSize)
		}
		got[f.key] = append(got[f.key], f.batch...)
	}
	for p := range producers {
		key := fmt.Sprint("k", p)
		want := make([]int, perProducer)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(got[key], want) {
			t.Errorf("key %s flushed %v, want 0..%d in order", key, got[key], perProducer-1)
		}
	}
	if perKey, total := r.peaks(); perKey > 1 || total > cfg.MaxFlushes {
		t.Errorf("%d flushes of one key and %d overall at once (MaxFlushes %d)", perKey, total, cfg.MaxFlushes)
	}
}
