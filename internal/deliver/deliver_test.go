package deliver

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

var testKey = jobs.Key{App: "app1", From: "alice-account"}

type opt func(*jobs.Envelope)

func remark(s string) opt { return func(e *jobs.Envelope) { e.Event.Remark = &s } }
func groups(g ...string) opt {
	return func(e *jobs.Envelope) { g := append([]string{}, g...); e.Event.Groups = &g }
}
func attr(k, v string) opt {
	return func(e *jobs.Envelope) {
		if e.Event.Attrs == nil {
			e.Event.Attrs = map[string]string{}
		}
		e.Event.Attrs[k] = v
	}
}
func bulk() opt { return func(e *jobs.Envelope) { e.Meta.Lane = event.LaneBulk } }

// env is an event of testKey for to with version (ts, seq).
func env(to string, ts int64, seq uint64, opts ...opt) *jobs.Envelope {
	e := &jobs.Envelope{
		Event:   event.Event{App: testKey.App, From: testKey.From, To: to, TS: ts},
		Meta:    jobs.Meta{Seq: seq, Lane: event.LaneLive, Partition: 7},
		Version: jobs.Version{TS: ts, Seq: seq},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

type bundle struct {
	d    *Deliverer
	s    *fakeSender
	lim  *fakeLimiter
	ver  *memVersions
	reg  *prometheus.Registry
	logs *bytes.Buffer
}

func setup(t *testing.T, cfg Config, s *fakeSender) *bundle {
	t.Helper()
	b := &bundle{s: s, lim: &fakeLimiter{}, ver: newMemVersions(), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	senders := func(app string) (Sender, bool) {
		if app == testKey.App {
			return s, true
		}
		return nil, false
	}
	d, err := New(cfg, senders, b.lim, b.ver, logger, NewMetrics(b.reg))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.d = d
	return b
}

func kinds(out []jobs.Outcome) []jobs.Kind {
	k := make([]jobs.Kind, len(out))
	for i, o := range out {
		k[i] = o.Kind
	}
	return k
}

func wantKinds(t *testing.T, out []jobs.Outcome, want ...jobs.Kind) {
	t.Helper()
	if got := kinds(out); !slices.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v (full: %+v)", got, want, out)
	}
}

func v(ts int64, seq uint64) jobs.Version { return jobs.Version{TS: ts, Seq: seq} }

func TestMergeOrder(t *testing.T) {
	A, S := jobs.Applied, jobs.Superseded
	tests := []struct {
		name        string
		stored      map[string]jobs.Version
		envs        []*jobs.Envelope
		wantOut     []jobs.Kind
		wantApplied map[string]map[string]string // to → field → value the vendor got
		wantStored  map[string]jobs.Version
		wantLane    event.Lane
	}{
		{
			name:        "out of order versions: the newest wins whatever the arrival order",
			envs:        []*jobs.Envelope{env("bob", 30, 3, remark("c")), env("bob", 10, 1, remark("a")), env("bob", 20, 2, remark("b"))},
			wantOut:     []jobs.Kind{A, S, S},
			wantApplied: map[string]map[string]string{"bob": {"remark": "c"}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(30, 3)},
			wantLane:    event.LaneLive,
		},
		{
			name:        "equal ts: the higher stream sequence wins",
			envs:        []*jobs.Envelope{env("bob", 10, 7, remark("late")), env("bob", 10, 5, remark("early"))},
			wantOut:     []jobs.Kind{A, S},
			wantApplied: map[string]map[string]string{"bob": {"remark": "late"}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(10, 7)},
			wantLane:    event.LaneLive,
		},
		{
			name:        "stored newer: superseded and never sent",
			stored:      map[string]jobs.Version{"bob/remark": v(50, 1)},
			envs:        []*jobs.Envelope{env("bob", 40, 9, remark("old"))},
			wantOut:     []jobs.Kind{S},
			wantApplied: map[string]map[string]string{},
			wantStored:  map[string]jobs.Version{"bob/remark": v(50, 1)},
		},
		{
			name:        "stored equal: this very event was already applied",
			stored:      map[string]jobs.Version{"bob/remark": v(40, 9)},
			envs:        []*jobs.Envelope{env("bob", 40, 9, remark("same"))},
			wantOut:     []jobs.Kind{S},
			wantApplied: map[string]map[string]string{},
			wantStored:  map[string]jobs.Version{"bob/remark": v(40, 9)},
		},
		{
			name:   "stored version per field: one field superseded, the other applied",
			stored: map[string]jobs.Version{"bob/remark": v(50, 1)},
			envs:   []*jobs.Envelope{env("bob", 40, 2, remark("old"), groups("g1"))},
			// groups applied, remark superseded: the event counts as applied
			wantOut:     []jobs.Kind{A},
			wantApplied: map[string]map[string]string{"bob": {"groups": "g1"}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(50, 1), "bob/groups": v(40, 2)},
			wantLane:    event.LaneLive,
		},
		{
			name: "backfill rows older than live updates: live wins its fields, backfill keeps the rest",
			envs: []*jobs.Envelope{
				env("bob", 100, 10, remark("live")),
				env("bob", 5, 11, remark("backfill"), attr("level", "3"), bulk()),
				env("carol", 6, 12, groups("friends"), bulk()),
				env("carol", 200, 13, attr("vip", "1")),
			},
			wantOut: []jobs.Kind{A, A, A, A},
			wantApplied: map[string]map[string]string{
				"bob":   {"remark": "live", "attr:level": "3"},
				"carol": {"groups": "friends", "attr:vip": "1"},
			},
			wantStored: map[string]jobs.Version{
				"bob/remark": v(100, 10), "bob/attr:level": v(5, 11), "carol/groups": v(6, 12), "carol/attr:vip": v(200, 13),
			},
			wantLane: event.LaneLive,
		},
		{
			name:        "a backfill row fully covered by a newer live row is superseded",
			envs:        []*jobs.Envelope{env("bob", 5, 20, remark("backfill"), bulk()), env("bob", 100, 3, remark("live"))},
			wantOut:     []jobs.Kind{S, A},
			wantApplied: map[string]map[string]string{"bob": {"remark": "live"}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(100, 3)},
			wantLane:    event.LaneLive,
		},
		{
			name:        "a batch of backfill rows only goes on the bulk lane",
			envs:        []*jobs.Envelope{env("bob", 5, 1, remark("x"), bulk()), env("carol", 5, 2, remark("y"), bulk())},
			wantOut:     []jobs.Kind{A, A},
			wantApplied: map[string]map[string]string{"bob": {"remark": "x"}, "carol": {"remark": "y"}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(5, 1), "carol/remark": v(5, 2)},
			wantLane:    event.LaneBulk,
		},
		{
			name: "attributes merge key by key",
			envs: []*jobs.Envelope{
				env("bob", 10, 1, attr("a", "1"), attr("b", "1")),
				env("bob", 20, 2, attr("b", "2")),
				env("bob", 15, 3, attr("a", "x"), attr("c", "3")),
			},
			wantOut:     []jobs.Kind{S, A, A},
			wantApplied: map[string]map[string]string{"bob": {"attr:a": "x", "attr:b": "2", "attr:c": "3"}},
			wantStored:  map[string]jobs.Version{"bob/attr:a": v(15, 3), "bob/attr:b": v(20, 2), "bob/attr:c": v(15, 3)},
			wantLane:    event.LaneLive,
		},
		{
			name:        "clearing values are values: an empty remark and empty groups win by version",
			envs:        []*jobs.Envelope{env("bob", 10, 1, remark("x"), groups("g")), env("bob", 20, 2, remark(""), groups())},
			wantOut:     []jobs.Kind{S, A},
			wantApplied: map[string]map[string]string{"bob": {"remark": "", "groups": ""}},
			wantStored:  map[string]jobs.Version{"bob/remark": v(20, 2), "bob/groups": v(20, 2)},
			wantLane:    event.LaneLive,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, Config{}, &fakeSender{cap: 100})
			for f, ver := range tc.stored {
				b.ver.set(testKey, f, ver)
			}
			out := b.d.Deliver(context.Background(), testKey, tc.envs)
			wantKinds(t, out, tc.wantOut...)
			got := b.s.applied
			if got == nil {
				got = map[string]map[string]string{}
			}
			if !maps.EqualFunc(got, tc.wantApplied, maps.Equal) {
				t.Errorf("vendor got %v, want %v", got, tc.wantApplied)
			}
			for _, c := range b.s.sent() {
				seen := map[string]bool{}
				for _, it := range c.Items {
					for f := range itemFields(it) {
						if seen[it.To+"/"+f] {
							t.Errorf("call carries two values for %s/%s", it.To, f)
						}
						seen[it.To+"/"+f] = true
					}
				}
			}
			for f, want := range tc.wantStored {
				if got := b.ver.get(testKey, f); got != want {
					t.Errorf("stored %s = %v, want %v", f, got, want)
				}
			}
			waits, _ := b.lim.stats()
			if len(b.s.sent()) != len(waits) {
				t.Errorf("%d sends but %d limiter waits", len(b.s.sent()), len(waits))
			}
			for _, l := range waits {
				if l != tc.wantLane {
					t.Errorf("limiter lane %q, want %q", l, tc.wantLane)
				}
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	b := setup(t, Config{}, &fakeSender{cap: 10})
	other := env("bob", 10, 1, remark("x"))
	other.Event.From = "mallory"
	empty := env("bob", 10, 2)
	noVersion := env("bob", 0, 0, remark("x"))
	good := env("bob", 10, 3, remark("y"))
	out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{other, empty, noVersion, nil, good})
	wantKinds(t, out, jobs.Invalid, jobs.Invalid, jobs.Invalid, jobs.Invalid, jobs.Applied)

	t.Run("unknown app", func(t *testing.T) {
		e := env("bob", 10, 1, remark("x"))
		e.Event.App = "nope"
		out := b.d.Deliver(context.Background(), jobs.Key{App: "nope", From: testKey.From}, []*jobs.Envelope{e, e})
		wantKinds(t, out, jobs.Invalid, jobs.Invalid)
		if out[0].Reason != reasonUnknownApp {
			t.Errorf("reason %q", out[0].Reason)
		}
	})
	t.Run("a version from the publish time when ts is absent", func(t *testing.T) {
		e := env("dave", 0, 0, remark("z"))
		e.Meta.Published = time.Unix(0, 77)
		e.Meta.Seq = 4
		out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{e})
		wantKinds(t, out, jobs.Applied)
		if got := b.ver.get(testKey, "dave/remark"); got != v(77, 4) {
			t.Errorf("stored %v, want 77.4", got)
		}
	})
	t.Run("a field the vendor client does not carry is invalid", func(t *testing.T) {
		s := &fakeSender{split: func(from string, items []vendors.Item) []vendors.Call {
			var out []vendors.Item
			for _, it := range items {
				it.Groups = nil // like ZIM: no groups
				if it.Remark != nil || it.Attrs != nil {
					out = append(out, it)
				}
			}
			return []vendors.Call{{API: "update", Budget: fakeBudget, From: from, Items: out}}
		}}
		b := setup(t, Config{}, s)
		out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
			env("bob", 10, 1, remark("r"), groups("g")), env("carol", 10, 2, groups("g")),
		})
		// bob's remark applied but groups not: Invalid is worse than Applied.
		wantKinds(t, out, jobs.Invalid, jobs.Invalid)
		if got := b.ver.get(testKey, "bob/remark"); got != v(10, 1) {
			t.Errorf("the carried field was not raised: %v", got)
		}
	})
}

