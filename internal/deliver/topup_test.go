package deliver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

// arrivals is a TopUp that hands over the events that "arrived" while the
// first call waited, and records when it ran and how often.
type arrivals struct {
	more  []*jobs.Envelope
	calls []time.Duration // since start, one per call
	start time.Time
}

func (a *arrivals) top(envs []*jobs.Envelope) []*jobs.Envelope {
	a.calls = append(a.calls, time.Since(a.start))
	out := append(envs, a.more...)
	a.more = nil
	return out
}

// TestTopUpRidesInTheFirstCall: events that arrive while the first call
// waits for its token go into that call; the token is not taken twice,
// the grown batch is merged newest-wins as a whole, and every event of it
// gets an outcome.
func TestTopUpRidesInTheFirstCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSender{cap: 1000}
		b := setup(t, Config{}, s)
		b.lim.delay = 300 * time.Millisecond
		envs := []*jobs.Envelope{
			env("bob", 20, 1, remark("bob-20")),
			env("carol", 20, 2, remark("carol-20")),
		}
		a := &arrivals{start: time.Now(), more: []*jobs.Envelope{
			env("bob", 30, 3, remark("bob-30")),     // newer: wins over bob-20
			env("carol", 10, 4, remark("carol-10")), // older (ts): loses to carol-20
			env("dave", 20, 5, remark("dave-20"), attr("k", "v")),
		}}
		got, out := b.d.DeliverTop(context.Background(), testKey, envs, a.top, nil)
		if len(got) != 5 || len(out) != 5 {
			t.Fatalf("got %d envelopes and %d outcomes, want 5 and 5", len(got), len(out))
		}
		if !slices.Equal(got[:2], envs) {
			t.Error("the grown batch does not start with the original one")
		}
		wantKinds(t, out, jobs.Superseded, jobs.Applied, jobs.Applied, jobs.Superseded, jobs.Applied)
		if !slices.Equal(a.calls, []time.Duration{300 * time.Millisecond}) {
			t.Errorf("top-up ran at %v, want once, after the 300ms wait", a.calls)
		}
		calls := s.sent()
		if len(calls) != 1 {
			t.Fatalf("%d calls, want 1", len(calls))
		}
		want := map[string]map[string]string{
			"bob":   {"remark": "bob-30"},
			"carol": {"remark": "carol-20"},
			"dave":  {"remark": "dave-20", "attr:k": "v"},
		}
		for to, fields := range want {
			for f, v := range fields {
				if s.applied[to][f] != v {
					t.Errorf("%s %s = %q, want %q", to, f, s.applied[to][f], v)
				}
			}
		}
		if n := len(b.lim.budgetsWaited()); n != 1 {
			t.Errorf("%d limiter waits, want 1 (the token taken before the top-up is used)", n)
		}
		if got := value(t, b.d.m.toppedUp); got != 3 {
			t.Errorf("topped_up_events_total = %v, want 3", got)
		}
		if got := value(t, b.d.m.outcomes); got != 5 {
			t.Errorf("outcomes_total = %v, want 5 (each event once)", got)
		}
		if b.ver.get(testKey, "bob/remark") != v(30, 3) || b.ver.get(testKey, "carol/remark") != v(20, 2) {
			t.Error("versions not raised to the winners")
		}
	})
}

// TestTopUpNothingArrived: with nothing to add the batch is sent as it
// was, its versions loaded once and its token taken once.
func TestTopUpNothingArrived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSender{cap: 1000}
		b := setup(t, Config{}, s)
		a := &arrivals{start: time.Now()}
		envs := []*jobs.Envelope{env("bob", 20, 1, remark("x"))}
		got, out := b.d.DeliverTop(context.Background(), testKey, envs, a.top, nil)
		if len(got) != 1 || len(a.calls) != 1 {
			t.Fatalf("%d envelopes, top-up asked %d times; want 1 and 1", len(got), len(a.calls))
		}
		wantKinds(t, out, jobs.Applied)
		if b.ver.loads != 1 || len(b.lim.budgetsWaited()) != 1 || len(s.sent()) != 1 {
			t.Errorf("%d loads, %d waits, %d calls; want 1 each", b.ver.loads, len(b.lim.budgetsWaited()), len(s.sent()))
		}
	})
}

