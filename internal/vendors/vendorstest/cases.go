package vendorstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// wrongSecret is the secret the simulator expects in the bad-credentials
// case, so that the client's demo secret is wrong.
const wrongSecret = "conformance-wrong-secret-7f3a9c2e5b"

// 1. apply.
func testApply(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t)
		from := s.f.ID(0)
		n := s.f.APIs[s.f.BatchAPI].MaxItems
		want := model{}
		for round := 1; round <= 2; round++ {
			var items []vendors.Item
			for i := range n {
				if it, ok := s.fullItem(i, round); ok {
					items = append(items, it)
				}
			}
			calls := e.c.Split(from, items)
			batches := 0
			for _, c := range calls {
				if c.API == s.f.BatchAPI {
					batches++
				}
			}
			if batches > 1 {
				t.Fatalf("round %d: %d items (the %s cap) split into %s, want at most one %s call", round, len(items), s.f.BatchAPI, describeCalls(calls), s.f.BatchAPI)
			}
			report(t, fmt.Sprintf("round %d: split", round), checkSplit(s.f, from, items, calls))
			requireAllOK(t, items, e.sendAll(t, t.Context(), calls))
			want.apply(items...)
		}
		report(t, "stored state", diffState(want, e.friend(from)))
	})
}

// 2. split.
func testSplit(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t)
		from := s.f.ID(0)
		n := s.f.APIs[s.f.BatchAPI].MaxItems + 3
		items := make([]vendors.Item, n)
		for i := range n {
			items[i], _ = s.fullItem(i, 1)
		}
		if s.f.Attrs {
			// Item 0 carries every key; item 1 every key with values so long
			// that an API with a byte cap can take few of them per call.
			maxBytes := 0
			for _, c := range s.f.APIs {
				maxBytes = max(maxBytes, c.MaxAttrBytes)
			}
			for k := range s.f.AttrKeys {
				items[0].Attrs[s.f.AttrKey(k)] = fmt.Sprintf("all-%d", k)
				if maxBytes > 0 {
					items[1].Attrs[s.f.AttrKey(k)] = strings.Repeat(string(rune('a'+k)), maxBytes/2)
				}
			}
		}
		calls := e.c.Split(from, items)
		report(t, "split", checkSplit(s.f, from, items, calls))
		if t.Failed() {
			t.FailNow()
		}
		requireAllOK(t, items, e.sendAll(t, t.Context(), calls))
		want := model{}
		want.apply(items...)
		report(t, "stored state", diffState(want, e.friend(from)))
	})
}

// 3. partial failure.
func testPartial(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t, func(cfg *vendorsim.Config) { cfg.RequireFriendship = true })
		from := s.f.ID(0)
		n := min(s.f.APIs[s.f.BatchAPI].MaxItems, 6)
		stranger := n / 2
		items := make([]vendors.Item, n)
		var friends []string
		for i := range n {
			items[i] = s.batchItem(i)
			if i != stranger {
				friends = append(friends, items[i].To)
			}
		}
		if err := e.sim.AddFriends(s.f.Vendor, s.vendor.app, from, friends...); err != nil {
			t.Fatal(err)
		}
		call := e.oneCall(t, from, items...)
		res, err := e.c.Send(t.Context(), call)
		if err != nil {
			t.Fatalf("Send: whole-call error %v, want per-item results", err)
		}
		if len(res.Items) != n {
			t.Fatalf("%d results for %d items", len(res.Items), n)
		}
		for i, r := range res.Items {
			it := call.Items[i] // results follow the call's order
			if it.Ref == items[stranger].Ref {
				if r.Class != vendors.Permanent || r.Code != s.f.NotFriendCode {
					t.Errorf("item %d (to %s, not a friend): %s code %q %q, want permanent code %q", i, it.To, r.Class, r.Code, r.Message, s.f.NotFriendCode)
				}
				continue
			}
			if r.Class != vendors.OK {
				t.Errorf("item %d (to %s, a friend): %s code %q %q, want ok", i, it.To, r.Class, r.Code, r.Message)
			}
		}
		want := model{}
		for i, it := range items {
			if i != stranger {
				want.apply(it)
			}
		}
		stored := e.friend(from)
		report(t, "stored state", diffState(want, stored))
		if f, ok := stored(items[stranger].To); ok && f.Updates > 0 {
			t.Errorf("the non-friend was updated: %s", showFriend(f))
		}
	})
}