// script answers Send number n with results[n] (the last one repeats).
func script(results ...func(call vendors.Call) (vendors.Result, error)) func(int, vendors.Call) (vendors.Result, error) {
	return func(n int, call vendors.Call) (vendors.Result, error) {
		return results[min(n, len(results)-1)](call)
	}
}

// perTo answers each item by its To.
func perTo(classes map[string]vendors.Class) func(vendors.Call) (vendors.Result, error) {
	return func(call vendors.Call) (vendors.Result, error) {
		r := vendors.Result{Items: make([]vendors.ItemResult, len(call.Items))}
		for i, it := range call.Items {
			c := classes[it.To]
			r.Items[i] = vendors.ItemResult{Class: c, Code: fmt.Sprint("code-", c), Message: "msg " + c.String()}
		}
		return r, nil
	}
}

func wholeErr(class vendors.Class, code string, ra time.Duration) func(vendors.Call) (vendors.Result, error) {
	return func(call vendors.Call) (vendors.Result, error) {
		return vendors.Result{}, &vendors.Error{Vendor: "fake", API: call.API, HTTPStatus: 200, Code: code,
			Message: "whole " + class.String(), Class: class, RetryAfter: ra}
	}
}

func allOK(call vendors.Call) (vendors.Result, error) {
	return vendors.Whole(len(call.Items), vendors.ItemResult{Class: vendors.OK, Code: "0"}), nil
}

