package coalesce

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestTopTakesWhatArrivedDuringTheFlush: a flush that waits (as for a rate
// limit token) and then tops up sends what arrived meanwhile in the same
// batch, up to MaxSize; the rest forms the next batch.
func TestTopTakesWhatArrivedDuringTheFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: time.Second, MaxSize: 5}, r)
		r.hook = func(context.Context, string, []int) { time.Sleep(ms(100)) } // the wait
		r.top = func(_ context.Context, key string, batch []int) []int { return c.Top(key, batch) }
		mustAdd(t, c, "a", 0)
		time.Sleep(ms(60)) // flushed at 50ms, waiting until 150ms
		for v := 1; v <= 6; v++ {
			mustAdd(t, c, "a", v)
		}
		synctest.Wait()
		if st := c.Stats(); st.Buffered != 6 || st.Held != 7 {
			t.Fatalf("during the wait: %+v, want 6 buffered and 7 held", st)
		}
		time.Sleep(ms(200))
		// 0 plus four that arrived (MaxSize 5); 5 and 6 in the next batch,
		// due at once (their grace ran out during the flight).
		wantFlushes(t, r.flushes(), []flushed{
			{at: ms(50), key: "a", batch: []int{0, 1, 2, 3, 4}},
			{at: ms(150), key: "a", batch: []int{5, 6}},
		})
		if st := c.Stats(); st.Held != 0 || st.Buffered != 0 || st.InFlight != 0 {
			t.Errorf("after the flushes: %+v, want nothing held", st)
		}
		mustClose(t, c)
	})
}

// TestTopOutsideItsFlight: Top for a key without a running flush, or with
// nothing buffered, returns the batch unchanged and takes nothing.
func TestTopOutsideItsFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := newCoalescer(t, Config{Grace: ms(50), MaxDelay: time.Second, MaxSize: 10}, r)
		inFlight := make(chan []int, 1)
		r.top = func(_ context.Context, key string, batch []int) []int {
			b := c.Top(key, batch) // nothing arrived
			inFlight <- slices.Clone(b)
			return b
		}
		mustAdd(t, c, "b", 7)
		if got := c.Top("b", []int{1}); !slices.Equal(got, []int{1}) {
			t.Errorf("Top of a key that is not flying = %v, want [1]", got)
		}
		if got := c.Top("nobody", nil); got != nil {
			t.Errorf("Top of an unknown key = %v, want nil", got)
		}
		time.Sleep(ms(100))
		wantFlushes(t, r.flushes(), []flushed{{at: ms(50), key: "b", batch: []int{7}}})
		if got := <-inFlight; !slices.Equal(got, []int{7}) {
			t.Errorf("Top with nothing buffered = %v, want [7]", got)
		}
		mustClose(t, c)
	})
}

// holdSwitch is a HoldFunc whose groups are held while switched on; it
// counts how often it was asked.
type holdSwitch struct {
	mu    sync.Mutex
	on    map[int]bool
	group func(key string) int
	asked atomic.Int64
	held  atomic.Int64 // answers "hold"
}

func (h *holdSwitch) hold(key string, buffered []int) (int, bool) {
	h.asked.Add(1)
	if len(buffered) == 0 {
		panic("HoldFunc asked about a key without values")
	}
	g := h.group(key)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.on[g] {
		h.held.Add(1)
	}
	return g, h.on[g]
}

func (h *holdSwitch) set(g int, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on[g] = on
}

func newHoldSwitch() *holdSwitch {
	return &holdSwitch{on: map[int]bool{}, group: func(key string) int { return int(key[0]) }}
}

func TestHoldWaitsForRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		h := newHoldSwitch()
		c, err := New(Config{Grace: ms(50), MaxDelay: ms(200), MaxSize: 100, MaxHold: time.Second}, r.flush, WithHold(h.hold))
		if err != nil {
			t.Fatal(err)
		}
		h.set('a', true)
		// Values of "a1" every 100ms: grace and max delay pass, the hold
		// keeps them. "b1" (another group) flushes as usual.
		mustAdd(t, c, "b1", 100)
		for v := range 5 {
			mustAdd(t, c, "a1", v)
			time.Sleep(ms(100))
		}
		synctest.Wait()
		if st := c.Stats(); st.Holding != 1 || st.Buffered != 5 {
			t.Fatalf("stats %+v, want one key holding 5 values", st)
		}
		c.Release('a') // still switched on: asked again, held again
		synctest.Wait()
		if n := len(r.flushes()); n != 1 {
			t.Fatalf("%d flushes after a Release the HoldFunc refused, want 1 (b1)", n)
		}
		h.set('a', false)
		c.Release('a')
		synctest.Wait()
		wantFlushes(t, r.flushes(), []flushed{
			{at: ms(50), key: "b1", batch: []int{100}},
			{at: ms(500), key: "a1", batch: []int{0, 1, 2, 3, 4}},
		})
		if st := c.Stats(); st.Holding != 0 {
			t.Errorf("stats %+v, want nothing holding", st)
		}
		mustClose(t, c)
	})
}

