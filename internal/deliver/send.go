package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

// Reasons a call's retry loop stops without a vendor answer for its items.
var (
	errReleased = errors.New("deliver: released")
	errFenced   = errors.New("deliver: fenced")
	errBudget   = errors.New("deliver: budget spent")
)

// attemptError is a failed attempt whose items may be retried.
type attemptError struct {
	class vendors.Class
	err   error
}

func (e *attemptError) Error() string { return e.class.String() + ": " + e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

var errPartial = errors.New("deliver: some items failed")

// vendorNamer is implemented by the vendor clients; deliver uses it for the
// vendor label.
type vendorNamer interface{ Vendor() string }

func vendorOf(s Sender, calls []vendors.Call) string {
	if v, ok := s.(vendorNamer); ok {
		return v.Vendor()
	}
	if len(calls) > 0 {
		if v, _, ok := strings.Cut(calls[0].Budget, ":"); ok && v != "" {
			return v
		}
	}
	return "unknown"
}

// normClass maps unknown classes to Retry (never lose an item to a class
// this build does not know).
func normClass(c vendors.Class) vendors.Class {
	if c < vendors.OK || c > vendors.Permanent {
		return vendors.Retry
	}
	return c
}

// run is the state of one Deliver's calls.
type run struct {
	d        *Deliverer
	ctx      context.Context // cancelled on shutdown or lease loss
	waitCtx  context.Context // ctx bounded by the retry budget, for the limiter
	deadline time.Time
	key      jobs.Key
	sender   Sender
	vendor   string
	b        *batch
	tok      token         // a token already granted, for the first call on its budget
	lastRA   time.Duration // the last retry-after a vendor gave
	// last failure, for RetryLater outcomes
	lastClass vendors.Class
	lastCode  string
	lastMsg   string
}

// send sends calls one at a time and records every call item's outcome in
// b. Once the context ends, the fence fails or the budget (until deadline)
// is spent, the remaining calls end unsent. tok is a token already granted.
func (d *Deliverer) send(ctx context.Context, key jobs.Key, b *batch, sender Sender, calls []vendors.Call, deadline time.Time, tok token) {
	waitCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	r := &run{d: d, ctx: ctx, waitCtx: waitCtx, deadline: deadline, key: key, sender: sender,
		vendor: vendorOf(sender, calls), b: b, tok: tok}
	stop := tok.stop
	for i := range calls {
		call := &calls[i]
		if cap(b.callRes) < len(call.Items) {
			b.callRes = make([]jobs.Outcome, len(call.Items))
		}
		res := b.callRes[:len(call.Items)]
		clear(res)
		if stop.Kind == 0 {
			stop = r.call(call, res)
		} else {
			fill(res, stop)
		}
		for j := range call.Items {
			b.apply(&call.Items[j], &res[j])
		}
	}
}

// call sends one call with retries, setting res[j] for every call item. It
// returns a non-zero Outcome when the calls after it must not be sent.
func (r *run) call(call *vendors.Call, res []jobs.Outcome) (stop jobs.Outcome) {
	d, b := r.d, r.b
	if len(call.Items) == 0 {
		return jobs.Outcome{}
	}
	remaining := time.Until(r.deadline)
	if remaining <= 0 {
		o := r.retryLater(reasonBudget)
		fill(res, o)
		return o
	}
	b.pending = b.pending[:0]
	for j := range call.Items {
		b.pending = append(b.pending, j)
	}
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     d.cfg.RetryInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         d.cfg.RetryMax,
		MaxElapsedTime:      remaining, // what is left of RetryBudget, set explicitly
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	fl := &floorBackOff{BackOff: backoff.WithMaxRetries(exp, uint64(d.cfg.RetryMaxAttempts-1)), deadline: r.deadline}
	a := &attempt{r: r, call: call, res: res, floor: fl}
	err := backoff.RetryNotify(a.do, backoff.WithContext(fl, r.ctx), a.notify)
	if err == nil || len(b.pending) == 0 {
		return jobs.Outcome{}
	}
	var o jobs.Outcome
	switch {
	case errors.Is(err, errReleased) || r.ctx.Err() != nil:
		o = jobs.Outcome{Kind: jobs.Released, Reason: reasonReleased}
		stop = o
	case errors.Is(err, errFenced):
		o = jobs.Outcome{Kind: jobs.Released, Reason: reasonFenced}
		stop = o
	case errors.Is(err, errBudget):
		o = r.retryLater(reasonLimiter)
		stop = o
	default:
		o = r.retryLater(reasonBudget)
		if !time.Now().Before(r.deadline) {
			stop = o
		}
	}
	for _, j := range b.pending {
		res[j] = o
	}
	level := slog.LevelWarn
	if o.Kind == jobs.Released {
		level = slog.LevelInfo // shutdown or lease handover: expected
	}
	d.log.Log(r.ctx, level, "deliver: call not completed", "vendor", r.vendor, "api", call.API,
		"batch_size", len(call.Items), "pending", len(b.pending), "attempt", a.n,
		"class", r.lastClass.String(), "code", r.lastCode, "outcome", o.Kind.String())
	return stop
}

func (r *run) retryLater(reason string) jobs.Outcome {
	return jobs.Outcome{Kind: jobs.RetryLater, Reason: reason, Code: r.lastCode, Message: r.lastMsg, Delay: r.lastRA}
}

// attempt is one call's retry loop.
type attempt struct {
	r        *run
	call     *vendors.Call
	res      []jobs.Outcome
	floor    *floorBackOff
	n        int  // attempts made
	resigned bool // a ReSign answer was already retried
}

// do is one attempt: a rate-limit token, the fence, one Send of the items
// still pending.
func (a *attempt) do() error {
	r, d, b := a.r, a.r.d, a.r.b
	if r.tok.budget != "" && r.tok.budget == a.call.Budget && time.Since(r.tok.at) <= maxTokenAge {
		r.tok = token{} // granted before the batch was topped up
	} else if err := d.lim.Wait(r.waitCtx, a.call.Budget, b.lane); err != nil {
		switch {
		case r.ctx.Err() != nil:
			return backoff.Permanent(errReleased)
		case r.waitCtx.Err() != nil:
			return backoff.Permanent(errBudget)
		}
		r.lastClass = vendors.Retry
		return &attemptError{class: vendors.Retry, err: fmt.Errorf("deliver: rate limiter: %w", err)}
	}
	if f := d.cfg.Fence; f != nil && !f(b.partition) {
		return backoff.Permanent(errFenced)
	}
	if r.ctx.Err() != nil {
		return backoff.Permanent(errReleased)
	}
	sub := *a.call
	if len(b.pending) < len(a.call.Items) {
		b.sub = b.sub[:0]
		for _, j := range b.pending {
			b.sub = append(b.sub, a.call.Items[j])
		}
		sub.Items = b.sub
	}
	a.n++
	start := time.Now()
	result, err := r.sender.Send(r.ctx, sub)
	d.m.duration.WithLabelValues(r.vendor, a.call.API).Observe(time.Since(start).Seconds())
	d.m.callItems.Observe(float64(len(sub.Items)))
	if err != nil {
		return a.whole(err, len(sub.Items))
	}
	if len(result.Items) != len(sub.Items) {
		d.m.calls.WithLabelValues(r.vendor, a.call.API, vendors.Retry.String()).Inc()
		r.lastClass, r.lastCode, r.lastMsg = vendors.Retry, "", "malformed result"
		return &attemptError{class: vendors.Retry,
			err: fmt.Errorf("deliver: %s: %d results for %d items", a.call.API, len(result.Items), len(sub.Items))}
	}
	worst, retryClass := vendors.OK, vendors.OK
	throttled := false
	kept := b.pending[:0]
	for k, ir := range result.Items {
		j := b.pending[k]
		c := normClass(ir.Class)
		worst = max(worst, c)
		switch c {
		case vendors.OK:
			a.res[j] = jobs.Outcome{Kind: jobs.Applied}
			continue
		case vendors.Permanent:
			a.res[j] = jobs.Outcome{Kind: jobs.Permanent, Code: ir.Code, Message: ir.Message,
				Reason: fmt.Sprintf(reasonPermanentFmt, a.call.API)}
			d.log.WarnContext(r.ctx, "deliver: item refused", "vendor", r.vendor, "api", a.call.API,
				"batch_size", len(sub.Items), "attempt", a.n, "class", c.String(), "code", ir.Code,
				"vendor_message", ir.Message) // carries the vendor's request id; clients scrub secrets
			continue
		case vendors.ReSign:
			if a.resigned {
				a.res[j] = jobs.Outcome{Kind: jobs.RetryLater, Reason: reasonResign, Code: ir.Code, Message: ir.Message}
				continue
			}
		case vendors.Throttled:
			throttled = true
		}
		retryClass = max(retryClass, c)
		r.lastClass, r.lastCode, r.lastMsg = c, ir.Code, ir.Message
		kept = append(kept, j)
	}
	b.pending = kept
	d.m.calls.WithLabelValues(r.vendor, a.call.API, worst.String()).Inc()
	if retryClass == vendors.ReSign {
		a.resigned = true
	}
	if throttled {
		d.lim.Throttled(a.call.Budget, 0)
	}
	if len(kept) == 0 {
		return nil
	}
	return &attemptError{class: retryClass, err: errPartial}
}

// whole handles a whole-call failure of n items.
func (a *attempt) whole(err error, n int) error {
	r, d, b := a.r, a.r.d, a.r.b
	if r.ctx.Err() != nil {
		d.m.calls.WithLabelValues(r.vendor, a.call.API, vendors.Retry.String()).Inc()
		return backoff.Permanent(errReleased)
	}
	class := normClass(vendors.ClassOf(err))
	if class == vendors.OK {
		class = vendors.Retry
	}
	d.m.calls.WithLabelValues(r.vendor, a.call.API, class.String()).Inc()
	var ve *vendors.Error
	code, msg, status := "", "transport error", 0
	var ra time.Duration
	if errors.As(err, &ve) {
		code, status, ra = ve.Code, ve.HTTPStatus, ve.RetryAfter
		if ve.Message != "" {
			msg = ve.Message
		} else if status != 0 {
			msg = fmt.Sprintf("http %d", status)
		}
	}
	r.lastClass, r.lastCode, r.lastMsg = class, code, msg
	if ra > 0 {
		r.lastRA = ra
		a.floor.floor = ra
	}
	// Never log err itself: a transport error can quote a URL that carries
	// credentials (Tencent's usersig is a query parameter).
	d.log.DebugContext(r.ctx, "deliver: call failed", "vendor", r.vendor, "api", a.call.API,
		"batch_size", n, "attempt", a.n, "class", class.String(), "code", code, "http_status", status,
		"vendor_message", msg) // carries the vendor's request id; clients scrub secrets
	switch class {
	case vendors.Permanent:
		for _, j := range b.pending {
			a.res[j] = jobs.Outcome{Kind: jobs.Permanent, Code: code, Message: msg,
				Reason: fmt.Sprintf(reasonPermanentFmt, a.call.API)}
		}
		b.pending = b.pending[:0]
		d.log.WarnContext(r.ctx, "deliver: call refused", "vendor", r.vendor, "api", a.call.API,
			"batch_size", n, "attempt", a.n, "class", class.String(), "code", code, "http_status", status,
			"vendor_message", msg) // carries the vendor's request id; clients scrub secrets
		return backoff.Permanent(err)
	case vendors.Throttled:
		d.lim.Throttled(a.call.Budget, ra)
	case vendors.ReSign:
		if a.resigned {
			for _, j := range b.pending {
				a.res[j] = jobs.Outcome{Kind: jobs.RetryLater, Reason: reasonResign, Code: code, Message: msg}
			}
			b.pending = b.pending[:0]
			return backoff.Permanent(err)
		}
		a.resigned = true
	}
	return &attemptError{class: class, err: err}
}

func (a *attempt) notify(err error, wait time.Duration) {
	r := a.r
	class := vendors.Retry
	var ae *attemptError
	if errors.As(err, &ae) {
		class = ae.class
	}
	r.d.m.retries.WithLabelValues(r.vendor, a.call.API, class.String()).Inc()
	r.d.log.DebugContext(r.ctx, "deliver: retrying", "vendor", r.vendor, "api", a.call.API,
		"batch_size", len(r.b.pending), "attempt", a.n, "class", class.String(), "code", r.lastCode, "wait", wait)
}

// floorBackOff makes the next wait at least the vendor's retry-after and
// stops when the wait would end after the retry budget's deadline.
type floorBackOff struct {
	backoff.BackOff
	floor    time.Duration
	deadline time.Time
}

func (f *floorBackOff) NextBackOff() time.Duration {
	next := f.BackOff.NextBackOff()
	if next == backoff.Stop {
		return backoff.Stop
	}
	if f.floor > next {
		next = f.floor
	}
	f.floor = 0
	if time.Now().Add(next).After(f.deadline) {
		return backoff.Stop
	}
	return next
}