func tos(c vendors.Call) []string {
	var s []string
	for _, it := range c.Items {
		s = append(s, it.To)
	}
	return s
}

func TestPartialFailureResendsOnlyFailedItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSender{cap: 10, answer: script(
			perTo(map[string]vendors.Class{"ok": vendors.OK, "busy": vendors.Retry, "bad": vendors.Permanent}),
			allOK,
		)}
		b := setup(t, Config{}, s)
		envs := []*jobs.Envelope{
			env("ok", 10, 1, remark("1")),
			env("busy", 10, 2, remark("2")),
			env("bad", 10, 3, remark("3")),
			env("bad", 9, 4, remark("older")), // linked to the refused item
		}
		out := b.d.Deliver(context.Background(), testKey, envs)
		wantKinds(t, out, jobs.Applied, jobs.Applied, jobs.Permanent, jobs.Permanent)
		calls := s.sent()
		if len(calls) != 2 || !slices.Equal(tos(calls[0]), []string{"ok", "busy", "bad"}) || !slices.Equal(tos(calls[1]), []string{"busy"}) {
			t.Fatalf("sent %v, want [ok busy bad] then [busy]", calls)
		}
		if out[2].Code != "code-permanent" || out[2].Message != "msg permanent" || out[3].Code != "code-permanent" {
			t.Errorf("permanent outcome lost the vendor's code: %+v %+v", out[2], out[3])
		}
		if b.ver.get(testKey, "bad/remark") != (jobs.Version{}) {
			t.Error("a refused field's version was raised")
		}
		if b.ver.get(testKey, "busy/remark") != v(10, 2) || b.ver.get(testKey, "ok/remark") != v(10, 1) {
			t.Error("confirmed fields were not raised")
		}
		if got := value(t, b.d.m.retries.WithLabelValues("fake", "update", "retry")); got != 1 {
			t.Errorf("retries_total{class=retry} = %v, want 1", got)
		}
	})
}