func TestHoldBounds(t *testing.T) {
	t.Run("max hold", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			h := newHoldSwitch()
			h.set('a', true)
			c, err := New(Config{Grace: ms(50), MaxDelay: ms(200), MaxSize: 100, MaxHold: ms(700)}, r.flush, WithHold(h.hold))
			if err != nil {
				t.Fatal(err)
			}
			mustAdd(t, c, "a", 1)
			time.Sleep(ms(300))
			mustAdd(t, c, "a", 2)
			time.Sleep(time.Second)
			wantFlushes(t, r.flushes(), []flushed{{at: ms(700), key: "a", batch: []int{1, 2}}})
			mustClose(t, c)
		})
	})
	t.Run("max size", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			h := newHoldSwitch()
			h.set('a', true)
			c, err := New(Config{Grace: ms(50), MaxDelay: ms(200), MaxSize: 3}, r.flush, WithHold(h.hold))
			if err != nil {
				t.Fatal(err)
			}
			mustAdd(t, c, "a", 1)
			mustAdd(t, c, "a", 2)
			time.Sleep(ms(500))
			mustAdd(t, c, "a", 3) // full: flushed whatever the hold says
			synctest.Wait()
			wantFlushes(t, r.flushes(), []flushed{{at: ms(500), key: "a", batch: []int{1, 2, 3}}})
			mustClose(t, c)
		})
	})
	t.Run("close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			h := newHoldSwitch()
			h.set('a', true)
			c, err := New(Config{Grace: ms(50), MaxDelay: ms(200)}, r.flush, WithHold(h.hold))
			if err != nil {
				t.Fatal(err)
			}
			mustAdd(t, c, "a", 1)
			time.Sleep(ms(300))
			mustClose(t, c) // drains held keys at once
			wantFlushes(t, r.flushes(), []flushed{{at: ms(300), key: "a", batch: []int{1}}})
		})
	})
	t.Run("add waiting for room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			h := newHoldSwitch()
			h.set('a', true)
			c, err := New(Config{Grace: ms(50), MaxDelay: ms(200), MaxSize: 4, MaxBuffered: 4}, r.flush, WithHold(h.hold))
			if err != nil {
				t.Fatal(err)
			}
			mustAdd(t, c, "a1", 1)
			mustAdd(t, c, "a2", 2)
			mustAdd(t, c, "a3", 3)
			mustAdd(t, c, "a4", 4)
			time.Sleep(ms(300))
			if st := c.Stats(); st.Holding != 4 {
				t.Fatalf("stats %+v, want 4 keys holding", st)
			}
			// Full: the Add must not wait for MaxHold; the held keys flush.
			mustAdd(t, c, "a5", 5)
			if d := time.Since(r.start); d != ms(300) {
				t.Errorf("Add waited until %v, want 300ms", d)
			}
			synctest.Wait()
			if n := len(r.flushes()); n != 4 {
				t.Errorf("%d flushes, want the 4 held keys", n)
			}
			mustClose(t, c)
		})
	})
}

// TestRandomTopAndHold is TestRandomInterleavings with flushes that top
// their batch up after a random wait and a HoldFunc switched on and off
// at random: every value is still flushed exactly once, in order per key,
// in batches of at most MaxSize, never two flushes of one key at once,
// and no key is held beyond MaxHold.
func TestRandomTopAndHold(t *testing.T) {
	var seedsHolding atomic.Int64
	t.Cleanup(func() {
		// Seeds with little room keep Adds waiting (no holds then); most
		// must have held keys, or the test proves nothing about holds.
		if n := seedsHolding.Load(); n < 10 {
			t.Errorf("only %d of 20 seeds held a key", n)
		}
	})
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 2))
				var rngMu sync.Mutex
				intn := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }
				cfg := Config{
					Grace:       ms(10 + intn(40)),
					MaxDelay:    ms(60 + intn(100)),
					MaxSize:     1 + intn(8),
					MaxKeys:     2 + intn(6),
					MaxBuffered: 10 + intn(30),
					MaxFlushes:  1 + intn(4),
					MaxHold:     ms(200 + intn(300)),
				}
				r := newRecorder()
				h := newHoldSwitch()
				h.group = func(key string) int { return int(key[1]-'0') % 3 }
				c, err := New(cfg, r.flush, WithHold(h.hold))
				if err != nil {
					t.Fatal(err)
				}
				r.hook = func(context.Context, string, []int) { time.Sleep(ms(intn(80))) }
				r.top = func(_ context.Context, key string, batch []int) []int {
					if intn(3) == 0 {
						return batch
					}
					return c.Top(key, batch)
				}
				const producers, perProducer = 6, 60
				var wg sync.WaitGroup
				for p := range producers {
					key := fmt.Sprint("k", p)
					gaps := make([]time.Duration, perProducer)
					for i := range gaps {
						gaps[i] = ms(intn(25))
					}
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
				stop := make(chan struct{})
				var sw sync.WaitGroup
				sw.Go(func() { // switch holds on and off, release now and then
					for {
						select {
						case <-stop:
							return
						case <-time.After(ms(5 + intn(60))):
						}
						g := intn(3)
						on := intn(2) == 0
						h.set(g, on)
						if !on || intn(2) == 0 {
							c.Release(g)
						}
					}
				})
				wg.Wait()
				close(stop)
				sw.Wait()
				mustClose(t, c)
				checkProducersFlushed(t, r, cfg, producers, perProducer)
				if st := c.Stats(); st != (Stats{}) {
					t.Errorf("after Close: %+v, want all zero", st)
				}
				if h.held.Load() > 0 {
					seedsHolding.Add(1)
				}
			})
		})
	}
}
