package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

// Sender is one app's vendor client.
type Sender interface {
	// Split turns the merged items of one From into vendor calls, each
	// within its API's cap. Every part of an item keeps the item's Ref and
	// carries a subset of its fields.
	Split(from string, items []vendors.Item) []vendors.Call
	// Send makes exactly one attempt. Whole-call failures are
	// *vendors.Error; otherwise the Result has one ItemResult per call item.
	// Neither method may retain the items or calls after it returns.
	Send(ctx context.Context, call vendors.Call) (vendors.Result, error)
}

// Limiter shares vendor rate budgets.
type Limiter interface {
	// Wait blocks until one token (one vendor call) of budget is granted.
	Wait(ctx context.Context, budget string, lane event.Lane) error
	// Throttled reports that the vendor said "too fast" for budget; the
	// limiter slows that budget down. retryAfter is 0 when the vendor gave
	// no hint.
	Throttled(budget string, retryAfter time.Duration)
}

// Versions stores the last-applied version per field of one account.
// Fields are "<to>/<field>", field as in event.(*Event).Fields.
type Versions interface {
	// Load returns one Version per field, in order; the zero Version means
	// never applied.
	Load(ctx context.Context, key jobs.Key, fields []string) ([]jobs.Version, error)
	// Raise sets each field's version to max(stored, vs[i]); it never
	// lowers one.
	Raise(ctx context.Context, key jobs.Key, fields []string, vs []jobs.Version) error
}

// Defaults for the zero values of Config.
const (
	DefaultRetryInitial     = 100 * time.Millisecond
	DefaultRetryMax         = 5 * time.Second
	DefaultRetryBudget      = 20 * time.Second
	DefaultRetryMaxAttempts = 8
)

// raiseTimeout bounds Versions.Raise, which runs even when the delivery's
// context was cancelled after the vendor confirmed.
const raiseTimeout = 5 * time.Second

// Config is the in-process retry policy. Zero fields take their defaults.
type Config struct {
	// RetryInitial is the first backoff interval (jittered ±50%, doubling).
	// Default 100ms.
	RetryInitial time.Duration
	// RetryMax caps one backoff interval. Default 5s.
	RetryMax time.Duration
	// RetryBudget bounds the time one Deliver spends on its calls,
	// rate-limit waits and retries included; calls left when it is spent
	// end RetryLater. It must stay below the queue's AckWait minus the
	// coalescer's MaxDelay (checked by the worker's config). Default 20s.
	RetryBudget time.Duration
	// RetryMaxAttempts bounds the attempts of one call (the first one
	// included). Default 8.
	RetryMaxAttempts int
	// Fence reports whether this worker still owns the partition; it is
	// checked right before every Send. false: the call's events are
	// Released, unsent. nil means always valid.
	Fence func(partition int) bool
}

func (c Config) withDefaults() Config {
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	if c.RetryMaxAttempts == 0 {
		c.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.RetryInitial < 0:
		return fmt.Errorf("deliver: config: retry initial %v is negative", c.RetryInitial)
	case c.RetryMax < 0:
		return fmt.Errorf("deliver: config: retry max %v is negative", c.RetryMax)
	case c.RetryBudget < 0:
		return fmt.Errorf("deliver: config: retry budget %v is negative", c.RetryBudget)
	case c.RetryMaxAttempts < 0:
		return fmt.Errorf("deliver: config: retry max attempts %d is negative", c.RetryMaxAttempts)
	}
	d := c.withDefaults()
	if d.RetryInitial > d.RetryMax {
		return fmt.Errorf("deliver: config: retry initial %v exceeds retry max %v", d.RetryInitial, d.RetryMax)
	}
	if d.RetryMax > d.RetryBudget {
		return fmt.Errorf("deliver: config: retry max %v exceeds retry budget %v", d.RetryMax, d.RetryBudget)
	}
	return nil
}

// Deliverer delivers one account's batches. It is safe for concurrent use
// by different keys; the caller (the coalescer) guarantees at most one
// Deliver per key at a time, and Deliver itself sends one call at a time.
type Deliverer struct {
	cfg     Config
	senders func(app string) (Sender, bool)
	lim     Limiter
	ver     Versions
	log     *slog.Logger
	m       *Metrics
	pool    sync.Pool // *batch
	// lastLoadWarn (unix ns) rate-limits the load-failure warning: during a
	// Redis outage every delivery fails its load, and the version store
	// already logs the outage once; the count is in version_errors_total.
	lastLoadWarn atomic.Int64
}

// loadWarnEvery is the least time between two load-failure warnings.
const loadWarnEvery = 10 * time.Second

// New returns a Deliverer. senders maps an app to its vendor client (false:
// unknown app). A nil logger discards; a nil m collects unregistered metrics.
func New(cfg Config, senders func(app string) (Sender, bool), lim Limiter, ver Versions, logger *slog.Logger, m *Metrics) (*Deliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case senders == nil:
		return nil, errors.New("deliver: new: nil senders")
	case lim == nil:
		return nil, errors.New("deliver: new: nil limiter")
	case ver == nil:
		return nil, errors.New("deliver: new: nil versions")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	d := &Deliverer{cfg: cfg.withDefaults(), senders: senders, lim: lim, ver: ver, log: logger, m: m}
	d.pool.New = func() any { return newBatch() }
	return d, nil
}