func TestRetryBudget(t *testing.T) {
	t.Run("attempts run out: RetryLater", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 10, answer: script(wholeErr(vendors.Retry, "30006", 0))}
			b := setup(t, Config{RetryMaxAttempts: 4}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
			wantKinds(t, out, jobs.RetryLater)
			if n := len(s.sent()); n != 4 {
				t.Errorf("%d attempts, want 4", n)
			}
			if out[0].Code != "30006" || out[0].Delay != 0 {
				t.Errorf("outcome %+v, want code 30006 and no delay hint", out[0])
			}
		})
	})
	t.Run("elapsed budget runs out: no send starts after the budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			var at []time.Duration
			s := &fakeSender{cap: 1, answer: func(_ int, call vendors.Call) (vendors.Result, error) {
				at = append(at, time.Since(start))
				return wholeErr(vendors.Retry, "30006", 0)(call)
			}}
			b := setup(t, Config{RetryInitial: time.Second, RetryMax: 4 * time.Second, RetryBudget: 10 * time.Second, RetryMaxAttempts: 100}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
				env("bob", 10, 1, remark("x")), env("carol", 10, 2, remark("y")),
			})
			wantKinds(t, out, jobs.RetryLater, jobs.RetryLater)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Deliver took %v, beyond the 10s budget", took)
			}
			if len(at) < 4 || at[len(at)-1] >= 10*time.Second {
				t.Errorf("sends at %v: want several, all before the 10s budget", at)
			}
		})
	})
	t.Run("a call that outlives the budget stops the calls after it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 1, delay: 6 * time.Second, answer: script(wholeErr(vendors.Retry, "30006", 0))}
			b := setup(t, Config{RetryInitial: time.Second, RetryMax: 4 * time.Second, RetryBudget: 10 * time.Second, RetryMaxAttempts: 100}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
				env("bob", 10, 1, remark("x")), env("carol", 10, 2, remark("y")),
			})
			wantKinds(t, out, jobs.RetryLater, jobs.RetryLater)
			calls := s.sent()
			if len(calls) != 2 || tos(calls[1])[0] != "bob" {
				t.Errorf("sent %v, want bob twice and never carol", calls)
			}
			if out[1].Reason != reasonBudget {
				t.Errorf("carol's reason %q", out[1].Reason)
			}
		})
	})
	t.Run("waiting for the limiter counts against the budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 10}
			b := setup(t, Config{RetryBudget: 3 * time.Second, RetryMax: time.Second}, s)
			b.lim.block = true
			start := time.Now()
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
			wantKinds(t, out, jobs.RetryLater)
			if took := time.Since(start); took != 3*time.Second {
				t.Errorf("Deliver took %v, want the 3s budget", took)
			}
			if out[0].Reason != reasonLimiter || len(s.sent()) != 0 {
				t.Errorf("outcome %+v after %d sends", out[0], len(s.sent()))
			}
		})
	})
	t.Run("a limiter error is retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 10}
			b := setup(t, Config{RetryMaxAttempts: 3}, s)
			b.lim.waitErr = errBoom
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
			wantKinds(t, out, jobs.RetryLater)
			if waits, _ := b.lim.stats(); len(waits) != 3 || len(s.sent()) != 0 {
				t.Errorf("%d waits and %d sends, want 3 and 0", len(waits), len(s.sent()))
			}
		})
	})
}