// 4. throttle.
func testThrottle(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t, s.withQPS(1))
		first := e.oneCall(t, s.f.ID(0), s.batchItem(0))
		second := e.oneCall(t, s.f.ID(100), s.batchItem(1))
		if res, err := e.c.Send(t.Context(), first); err != nil || len(res.Items) != 1 || res.Items[0].Class != vendors.OK {
			t.Fatalf("first call: %+v, %v; want ok", res, err)
		}
		res, err := e.c.Send(t.Context(), second)
		ve := wholeError(t, res, err)
		if ve.Class != vendors.Throttled || vendors.ClassOf(err) != vendors.Throttled {
			t.Errorf("second call: class %s, want throttled (%v)", ve.Class, err)
		}
		if ve.Code != s.f.ThrottleCode {
			t.Errorf("second call: code %q, want %q", ve.Code, s.f.ThrottleCode)
		}
		switch {
		case ve.RetryAfter < 0:
			t.Errorf("RetryAfter %s is negative", ve.RetryAfter)
		case s.f.ThrottleRetryAfter && ve.RetryAfter == 0:
			t.Error("RetryAfter is 0, want the vendor's wait")
		}
		if c := e.counters(); c.Throttles != 1 {
			t.Errorf("simulator throttled %d calls, want 1", c.Throttles)
		}
		noLeaks(t, err.Error(), e.secrets())
	})
}

// 5. transient.
func testTransient(t *testing.T, s *suite) {
	cases := []struct {
		name   string
		spec   vendorsim.FaultSpec
		status int  // expected HTTPStatus of the whole-call error, 0: any
		code   bool // the whole-call error carries Features.TransientCode
		item   bool // per-item answers instead of a whole-call error
	}{
		{name: "an injected whole-call code " + s.f.TransientCode, spec: vendorsim.FaultSpec{ErrorRates: map[string]float64{s.f.TransientCode: 1}}, code: true},
		{name: "an injected gateway HTTP 502", spec: vendorsim.FaultSpec{HTTP5xxRate: 1, HTTPStatus: http.StatusBadGateway}, status: http.StatusBadGateway},
		{name: "an outage answering HTTP 503", spec: vendorsim.FaultSpec{OutageFor: vendorsim.Duration(time.Hour)}, status: http.StatusServiceUnavailable},
		{name: "an injected per-item code " + s.f.TransientItemCode, spec: vendorsim.FaultSpec{ItemErrorRates: map[string]float64{s.f.TransientItemCode: 1}}, item: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				e := s.start(t, s.withFaults(tc.spec))
				call := e.oneCall(t, s.f.ID(0), s.batchItem(0), s.batchItem(1))
				res, err := e.c.Send(t.Context(), call)
				if tc.item {
					if err != nil {
						t.Fatalf("whole-call error %v, want per-item results", err)
					}
					if len(res.Items) != len(call.Items) {
						t.Fatalf("%d results for %d items", len(res.Items), len(call.Items))
					}
					for i, r := range res.Items {
						if r.Class != vendors.Retry || r.Code != s.f.TransientItemCode {
							t.Errorf("item %d: %s code %q %q, want retry code %q", i, r.Class, r.Code, r.Message, s.f.TransientItemCode)
						}
					}
					return
				}
				ve := wholeError(t, res, err)
				if ve.Class != vendors.Retry || vendors.ClassOf(err) != vendors.Retry {
					t.Errorf("class %s, want retry (%v)", ve.Class, err)
				}
				if tc.code && ve.Code != s.f.TransientCode {
					t.Errorf("code %q, want %q", ve.Code, s.f.TransientCode)
				}
				if tc.status != 0 && ve.HTTPStatus != tc.status {
					t.Errorf("HTTPStatus %d, want %d", ve.HTTPStatus, tc.status)
				}
				noLeaks(t, err.Error(), e.secrets())
			})
		})
	}
}