// Outcome reasons.
const (
	reasonUnknownApp   = "unknown app"
	reasonOtherKey     = "event does not belong to this batch's account"
	reasonNoVersion    = "event has no version"
	reasonNothing      = "nothing to update"
	reasonStored       = "a newer version is already applied"
	reasonMerged       = "a newer value in the same batch was applied"
	reasonLoad         = "versions unavailable; not sent without them"
	reasonRaise        = "applied at the vendor, but its version is not stored yet"
	reasonReleased     = "shutdown or lease loss before sending"
	reasonFenced       = "partition lease no longer valid before sending"
	reasonBudget       = "in-process retry budget spent"
	reasonLimiter      = "in-process retry budget spent waiting for the rate limiter"
	reasonResign       = "credentials rejected again after re-signing"
	reasonUnsupported  = "the vendor client does not send this field"
	reasonPermanentFmt = "vendor refused the item (%s)"
)

// Deliver applies one account's events and returns one Outcome per
// envelope, in order. It never sends two calls at once and never sends a
// value whose version is not newer than the stored one.
func (d *Deliverer) Deliver(ctx context.Context, key jobs.Key, envs []*jobs.Envelope) []jobs.Outcome {
	return d.DeliverAppend(ctx, key, envs, nil)
}

// DeliverAppend is Deliver appending the outcomes to dst, so that a caller
// can reuse one slice across batches.
func (d *Deliverer) DeliverAppend(ctx context.Context, key jobs.Key, envs []*jobs.Envelope, dst []jobs.Outcome) []jobs.Outcome {
	_, dst = d.DeliverTop(ctx, key, envs, nil, dst)
	return dst
}

// TopUp returns envs with the events its account received since the batch
// was cut appended (coalesce.Coalescer.Top does this); envs itself must
// stay the prefix of the result.
type TopUp func(envs []*jobs.Envelope) []*jobs.Envelope

// DeliverTop is DeliverAppend for a batch that may grow while it waits:
// once the first call has its rate-limit token, and before anything is
// sent, it calls top (nil: never) and, if the batch grew, merges and
// splits the grown batch afresh and sends it, the first call using that
// token. Events that arrived while the call waited for its token so ride
// in that call instead of waiting for the next one. It returns the final
// batch and dst with one Outcome per envelope of it appended.
func (d *Deliverer) DeliverTop(ctx context.Context, key jobs.Key, envs []*jobs.Envelope, top TopUp, dst []jobs.Outcome) ([]*jobs.Envelope, []jobs.Outcome) {
	deadline := time.Now().Add(d.cfg.RetryBudget)
	n := len(dst)
	dst = slices.Grow(dst, len(envs))[:n+len(envs)]
	grown, tok := d.deliver(ctx, key, envs, dst[n:], top, deadline, token{}) // sets every element unless grown
	if grown != nil {
		d.m.toppedUp.Add(float64(len(grown) - len(envs)))
		envs = grown
		dst = slices.Grow(dst[:n], len(envs))[:n+len(envs)]
		d.deliver(ctx, key, envs, dst[n:], nil, deadline, tok)
	}
	return envs, dst
}

// token is what the wait before the top-up gave: a rate-limit grant for
// the first call on its budget, or the outcome of every call when that
// wait ended without one (shutdown, retry budget spent).
type token struct {
	budget string       // "": no grant
	at     time.Time    // when it was granted
	stop   jobs.Outcome // Kind 0: none
}

// maxTokenAge bounds how long after its grant the early token may still be
// used: the vendor counts calls when they arrive, and a budget window
// holds at most rate + burst grants, so every delay between grant and
// arrival that varies from call to call lets calls bunch. The default
// budgets keep 5% of the vendor's QPS as headroom for such jitter
// (ratelimit); the top-up (a versions load and a merge) may add at most
// this much to it. An older token is dropped and the call waits for a
// fresh one.
const maxTokenAge = 20 * time.Millisecond