func TestThrottle(t *testing.T) {
	t.Run("whole-call throttle is reported and its retry-after honoured", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var at []time.Duration
			start := time.Now()
			s := &fakeSender{cap: 10, answer: func(n int, call vendors.Call) (vendors.Result, error) {
				at = append(at, time.Since(start))
				if n == 0 {
					return wholeErr(vendors.Throttled, "20002", 3*time.Second)(call)
				}
				return allOK(call)
			}}
			b := setup(t, Config{RetryInitial: 10 * time.Millisecond}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
			wantKinds(t, out, jobs.Applied)
			if len(at) != 2 || at[1] < 3*time.Second {
				t.Errorf("attempts at %v, want the retry at least 3s after the throttle", at)
			}
			if _, th := b.lim.stats(); !slices.Equal(th, []throttle{{fakeBudget, 3 * time.Second}}) {
				t.Errorf("limiter told %v, want one throttle of 3s on %s", th, fakeBudget)
			}
		})
	})
	t.Run("a retry-after beyond the budget ends RetryLater with the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 10, answer: script(wholeErr(vendors.Throttled, "429", 30*time.Second))}
			b := setup(t, Config{RetryBudget: 10 * time.Second}, s)
			start := time.Now()
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
			wantKinds(t, out, jobs.RetryLater)
			if out[0].Delay != 30*time.Second || time.Since(start) != 0 || len(s.sent()) != 1 {
				t.Errorf("outcome %+v after %v and %d sends, want delay 30s at once after 1 send", out[0], time.Since(start), len(s.sent()))
			}
		})
	})
	t.Run("item throttles are reported too", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 10, answer: script(perTo(map[string]vendors.Class{"bob": vendors.Throttled}), allOK)}
			b := setup(t, Config{}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x")), env("carol", 10, 2, remark("y"))})
			wantKinds(t, out, jobs.Applied, jobs.Applied)
			if _, th := b.lim.stats(); len(th) != 1 || th[0].budget != fakeBudget {
				t.Errorf("limiter told %v, want one throttle", th)
			}
			if calls := s.sent(); len(calls) != 2 || !slices.Equal(tos(calls[1]), []string{"bob"}) {
				t.Errorf("sent %v", calls)
			}
		})
	})
}

