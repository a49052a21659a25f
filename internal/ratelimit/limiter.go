package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/event"
)

// Limiter hands out vendor-call tokens per budget. It is safe for
// concurrent use.
type Limiter struct {
	cfg     Config
	rdb     redis.UniversalClient // nil: in-process only (NewLocal)
	log     *slog.Logger
	m       *Metrics
	budgets map[string]*budget
	epoch   time.Time // origin of the local clock

	mu        sync.Mutex // guards the transitions below
	lastProbe time.Time
	down      atomic.Bool // Redis unavailable: budgets use their local fallback
	probing   atomic.Bool
	// failures counts Redis failures in a row. One slow or failed reply
	// is not an outage: switching one worker to its local share while the
	// others still draw the full rate from Redis would exceed the budget.
	failures atomic.Int32

	// redisNow, when set (tests only), replaces Redis TIME in the script
	// so the same deterministic cases run on a real Redis. Production code
	// never sets it: the clock is Redis's.
	redisNow func() int64
	// onResult, when set (tests only), sees every take Wait makes.
	onResult func(budget string, res gcraResult)
}

type budget struct {
	b      Budget
	key    string
	params gcraParams // at the full cluster rate

	mu    sync.Mutex
	local gcraState // NewLocal: the budget itself; with Redis: the fallback bucket

	// waiters admits maxPollers polling waiters per lane (live, bulk).
	waiters [2]chan struct{}
	// sched spreads the pollers of a lane over successive tokens (see
	// slot).
	sched [2]struct {
		mu   sync.Mutex
		next time.Time // the latest wake-up a poller of the lane reserved
	}

	drain  atomic.Bool   // empty the Redis bucket on the next Redis call (after a fallback)
	factor atomic.Uint64 // last factor seen, math.Float64bits
}

// New returns a limiter whose budgets live in Redis and are shared by every
// worker using the same KeyPrefix. When Redis fails it falls back to a local
// limiter per budget (see the package documentation); it never fails open.
func New(cfg Config, rdb redis.UniversalClient, logger *slog.Logger, m *Metrics) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: new: a redis client is required (NewLocal runs in process)")
	}
	return newLimiter(cfg, rdb, logger, m)
}

// NewLocal returns an in-process limiter with the same semantics, for the
// embedded single-process mode. Members is ignored: the process is the
// whole cluster.
func NewLocal(cfg Config, logger *slog.Logger, m *Metrics) (*Limiter, error) {
	return newLimiter(cfg, nil, logger, m)
}

func newLimiter(cfg Config, rdb redis.UniversalClient, logger *slog.Logger, m *Metrics) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	l := &Limiter{
		cfg:     cfg,
		rdb:     rdb,
		log:     logger,
		m:       m,
		budgets: make(map[string]*budget, len(cfg.Budgets)),
		epoch:   time.Now(),
	}
	for _, b := range cfg.Budgets {
		bb := &budget{
			b:   b,
			key: cfg.KeyPrefix + b.Name,
			params: gcraParams{
				iv0:     1e6 / b.Rate,
				burst:   float64(b.Burst),
				reserve: b.reserveTokens(),
				dec:     cfg.Decrease,
				floor:   cfg.MinFactor,
				rec:     cfg.RecoverPerSecond / 1e6,
			},
		}
		bb.factor.Store(math.Float64bits(1))
		bb.waiters = [2]chan struct{}{make(chan struct{}, maxPollers), make(chan struct{}, maxPollers)}
		l.budgets[b.Name] = bb
		m.fallback.WithLabelValues(b.Name).Set(0)
		m.factor.WithLabelValues(b.Name).Set(1)
		m.rate.WithLabelValues(b.Name).Set(b.Rate)
		m.errors.WithLabelValues(b.Name)
		for _, lane := range []event.Lane{event.LaneLive, event.LaneBulk} {
			m.granted.WithLabelValues(b.Name, string(lane))
		}
	}
	return l, nil
}

// maxPollers bounds the waiters of one budget and lane that ask the bucket
// at the same time, in one process.
const maxPollers = 4