// TestTopUpManyCalls: the token taken before the top-up serves the first
// call on its budget; every other call waits for its own, one call at a
// time.
func TestTopUpManyCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Remarks go to budget "alias", attributes to "attrs", two items
		// per call: like ZEGO's two APIs.
		s := &fakeSender{split: func(from string, items []vendors.Item) []vendors.Call {
			var alias, attrs []vendors.Item
			for _, it := range items {
				if it.Remark != nil {
					alias = append(alias, vendors.Item{Ref: it.Ref, To: it.To, Remark: it.Remark})
				}
				if len(it.Attrs) > 0 {
					attrs = append(attrs, vendors.Item{Ref: it.Ref, To: it.To, Attrs: it.Attrs})
				}
			}
			var calls []vendors.Call
			for c := range slices.Chunk(attrs, 2) { // attrs first: the token is for alias
				calls = append(calls, vendors.Call{API: "attrs", Budget: "attrs", From: from, Items: c})
			}
			for c := range slices.Chunk(alias, 2) {
				calls = append(calls, vendors.Call{API: "alias", Budget: "alias", From: from, Items: c})
			}
			return calls
		}, delay: 10 * time.Millisecond}
		b := setup(t, Config{}, s)
		b.lim.delay = 50 * time.Millisecond
		envs := []*jobs.Envelope{env("f0", 10, 1, remark("r0"))} // alias only
		a := &arrivals{start: time.Now()}
		for i := 1; i <= 4; i++ {
			a.more = append(a.more, env(fmt.Sprint("f", i), 10, uint64(i+1), remark(fmt.Sprint("r", i)), attr("k", "v")))
		}
		got, out := b.d.DeliverTop(context.Background(), testKey, envs, a.top, nil)
		if len(got) != 5 {
			t.Fatalf("%d envelopes, want 5", len(got))
		}
		wantKinds(t, out, jobs.Applied, jobs.Applied, jobs.Applied, jobs.Applied, jobs.Applied)
		var apis []string
		for _, c := range s.sent() {
			apis = append(apis, fmt.Sprintf("%s:%d", c.API, len(c.Items)))
		}
		// The first alias call moves to the front: it uses the early token
		// while it is fresh; the others wait for their own.
		if want := []string{"alias:2", "attrs:2", "attrs:2", "alias:2", "alias:1"}; !slices.Equal(apis, want) {
			t.Errorf("calls %v, want %v", apis, want)
		}
		if w, want := b.lim.budgetsWaited(), []string{"alias", "attrs", "attrs", "alias", "alias"}; !slices.Equal(w, want) {
			t.Errorf("waits %v, want %v", w, want)
		}
		if s.maxCur != 1 {
			t.Errorf("%d calls at once, want 1", s.maxCur)
		}
	})
}

// TestTopUpNotAfterAFailedWait: when the first token never comes
// (shutdown, or the retry budget runs out waiting) nothing is topped up:
// the batch ends as before and what arrived stays for the next one.
func TestTopUpNotAfterAFailedWait(t *testing.T) {
	t.Run("released", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 1000}
			b := setup(t, Config{}, s)
			b.lim.block = true
			a := &arrivals{start: time.Now(), more: []*jobs.Envelope{env("carol", 10, 2, remark("c"))}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			got, out := b.d.DeliverTop(ctx, testKey, []*jobs.Envelope{env("bob", 10, 1, remark("b"))}, a.top, nil)
			if len(got) != 1 || len(a.calls) != 0 {
				t.Fatalf("%d envelopes, top-up asked %d times; want 1 and 0", len(got), len(a.calls))
			}
			wantKinds(t, out, jobs.Released)
		})
	})
	t.Run("budget spent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 1000}
			b := setup(t, Config{RetryBudget: time.Second, RetryMax: time.Second}, s)
			b.lim.block = true
			b.ver.set(testKey, "dave/remark", v(50, 1))
			a := &arrivals{start: time.Now(), more: []*jobs.Envelope{env("carol", 10, 2, remark("c"))}}
			envs := []*jobs.Envelope{env("bob", 10, 1, remark("b")), env("dave", 10, 3, remark("old"))}
			got, out := b.d.DeliverTop(context.Background(), testKey, envs, a.top, nil)
			if len(got) != 2 || len(a.calls) != 0 {
				t.Fatalf("%d envelopes, top-up asked %d times; want 2 and 0", len(got), len(a.calls))
			}
			wantKinds(t, out, jobs.RetryLater, jobs.Superseded)
			if !strings.Contains(out[0].Reason, "rate limiter") {
				t.Errorf("reason %q, want the limiter's", out[0].Reason)
			}
			if took := time.Since(a.start); took != time.Second {
				t.Errorf("took %v, want the 1s budget (the early wait counts against it)", took)
			}
		})
	})
}

// TestTopUpStaleToken: when the top-up's versions load and merge take
// longer than maxTokenAge, the early token is dropped and the call waits
// for a fresh one, so that the delay between grant and arrival at the
// vendor stays within the budget's headroom.
func TestTopUpStaleToken(t *testing.T) {
	for _, tc := range []struct {
		name      string
		load      time.Duration
		wantWaits int
	}{
		{"fresh", maxTokenAge / 2, 1},
		{"stale", maxTokenAge + time.Millisecond, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &fakeSender{cap: 1000}
				b := setup(t, Config{}, s)
				b.ver.delay = tc.load
				a := &arrivals{start: time.Now(), more: []*jobs.Envelope{env("carol", 10, 2, remark("c"))}}
				_, out := b.d.DeliverTop(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("b"))}, a.top, nil)
				wantKinds(t, out, jobs.Applied, jobs.Applied)
				if n := len(b.lim.budgetsWaited()); n != tc.wantWaits {
					t.Errorf("%d limiter waits, want %d", n, tc.wantWaits)
				}
				if n := len(s.sent()); n != 1 {
					t.Errorf("%d calls, want 1", n)
				}
			})
		})
	}
}