func TestPermanentAndReSign(t *testing.T) {
	tests := []struct {
		name    string
		answers []func(vendors.Call) (vendors.Result, error)
		want    jobs.Kind
		sends   int
		code    string
	}{
		{"whole-call permanent ends at once", []func(vendors.Call) (vendors.Result, error){wholeErr(vendors.Permanent, "40001", 0)}, jobs.Permanent, 1, "40001"},
		{"re-sign is retried once", []func(vendors.Call) (vendors.Result, error){wholeErr(vendors.ReSign, "70001", 0), allOK}, jobs.Applied, 2, ""},
		{"re-sign twice ends RetryLater", []func(vendors.Call) (vendors.Result, error){wholeErr(vendors.ReSign, "70001", 0)}, jobs.RetryLater, 2, "70001"},
		{"item re-sign twice ends RetryLater", []func(vendors.Call) (vendors.Result, error){perTo(map[string]vendors.Class{"bob": vendors.ReSign})}, jobs.RetryLater, 2, "code-re-sign"},
		{"a transport error is retried", []func(vendors.Call) (vendors.Result, error){
			func(vendors.Call) (vendors.Result, error) { return vendors.Result{}, errBoom }, allOK}, jobs.Applied, 2, ""},
		{"a result of the wrong length is retried", []func(vendors.Call) (vendors.Result, error){
			func(vendors.Call) (vendors.Result, error) { return vendors.Result{}, nil }, allOK}, jobs.Applied, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &fakeSender{cap: 10, answer: script(tc.answers...)}
				b := setup(t, Config{}, s)
				out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
				wantKinds(t, out, tc.want)
				if n := len(s.sent()); n != tc.sends {
					t.Errorf("%d sends, want %d", n, tc.sends)
				}
				if out[0].Code != tc.code {
					t.Errorf("code %q, want %q", out[0].Code, tc.code)
				}
			})
		})
	}
}

func TestReleased(t *testing.T) {
	t.Run("fence false: released, never sent", func(t *testing.T) {
		s := &fakeSender{cap: 10}
		var parts []int
		b := setup(t, Config{Fence: func(p int) bool { parts = append(parts, p); return false }}, s)
		out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
		wantKinds(t, out, jobs.Released)
		if len(s.sent()) != 0 || !slices.Equal(parts, []int{7}) {
			t.Errorf("%d sends, fence asked for %v", len(s.sent()), parts)
		}
		if b.ver.get(testKey, "bob/remark") != (jobs.Version{}) {
			t.Error("version raised for an unsent value")
		}
	})
	t.Run("fence checked before every send", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			checks := 0
			s := &fakeSender{cap: 1, answer: script(wholeErr(vendors.Retry, "x", 0), allOK)}
			b := setup(t, Config{Fence: func(int) bool { checks++; return checks <= 3 }}, s)
			out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
				env("bob", 10, 1, remark("x")), env("carol", 10, 2, remark("y")), env("dave", 10, 3, remark("z")),
			})
			// bob: fails, retried (2 checks); carol: sent (3rd check); dave: fence fails.
			wantKinds(t, out, jobs.Applied, jobs.Applied, jobs.Released)
			if len(s.sent()) != 3 || checks != 4 {
				t.Errorf("%d sends, %d fence checks; want 3 and 4", len(s.sent()), checks)
			}
		})
	})
	t.Run("context cancelled before delivery", func(t *testing.T) {
		s := &fakeSender{cap: 10}
		b := setup(t, Config{}, s)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out := b.d.Deliver(ctx, testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
		wantKinds(t, out, jobs.Released)
		if len(s.sent()) != 0 || b.ver.loads != 0 {
			t.Error("a cancelled delivery touched the vendor or the versions")
		}
	})
	t.Run("context cancelled while waiting to retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &fakeSender{cap: 1, answer: script(wholeErr(vendors.Throttled, "x", 5*time.Second))}
			b := setup(t, Config{}, s)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			out := b.d.Deliver(ctx, testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x")), env("carol", 10, 1, remark("y"))})
			wantKinds(t, out, jobs.Released, jobs.Released)
			if len(s.sent()) != 1 {
				t.Errorf("%d sends, want 1", len(s.sent()))
			}
		})
	})
}