// Wait blocks until the budget grants one token (one vendor call) for the
// lane, or ctx ends. Between attempts it sleeps exactly the retry-after the
// limiter computed, plus a small jitter; it never spins. Bulk is granted a
// token only while the bucket keeps the live reserve.
func (l *Limiter) Wait(ctx context.Context, name string, lane event.Lane) error {
	b, ok := l.budgets[name]
	if !ok {
		return fmt.Errorf("ratelimit: wait: %w %q", ErrUnknownBudget, name)
	}
	if !lane.Valid() {
		return fmt.Errorf("ratelimit: wait: budget %q: invalid lane %q", name, lane)
	}
	bulk := lane == event.LaneBulk
	start := time.Now()
	// At most maxPollers waiters per budget and lane poll at a time; the
	// others queue here. Retry-after names when the NEXT token is free, so
	// N pollers would all wake for it and make N takes per grant (a
	// thundering herd that exhausted the Redis pool, timed takes out and
	// flipped workers into the fallback while others still drew on Redis).
	// More than one poller keeps a slow take (a probe of a Redis that is
	// down) from stalling the budget.
	li := 0
	if bulk {
		li = 1
	}
	sem := b.waiters[li]
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("ratelimit: wait: budget %q: %w", name, ctx.Err())
	}
	defer func() { <-sem }()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	sleep := func(d time.Duration) error {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ratelimit: wait: budget %q: %w", name, ctx.Err())
		case <-timer.C:
			return nil
		}
	}
	// A poller admitted while others of its lane sleep until their
	// tokens takes the token after theirs: asking now would be denied.
	if d := b.slot(li, 0, l.interval(b)); d > 0 {
		if err := sleep(d); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ratelimit: wait: budget %q: %w", name, err)
		}
		res, err := l.take(ctx, b, bulk)
		if err != nil {
			return fmt.Errorf("ratelimit: wait: budget %q: %w", name, err)
		}
		if l.onResult != nil {
			l.onResult(name, res)
		}
		if res.allowed {
			l.m.wait.WithLabelValues(name, string(lane)).Observe(time.Since(start).Seconds())
			l.m.granted.WithLabelValues(name, string(lane)).Inc()
			return nil
		}
		d := max(res.retry, time.Microsecond) + jitter(res.retry)
		if err := sleep(b.slot(li, d, l.interval(b))); err != nil {
			return err
		}
	}
}

// slot reserves a wake-up for a poller of lane li that would sleep d: no
// earlier than d from now and at least one emission interval iv after the
// latest wake-up another poller of the lane reserved, so that the pollers
// of one process wake one per token instead of all at once for the same
// token (each retry-after names when the NEXT token is free). It returns
// how long to sleep; 0 when d is 0 and no other poller sleeps.
func (b *budget) slot(li int, d, iv time.Duration) time.Duration {
	s := &b.sched[li]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	wake := now.Add(d)
	if after := s.next.Add(iv); s.next.After(now) && after.After(wake) {
		wake = after
	}
	if !wake.After(now) {
		return 0
	}
	s.next = wake
	return wake.Sub(now)
}

// interval is the budget's current emission interval (1 / (rate ×
// factor)), the spacing slot keeps between pollers.
func (l *Limiter) interval(b *budget) time.Duration {
	f := math.Float64frombits(b.factor.Load())
	if f <= 0 {
		f = 1
	}
	return time.Duration(float64(time.Second) / (b.b.Rate * f))
}

// jitter spreads waiters that were told the same retry-after: up to 1/16
// of it, at most 2 ms. GCRA keeps the schedule, so a late waiter loses no
// throughput while the bucket is not full.
func jitter(retry time.Duration) time.Duration {
	j := min(retry/16, 2*time.Millisecond)
	if j <= 0 {
		return 0
	}
	return rand.N(j)
}