// 6. bad credentials.
func testBadCredentials(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t, s.withSecret(wrongSecret))
		call := e.oneCall(t, s.f.ID(0), s.batchItem(0))
		for attempt := 1; attempt <= 2; attempt++ {
			res, err := e.c.Send(t.Context(), call)
			ve := wholeError(t, res, err)
			if c := ve.Class; c != vendors.Permanent && c != vendors.ReSign {
				t.Errorf("attempt %d: class %s, want permanent or re-sign (%v)", attempt, c, err)
			}
			if vendors.ClassOf(err) != ve.Class {
				t.Errorf("attempt %d: ClassOf = %s, Error.Class = %s", attempt, vendors.ClassOf(err), ve.Class)
			}
			noLeaks(t, err.Error(), e.secrets(wrongSecret))
		}
		if c := e.counters(); c.SigFailures != 2 {
			t.Errorf("simulator counted %d credential failures, want 2", c.SigFailures)
		}
	})
}

// 7. one attempt.
func testOneAttempt(t *testing.T, s *suite) {
	cases := []struct {
		name    string
		opts    []func(*vendorsim.Config)
		before  int // calls sent (and not counted) before the one measured
		timeout time.Duration
	}{
		{name: "a successful call"},
		{name: "a transient whole-call code", opts: []func(*vendorsim.Config){s.withFaults(vendorsim.FaultSpec{ErrorRates: map[string]float64{s.f.TransientCode: 1}})}},
		{name: "an HTTP 502", opts: []func(*vendorsim.Config){s.withFaults(vendorsim.FaultSpec{HTTP5xxRate: 1})}},
		{name: "an HTTP 503 outage", opts: []func(*vendorsim.Config){s.withFaults(vendorsim.FaultSpec{OutageFor: vendorsim.Duration(time.Hour)})}},
		{name: "a call that hangs until the context times out", opts: []func(*vendorsim.Config){s.withFaults(vendorsim.FaultSpec{TimeoutRate: 1})}, timeout: 3 * time.Second},
		{name: "a throttled call", opts: []func(*vendorsim.Config){s.withQPS(1)}, before: 1},
		{name: "a wrong secret", opts: []func(*vendorsim.Config){s.withSecret(wrongSecret)}},
		{name: "a transient per-item code", opts: []func(*vendorsim.Config){s.withFaults(vendorsim.FaultSpec{ItemErrorRates: map[string]float64{s.f.TransientItemCode: 1}})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				e := s.start(t, tc.opts...)
				for i := range tc.before {
					_, _ = e.c.Send(t.Context(), e.oneCall(t, s.f.ID(200+i), s.batchItem(i)))
				}
				call := e.oneCall(t, s.f.ID(0), s.batchItem(0), s.batchItem(1))
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				sent, received := e.rec.count(), e.calls()
				_, err := e.c.Send(ctx, call)
				if got := e.rec.count() - sent; got != 1 {
					t.Errorf("Send made %d HTTP requests, want 1 (err %v)", got, err)
				}
				if got := e.calls() - received; got != 1 {
					t.Errorf("the simulator received %d requests, want 1", got)
				}
			})
		})
	}
}