func TestVersionStoreErrors(t *testing.T) {
	t.Run("load error: retry later, nothing sent", func(t *testing.T) {
		s := &fakeSender{cap: 10}
		b := setup(t, Config{}, s)
		b.ver.loadErr = errBoom
		out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x")), env("bob", 11, 2, groups("g"))})
		wantKinds(t, out, jobs.RetryLater, jobs.RetryLater)
		if len(s.sent()) != 0 {
			t.Error("sent without knowing the versions")
		}
		if got := value(t, b.d.m.versionErrors.WithLabelValues("load")); got != 1 {
			t.Errorf("version_errors_total{reason=load} = %v", got)
		}
	})
	t.Run("raise error: sent, but RetryLater until the version is stored; counted", func(t *testing.T) {
		s := &fakeSender{cap: 10}
		b := setup(t, Config{}, s)
		b.ver.raiseErr = errBoom
		// Both events stay in the stream (an event merged into a winner
		// shares its outcome); their redelivery finds them superseded once
		// the version is stored.
		out := b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
			env("bob", 10, 1, remark("old")), env("bob", 11, 2, remark("x"))})
		wantKinds(t, out, jobs.RetryLater, jobs.RetryLater)
		if out[1].Reason != reasonRaise {
			t.Errorf("reason %q, want %q", out[1].Reason, reasonRaise)
		}
		if len(s.sent()) != 1 {
			t.Errorf("%d calls, want the one that applied the value", len(s.sent()))
		}
		if got := value(t, b.d.m.versionErrors.WithLabelValues("raise")); got != 1 {
			t.Errorf("version_errors_total{reason=raise} = %v", got)
		}
	})
	t.Run("raise runs even when the context ends after the vendor confirmed", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s := &fakeSender{cap: 10, answer: func(_ int, call vendors.Call) (vendors.Result, error) {
			cancel()
			return allOK(call)
		}}
		b := setup(t, Config{}, s)
		out := b.d.Deliver(ctx, testKey, []*jobs.Envelope{env("bob", 10, 1, remark("x"))})
		wantKinds(t, out, jobs.Applied)
		if b.ver.get(testKey, "bob/remark") != v(10, 1) {
			t.Error("version not raised")
		}
	})
}

func TestChunkingOneCallAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSender{cap: 3, delay: 100 * time.Millisecond}
		b := setup(t, Config{}, s)
		var envs []*jobs.Envelope
		for i := range 10 {
			envs = append(envs, env(fmt.Sprint("friend-", i), 10, uint64(i+1), remark("r"), attr("k", fmt.Sprint(i))))
			envs = append(envs, env(fmt.Sprint("friend-", i), 5, uint64(i+100), remark("older")))
		}
		start := time.Now()
		out := b.d.Deliver(context.Background(), testKey, envs)
		for i, o := range out {
			want := jobs.Applied
			if i%2 == 1 {
				want = jobs.Superseded
			}
			if o.Kind != want {
				t.Fatalf("env %d: %v, want %v", i, o.Kind, want)
			}
		}
		calls := s.sent()
		var sizes []int
		for _, c := range calls {
			sizes = append(sizes, len(c.Items))
		}
		if !slices.Equal(sizes, []int{3, 3, 3, 1}) {
			t.Errorf("call sizes %v, want [3 3 3 1]", sizes)
		}
		if s.maxCur != 1 {
			t.Errorf("%d calls in flight at once, want 1", s.maxCur)
		}
		if took := time.Since(start); took != 400*time.Millisecond {
			t.Errorf("took %v, want 4 sequential sends of 100ms", took)
		}
		if got := value(t, b.d.m.calls.WithLabelValues("fake", "update", "ok")); got != 4 {
			t.Errorf("calls_total{class=ok} = %v", got)
		}
		if got := value(t, b.d.m.superseded); got != 10 {
			t.Errorf("superseded_total = %v, want 10", got)
		}
	})
}

func TestMetricsAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSender{cap: 10, answer: script(
			perTo(map[string]vendors.Class{"bob-secret-id": vendors.Retry, "carol-secret-id": vendors.Permanent}),
			wholeErr(vendors.Retry, "500", 0),
		)}
		b := setup(t, Config{RetryMaxAttempts: 2}, s)
		b.d.Deliver(context.Background(), testKey, []*jobs.Envelope{
			env("bob-secret-id", 10, 1, remark("x")), env("bob-secret-id", 9, 2, remark("x")), env("carol-secret-id", 10, 3, remark("y")),
		})
		mfs, err := b.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if !slices.Contains([]string{"vendor", "api", "class", "outcome", "reason"}, l.GetName()) {
						t.Errorf("%s has label %q", mf.GetName(), l.GetName())
					}
				}
			}
		}
		want := []string{
			"friendsync_deliver_call_duration_seconds", "friendsync_deliver_call_items", "friendsync_deliver_calls_total",
			"friendsync_deliver_item_events", "friendsync_deliver_outcomes_total", "friendsync_deliver_retries_total",
			"friendsync_deliver_superseded_total", "friendsync_deliver_topped_up_events_total",
			"friendsync_deliver_version_errors_total",
		}
		if !slices.Equal(names, want) {
			t.Errorf("metrics %v, want %v", names, want)
		}
		if got := value(t, b.d.m.outcomes.WithLabelValues("retry_later")); got != 2 {
			t.Errorf("outcomes_total{retry_later} = %v, want 2", got)
		}
		if got := value(t, b.d.m.outcomes.WithLabelValues("permanent")); got != 1 {
			t.Errorf("outcomes_total{permanent} = %v, want 1", got)
		}
		if got := value(t, b.d.m.calls.WithLabelValues("fake", "update", "permanent")); got != 1 {
			t.Errorf("calls_total{class=permanent} = %v, want 1 (a partial answer counts its worst class)", got)
		}
		if n := value(t, b.d.m.itemEvents); n != 2 {
			t.Errorf("item_events observed %v items, want 2", n)
		}
		logs := b.logs.String()
		if logs == "" {
			t.Error("nothing logged at info or above for a refused item")
		}
		for _, secret := range []string{testKey.From, "bob-secret-id", "carol-secret-id"} {
			if strings.Contains(logs, secret) {
				t.Errorf("an account id reached the info log: %s", logs)
			}
		}
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"negative initial", Config{RetryInitial: -1}, false},
		{"negative max", Config{RetryMax: -1}, false},
		{"negative budget", Config{RetryBudget: -1}, false},
		{"negative attempts", Config{RetryMaxAttempts: -1}, false},
		{"initial above max", Config{RetryInitial: time.Minute}, false},
		{"max above budget", Config{RetryMax: time.Minute}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	senders := func(string) (Sender, bool) { return nil, false }
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"nil senders", func() error { _, err := New(Config{}, nil, &fakeLimiter{}, newMemVersions(), nil, nil); return err }},
		{"nil limiter", func() error { _, err := New(Config{}, senders, nil, newMemVersions(), nil, nil); return err }},
		{"nil versions", func() error { _, err := New(Config{}, senders, &fakeLimiter{}, nil, nil, nil); return err }},
		{"bad config", func() error {
			_, err := New(Config{RetryBudget: -1}, senders, &fakeLimiter{}, newMemVersions(), nil, nil)
			return err
		}},
	} {
		if err := c.f(); err == nil {
			t.Errorf("New with %s succeeded", c.name)
		}
	}
	d, err := New(Config{}, senders, &fakeLimiter{}, newMemVersions(), nil, nil)
	if err != nil || d == nil {
		t.Fatalf("New with nil logger and metrics: %v", err)
	}
	if out := d.Deliver(context.Background(), testKey, nil); len(out) != 0 {
		t.Errorf("empty batch gave %v", out)
	}
}

func TestDeliverAppendReusesAndSetsEveryOutcome(t *testing.T) {
	b := setup(t, Config{}, &fakeSender{cap: 10})
	bad := env("bob", 10, 9, remark("x"))
	bad.Event.From = "mallory"
	envs := []*jobs.Envelope{env("bob", 10, 1, remark("x")), bad, env("carol", 10, 2, groups("g"))}
	garbage := jobs.Outcome{Kind: jobs.Permanent, Reason: "stale", Code: "stale"}
	dst := []jobs.Outcome{garbage, garbage, garbage, garbage, garbage}
	out := b.d.DeliverAppend(context.Background(), testKey, envs, dst[:1])
	if len(out) != 4 || &out[0] != &dst[0] || out[0] != garbage {
		t.Fatalf("DeliverAppend did not append in place: %+v", out)
	}
	wantKinds(t, out[1:], jobs.Applied, jobs.Invalid, jobs.Applied)
	for _, o := range out[1:] {
		if o.Code == "stale" {
			t.Errorf("a stale outcome survived: %+v", o)
		}
	}
}