// deliver delivers envs, setting out. With top, it waits for the first
// call's token and tops the batch up; if the batch grew it returns the
// grown batch and the token instead, out unset and nothing sent.
func (d *Deliverer) deliver(ctx context.Context, key jobs.Key, envs []*jobs.Envelope, out []jobs.Outcome,
	top TopUp, deadline time.Time, tok token) (grown []*jobs.Envelope, _ token) {
	if len(envs) == 0 {
		return nil, token{}
	}
	defer func() {
		if grown == nil {
			d.count(out)
		}
	}()
	sender, ok := d.senders(key.App)
	if !ok || sender == nil {
		fill(out, jobs.Outcome{Kind: jobs.Invalid, Reason: reasonUnknownApp})
		return nil, token{}
	}
	if ctx.Err() != nil {
		fill(out, jobs.Outcome{Kind: jobs.Released, Reason: reasonReleased})
		return nil, token{}
	}

	b := d.pool.Get().(*batch)
	defer d.pool.Put(b)
	b.reset()
	b.collect(key, envs, out)
	if len(b.slots) == 0 {
		return nil, token{}
	}
	stored, err := d.ver.Load(ctx, key, b.names)
	if err == nil && len(stored) != len(b.names) {
		err = fmt.Errorf("deliver: load versions: got %d versions for %d fields", len(stored), len(b.names))
	}
	if err != nil {
		d.m.versionErrors.WithLabelValues(versionLoad).Inc()
		o := jobs.Outcome{Kind: jobs.RetryLater, Reason: reasonLoad}
		if ctx.Err() != nil {
			o = jobs.Outcome{Kind: jobs.Released, Reason: reasonReleased}
		} else {
			level := slog.LevelDebug
			if now, last := time.Now().UnixNano(), d.lastLoadWarn.Load(); now-last >= int64(loadWarnEvery) && d.lastLoadWarn.CompareAndSwap(last, now) {
				level = slog.LevelWarn
			}
			d.log.Log(ctx, level, "deliver: load versions failed (further failures within 10s are logged at debug)",
				"app", key.App, "fields", len(b.names), "error", err)
		}
		b.fillValid(out, o)
		return nil, token{}
	}
	d.m.superseded.Add(float64(b.merge(stored)))

	items := b.buildItems(envs)
	if len(items) > 0 {
		calls := sender.Split(key.From, items)
		if top != nil && len(calls) > 0 {
			// Take the first call's token now, then see what arrived while
			// we waited.
			tok = d.waitFirst(ctx, key, deadline, calls[0], b.lane)
			if tok.budget != "" {
				if more := top(envs); len(more) > len(envs) {
					return more, tok
				}
			}
		}
		if tok.budget != "" {
			// The early token is only good for a moment: its call goes first.
			if i := slices.IndexFunc(calls, func(c vendors.Call) bool { return c.Budget == tok.budget }); i > 0 {
				c := calls[i]
				copy(calls[1:i+1], calls[:i])
				calls[0] = c
			}
		}
		d.send(ctx, key, b, sender, calls, deadline, tok)
		b.markUnsent()
		d.raise(ctx, key, b)
	}
	b.finish(out, d.m)
	return nil, token{}
}

// waitFirst waits for one token for call within the retry budget. A
// limiter error other than the end of ctx or of the budget gives neither
// a grant nor a stop: send retries the wait.
func (d *Deliverer) waitFirst(ctx context.Context, key jobs.Key, deadline time.Time, call vendors.Call, lane event.Lane) token {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := d.lim.Wait(wctx, call.Budget, lane)
	switch {
	case err == nil:
		return token{budget: call.Budget, at: time.Now()}
	case ctx.Err() != nil:
		return token{stop: jobs.Outcome{Kind: jobs.Released, Reason: reasonReleased}}
	case wctx.Err() != nil:
		d.log.WarnContext(ctx, "deliver: call not completed", "app", key.App, "api", call.API,
			"batch_size", len(call.Items), "outcome", jobs.RetryLater.String(), "reason", reasonLimiter)
		return token{stop: jobs.Outcome{Kind: jobs.RetryLater, Reason: reasonLimiter}}
	}
	return token{}
}

func (d *Deliverer) count(out []jobs.Outcome) {
	for i := range out {
		d.m.outcome(out[i].Kind)
	}
}

func fill(out []jobs.Outcome, o jobs.Outcome) {
	for i := range out {
		out[i] = o
	}
}

// raise stores the versions of the fields the vendor confirmed. It runs
// even if ctx was cancelled meanwhile: the vendor has the values.
func (d *Deliverer) raise(ctx context.Context, key jobs.Key, b *batch) {
	b.raiseNames, b.raiseVers = b.raiseNames[:0], b.raiseVers[:0]
	for i := range b.slots {
		s := &b.slots[i]
		if s.winner >= 0 && s.res.Kind == jobs.Applied {
			b.raiseNames = append(b.raiseNames, b.names[i])
			b.raiseVers = append(b.raiseVers, s.ver)
		}
	}
	if len(b.raiseNames) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), raiseTimeout)
	defer cancel()
	if err := d.ver.Raise(rctx, key, b.raiseNames, b.raiseVers); err != nil {
		// The vendor has the values but their versions are not durable (a
		// Redis outage keeps them in memory, which a kill loses). Acking
		// would let a later older event overwrite them; RetryLater keeps
		// the events in the stream, and their redelivery finds them
		// superseded once the versions are stored, or applies them again.
		for i := range b.slots {
			if s := &b.slots[i]; s.winner >= 0 && s.res.Kind == jobs.Applied {
				s.res = jobs.Outcome{Kind: jobs.RetryLater, Reason: reasonRaise}
			}
		}
		d.m.versionErrors.WithLabelValues(versionRaise).Inc()
		d.log.WarnContext(ctx, "deliver: raise versions failed; the vendor has the values, the events stay in the stream",
			"app", key.App, "fields", len(b.raiseNames), "error", err)
	}
}