// Throttled reports that the vendor rejected a call of the budget for
// exceeding its rate: the budget's rate factor is multiplied by Decrease
// (not below MinFactor) for every worker, and recovers by
// RecoverPerSecond. A positive retryAfter (capped at MaxPause) also stops
// the whole budget until then. Unknown budgets are logged and ignored.
func (l *Limiter) Throttled(name string, retryAfter time.Duration) {
	b, ok := l.budgets[name]
	if !ok {
		l.log.Warn("ratelimit: throttled: unknown budget", slog.String("budget", name))
		return
	}
	pause := min(max(retryAfter, 0), l.cfg.MaxPause)
	pauseUS := strconv.FormatInt(pause.Microseconds(), 10)
	if l.rdb != nil && !l.down.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
		res, err := l.redisOp(ctx, b, "throttle", false, pauseUS)
		cancel()
		if err == nil {
			l.log.Info("ratelimit: vendor throttled; rate lowered", slog.String("budget", name),
				slog.Float64("factor", res.factor), slog.Duration("pause", pause))
			return
		}
		l.failed(b, err)
	}
	b.mu.Lock()
	res := b.local.throttle(l.localNow(), l.localParams(b), float64(pause.Microseconds()))
	b.mu.Unlock()
	l.setFactor(b, res.factor)
	l.log.Info("ratelimit: vendor throttled; rate lowered", slog.String("budget", name),
		slog.Float64("factor", res.factor), slog.Duration("pause", pause), slog.Bool("local", true))
}

// Run probes Redis every ProbeInterval while the limiter is in fallback, so
// it returns to Redis even when no call is waiting. It returns nil when ctx
// ends. Waiters also probe (at most once per ProbeInterval), so Run is an
// optimisation, not a requirement.
func (l *Limiter) Run(ctx context.Context) error {
	if l.rdb == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.probe(ctx)
		}
	}
}

// InFallback reports whether Redis is considered down and budgets use
// their local fallback.
func (l *Limiter) InFallback() bool { return l.down.Load() }

// take asks Redis (or the local bucket) for one token.
func (l *Limiter) take(ctx context.Context, b *budget, bulk bool) (gcraResult, error) {
	if l.rdb != nil {
		l.probe(ctx)
		if !l.down.Load() {
			drain := b.drain.Load()
			arg := ""
			if drain {
				arg = "1"
			}
			res, err := l.redisOp(ctx, b, "take", bulk, arg)
			if err == nil {
				l.failures.Store(0)
				if drain {
					b.drain.CompareAndSwap(true, false)
				}
				return res, nil
			}
			if ctx.Err() != nil {
				return gcraResult{}, ctx.Err()
			}
			if l.failures.Add(1) < failuresToFallback {
				// Not granted (fail closed); ask again shortly.
				l.m.errors.WithLabelValues(b.b.Name).Inc()
				return gcraResult{retry: failureRetry}, nil
			}
			l.failed(b, err)
		}
	}
	b.mu.Lock()
	res := b.local.take(l.localNow(), l.localParams(b), bulk, false)
	b.mu.Unlock()
	l.setFactor(b, res.factor)
	return res, nil
}

// redisOp runs the script once, bounded by Timeout.
func (l *Limiter) redisOp(ctx context.Context, b *budget, op string, bulk bool, arg string) (gcraResult, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	reserve := 0.0
	if bulk {
		reserve = b.params.reserve
	}
	now := ""
	if l.redisNow != nil {
		now = strconv.FormatInt(l.redisNow(), 10)
	}
	p := b.params
	vals, err := script.Run(ctx, l.rdb, []string{b.key}, op,
		ff(p.iv0), ff(p.burst), ff(reserve), ff(p.dec), ff(p.floor), ff(p.rec), arg, now).Int64Slice()
	if err != nil {
		return gcraResult{}, fmt.Errorf("ratelimit: %s %s: %w", op, b.b.Name, err)
	}
	if len(vals) != 5 {
		return gcraResult{}, fmt.Errorf("ratelimit: %s %s: script returned %d values, want 5", op, b.b.Name, len(vals))
	}
	res := gcraResult{
		allowed: vals[0] == 1,
		retry:   time.Duration(vals[1]) * time.Microsecond,
		now:     vals[2],
		factor:  float64(vals[3]) / 1e6,
		tokens:  float64(vals[4]) / 1e6,
	}
	l.setFactor(b, res.factor)
	return res, nil
}