// 7b. one attempt over a loopback socket: the request count is taken at the
// server too, so a retry inside the HTTP stack would show.
func testOneAttemptSocket(t *testing.T, s *suite) {
	cases := []struct {
		name    string
		spec    vendorsim.FaultSpec
		timeout time.Duration
	}{
		{name: "an HTTP 502", spec: vendorsim.FaultSpec{HTTP5xxRate: 1}},
		{name: "a call that hangs until the context times out", spec: vendorsim.FaultSpec{TimeoutRate: 1}, timeout: 200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := s.newSim(t)
			srv := httptest.NewServer(bodyFirst(sim.Handler()))
			t.Cleanup(srv.Close)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			t.Cleanup(tr.CloseIdleConnections)
			e := s.connect(t, sim, srv.URL+"/"+string(s.f.Vendor), tr)
			// A first, successful call opens a connection, so the measured
			// one reuses it (where a transport could be tempted to replay).
			if _, err := e.c.Send(t.Context(), e.oneCall(t, s.f.ID(300), s.batchItem(2))); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if err := sim.SetFaults(s.f.Vendor, tc.spec); err != nil {
				t.Fatal(err)
			}
			call := e.oneCall(t, s.f.ID(0), s.batchItem(0))
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			sent, received := e.rec.count(), e.calls()
			_, err := e.c.Send(ctx, call)
			if err == nil {
				t.Fatal("Send succeeded, want the injected failure")
			}
			if got := e.rec.count() - sent; got != 1 {
				t.Errorf("Send made %d HTTP requests, want 1 (err %v)", got, err)
			}
			if got := e.calls() - received; got != 1 {
				t.Errorf("the server received %d requests, want 1", got)
			}
		})
	}
}

// bodyFirst reads the request body before h runs. net/http notices a
// client that went away (and cancels the request context) only once the
// body has been read, and the simulator's hang fault waits for that
// context before it reads the body.
func bodyFirst(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "vendorstest: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// 8. cancel.
func testCancel(t *testing.T, s *suite) {
	cases := []struct {
		name     string
		deadline time.Duration // 0: the caller cancels
	}{
		{name: "the caller cancels while the vendor hangs"},
		{name: "the caller's deadline passes while the vendor hangs", deadline: 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				e := s.start(t, s.withFaults(vendorsim.FaultSpec{TimeoutRate: 1}))
				call := e.oneCall(t, s.f.ID(0), s.batchItem(0))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tc.deadline > 0 {
					ctx, cancel = context.WithTimeout(t.Context(), tc.deadline)
					defer cancel()
				}
				type outcome struct {
					res     vendors.Result
					err     error
					elapsed time.Duration
				}
				done := make(chan outcome, 1)
				start := time.Now()
				go func() {
					res, err := e.c.Send(ctx, call)
					done <- outcome{res, err, time.Since(start)}
				}()
				if tc.deadline == 0 {
					synctest.Wait()
					select {
					case o := <-done:
						t.Fatalf("Send returned before the context ended: %+v, %v", o.res, o.err)
					default:
					}
					cancel()
				}
				o := <-done
				if o.err == nil {
					t.Fatalf("Send returned %+v and no error", o.res)
				}
				if !errors.Is(o.err, ctx.Err()) {
					t.Errorf("error %q does not wrap %v", o.err, ctx.Err())
				}
				if o.elapsed > tc.deadline {
					t.Errorf("Send returned %s after the context ended, want at once", o.elapsed-tc.deadline)
				}
				if len(o.res.Items) != 0 {
					t.Errorf("a failed Send returned %d item results", len(o.res.Items))
				}
				noLeaks(t, o.err.Error(), e.secrets())
			})
		})
	}
}

// 9. re-sign per attempt.
func testResign(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t)
		call := e.oneCall(t, s.f.ID(0), s.batchItem(0))
		// 20 minutes apart: beyond the signature validity of Volcengine
		// (15 min) and ZEGO (10 min), so a reused signature is rejected.
		for attempt := 1; attempt <= 2; attempt++ {
			if attempt == 2 {
				time.Sleep(20 * time.Minute)
			}
			res, err := e.c.Send(t.Context(), call)
			if err != nil || len(res.Items) != 1 || res.Items[0].Class != vendors.OK {
				t.Fatalf("attempt %d: %+v, %v; want ok", attempt, res, err)
			}
		}
		reqs := e.rec.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(reqs))
		}
		a, b := s.f.Fresh(reqs[0]), s.f.Fresh(reqs[1])
		switch {
		case a == "" || b == "":
			t.Errorf("a request carries no signing material (%d and %d bytes)", len(a), len(b))
		case a == b:
			t.Error("both attempts carry the same signing material")
		}
		if c := e.counters(); c.SigFailures != 0 {
			t.Errorf("simulator counted %d credential failures, want 0", c.SigFailures)
		}
	})
}