func ff(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func (l *Limiter) setFactor(b *budget, f float64) {
	if math.Float64bits(f) != b.factor.Swap(math.Float64bits(f)) {
		l.m.factor.WithLabelValues(b.b.Name).Set(f)
	}
}

// localNow is the process clock in microseconds since the limiter started.
func (l *Limiter) localNow() float64 {
	return float64(time.Since(l.epoch).Nanoseconds()) / 1e3
}

// localParams are the parameters of the local bucket: the full budget for
// NewLocal, else this worker's share for the fallback.
func (l *Limiter) localParams(b *budget) gcraParams {
	if l.rdb == nil {
		return b.params
	}
	return fallbackParams(b.b, b.params, l.members())
}

// fallbackParams shares a budget among m workers that cannot coordinate:
// each gets burst max(1, ⌊Burst/m⌋) and rate min(Rate/m, (Rate+Burst)/m −
// burst), so m workers together stay within Rate + Burst calls in any
// 1-second window. While Burst ≥ m that rate is exactly Rate/m. (If
// m ≥ Rate + Burst no share can keep that bound; the rate is then Rate/m.)
func fallbackParams(b Budget, full gcraParams, m int) gcraParams {
	mf := float64(m)
	burst := math.Max(1, math.Floor(float64(b.Burst)/mf))
	rate := math.Min(b.Rate/mf, (b.Rate+float64(b.Burst))/mf-burst)
	if rate <= 0 {
		rate = b.Rate / mf
	}
	p := full
	p.iv0 = 1e6 / rate
	p.burst = burst
	p.reserve = 0
	if b.Reserve > 0 {
		p.reserve = math.Max(1, b.Reserve*burst)
	}
	return p
}

func (l *Limiter) members() int {
	if l.cfg.Members == nil {
		return 1
	}
	return max(1, l.cfg.Members())
}

// failuresToFallback consecutive Redis failures (errors or Timeout) make
// an outage; failureRetry is the wait after a failure below that count.
const (
	failuresToFallback = 3
	failureRetry       = 100 * time.Millisecond
)

// failed records a Redis failure and switches every budget to its local
// fallback (once per outage).
func (l *Limiter) failed(b *budget, err error) {
	l.m.errors.WithLabelValues(b.b.Name).Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down.Load() {
		return
	}
	l.lastProbe = time.Now()
	now := l.localNow()
	members := l.members()
	for _, bb := range l.budgets {
		p := fallbackParams(bb.b, bb.params, members)
		f := math.Float64frombits(bb.factor.Load())
		iv := p.iv0 / f
		bb.mu.Lock()
		// An empty bucket: the switch cannot add a burst to what Redis
		// already granted in the current window.
		bb.local = gcraState{set: true, tat: now + p.burst*iv, iv: iv, f: f, ft: now}
		bb.mu.Unlock()
		l.m.fallback.WithLabelValues(bb.b.Name).Set(1)
	}
	l.down.Store(true)
	l.log.Warn("ratelimit: redis unavailable; using the local fallback limiter",
		slog.String("budget", b.b.Name), slog.Int("members", members), slog.Any("error", err))
}

// probe checks Redis at most once per ProbeInterval while down, and
// returns every budget to Redis when it answers. The first Redis call of
// each budget afterwards empties its bucket, so the switch back cannot
// burst on top of what the fallback granted.
func (l *Limiter) probe(ctx context.Context) {
	if !l.down.Load() {
		return
	}
	l.mu.Lock()
	due := time.Since(l.lastProbe) >= l.cfg.ProbeInterval
	if due {
		l.lastProbe = time.Now()
	}
	l.mu.Unlock()
	if !due || !l.probing.CompareAndSwap(false, true) {
		return
	}
	defer l.probing.Store(false)
	pctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	err := l.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.down.Load() {
		return
	}
	for _, bb := range l.budgets {
		bb.drain.Store(true)
		l.m.fallback.WithLabelValues(bb.b.Name).Set(0)
	}
	l.down.Store(false)
	l.log.Info("ratelimit: redis is back; budgets shared again", slog.Duration("probe_interval", l.cfg.ProbeInterval))
}