// 10. concurrent writes for one From.
func testConflict(t *testing.T, s *suite) {
	synctest.Test(t, func(t *testing.T) {
		e := s.start(t, func(cfg *vendorsim.Config) { cfg.WriteTime = time.Second })
		from := s.f.ID(0)
		callA := e.oneCall(t, from, s.batchItem(0))
		callB := e.oneCall(t, from, s.batchItem(1))
		type outcome struct {
			res vendors.Result
			err error
		}
		a, b := make(chan outcome, 1), make(chan outcome, 1)
		go func() {
			res, err := e.c.Send(t.Context(), callA)
			a <- outcome{res, err}
		}()
		synctest.Wait() // A is being applied (sleeping WriteTime)
		go func() {
			res, err := e.c.Send(t.Context(), callB)
			b <- outcome{res, err}
		}()
		var ob outcome
		if s.f.ConflictCode != "" {
			ob = <-b
			select {
			case <-a:
				t.Fatal("the first write finished before the second was answered: no overlap")
			default:
			}
		}
		oa := <-a
		if s.f.ConflictCode == "" {
			ob = <-b
		}

		c := e.counters()
		if c.Overlaps != 1 {
			t.Errorf("simulator counted %d overlaps, want 1", c.Overlaps)
		}
		if oa.err != nil || len(oa.res.Items) != 1 || oa.res.Items[0].Class != vendors.OK {
			t.Errorf("first write: %+v, %v; want ok", oa.res, oa.err)
		}
		if s.f.ConflictCode == "" {
			if ob.err != nil || len(ob.res.Items) != 1 || ob.res.Items[0].Class != vendors.OK {
				t.Errorf("overlapping write: %+v, %v; want ok (the vendor has no conflict answer)", ob.res, ob.err)
			}
			return
		}
		if c.Conflicts != 1 {
			t.Errorf("simulator answered %d conflicts, want 1", c.Conflicts)
		}
		if p := conflictProblem(ob.res, ob.err, s.f.ConflictCode); p != "" {
			t.Error("overlapping write: " + p)
		}
		if f, ok := e.friend(from)(callB.Items[0].To); ok {
			t.Errorf("the conflicting write was applied: %s", showFriend(f))
		}
	})
}

// conflictProblem says how an answer fails to be the conflict code as
// Retry, whole-call or on every item; "" when it is.
func conflictProblem(res vendors.Result, err error, code string) string {
	if err != nil {
		var ve *vendors.Error
		if !errors.As(err, &ve) {
			return fmt.Sprintf("error %v is not a *vendors.Error", err)
		}
		if ve.Code != code || ve.Class != vendors.Retry {
			return fmt.Sprintf("whole-call %s code %q, want retry code %q", ve.Class, ve.Code, code)
		}
		return ""
	}
	if len(res.Items) == 0 {
		return "no error and no item results"
	}
	for i, r := range res.Items {
		if r.Code != code || r.Class != vendors.Retry {
			return fmt.Sprintf("item %d: %s code %q, want retry code %q", i, r.Class, r.Code, code)
		}
	}
	return ""
}

// wholeError requires a whole-call failure: a *vendors.Error and no item
// results.
func wholeError(t *testing.T, res vendors.Result, err error) *vendors.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Send returned %+v and no error, want a whole-call error", res)
	}
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *vendors.Error", err, err)
	}
	if len(res.Items) != 0 {
		t.Errorf("a whole-call error came with %d item results", len(res.Items))
	}
	return ve
}

// report fails the test with the first problems and a count of the rest.
func report(t *testing.T, what string, problems []string) {
	t.Helper()
	const shown = 10
	for i, p := range problems {
		if i == shown {
			t.Errorf("%s: and %d more problems", what, len(problems)-shown)
			return
		}
		t.Errorf("%s: %s", what, p)
	}
}

func noLeaks(t *testing.T, text string, secrets []string) {
	t.Helper()
	for _, l := range leaks(text, secrets) {
		t.Errorf("error text holds %s", l)
	}
}
