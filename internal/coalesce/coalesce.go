package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Add after Close was called.
var ErrClosed = errors.New("coalesce: closed")

// Defaults for the zero values of Config.
const (
	DefaultGrace       = 50 * time.Millisecond
	DefaultMaxDelay    = time.Second
	DefaultMaxSize     = 1000
	DefaultMaxKeys     = 100_000
	DefaultMaxBuffered = 100_000
	DefaultMaxFlushes  = 64
	DefaultMaxHold     = 10 * time.Second
)

// Config bounds how long, how much and how many values are held. A zero
// field takes its default; negative values are invalid.
type Config struct {
	// Grace flushes a key after this long with no new value for it; every
	// Add renews it. Default 50ms. Must not exceed MaxDelay.
	Grace time.Duration
	// MaxDelay flushes a key at most this long after its oldest buffered
	// value arrived, however busy the key is. Default 1s.
	MaxDelay time.Duration
	// MaxSize flushes a key when it holds this many values, and caps every
	// batch (the vendor's per-call cap). Default 1000.
	MaxSize int
	// MaxKeys bounds the keys that hold values (buffered or in flight); Add
	// for a new key blocks while it is reached. Default 100,000.
	MaxKeys int
	// MaxBuffered bounds the values held overall, buffered or in a running
	// flush; Add blocks while it is reached. Default 100,000.
	MaxBuffered int
	// MaxFlushes bounds the flushes running at once (each for a different
	// key). Due keys wait their turn in arrival order. Default 64.
	MaxFlushes int
	// MaxHold bounds how long a hold (WithHold) keeps a key: it is flushed
	// at most this long after its oldest buffered value arrived. Default
	// the larger of 10s and MaxDelay; must not be below MaxDelay.
	MaxHold time.Duration
}

func (c Config) withDefaults() Config {
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.MaxBuffered == 0 {
		c.MaxBuffered = DefaultMaxBuffered
	}
	if c.MaxFlushes == 0 {
		c.MaxFlushes = DefaultMaxFlushes
	}
	if c.MaxHold == 0 {
		c.MaxHold = max(DefaultMaxHold, c.MaxDelay)
	}
	return c
}

// Validate reports the first invalid field; zero fields are valid (they
// take their defaults).
func (c Config) Validate() error {
	switch {
	case c.Grace < 0:
		return fmt.Errorf("coalesce: config: grace %v is negative", c.Grace)
	case c.MaxDelay < 0:
		return fmt.Errorf("coalesce: config: max delay %v is negative", c.MaxDelay)
	case c.MaxSize < 0:
		return fmt.Errorf("coalesce: config: max size %d is negative", c.MaxSize)
	case c.MaxKeys < 0:
		return fmt.Errorf("coalesce: config: max keys %d is negative", c.MaxKeys)
	case c.MaxBuffered < 0:
		return fmt.Errorf("coalesce: config: max buffered %d is negative", c.MaxBuffered)
	case c.MaxFlushes < 0:
		return fmt.Errorf("coalesce: config: max flushes %d is negative", c.MaxFlushes)
	case c.MaxHold < 0:
		return fmt.Errorf("coalesce: config: max hold %v is negative", c.MaxHold)
	}
	d := c.withDefaults()
	if d.Grace > d.MaxDelay {
		return fmt.Errorf("coalesce: config: grace %v exceeds max delay %v", d.Grace, d.MaxDelay)
	}
	if d.MaxBuffered < d.MaxSize {
		return fmt.Errorf("coalesce: config: max buffered %d is below max size %d", d.MaxBuffered, d.MaxSize)
	}
	if d.MaxHold < d.MaxDelay {
		return fmt.Errorf("coalesce: config: max hold %v is below max delay %v", d.MaxHold, d.MaxDelay)
	}
	return nil
}

// HoldFunc decides whether a key that is due by Grace or MaxDelay waits
// for more values, because the source of its values is still delivering
// them (a backlog being read, say). It returns the key's group and true
// to hold the key until Release(group), MaxSize, MaxHold, room wanted by
// Add, or Close, whichever comes first. buffered is the key's buffered
// values, oldest first; it must not be retained. A HoldFunc runs with the
// Coalescer's lock held: it must be quick and must not call the Coalescer.
type HoldFunc[K comparable, V any] func(key K, buffered []V) (group int, hold bool)

// Option sets what the (non-generic) Config cannot carry.
type Option[K comparable, V any] func(*Coalescer[K, V])

// WithHold makes due keys ask h whether to wait for more values (see
// HoldFunc and Release). Without it no key is ever held.
func WithHold[K comparable, V any](h HoldFunc[K, V]) Option[K, V] {
	return func(c *Coalescer[K, V]) { c.hold = h }
}

// FlushFunc receives one batch of a key: at most MaxSize values in arrival
// order. It is never called twice at once for one key. ctx is cancelled
// only when Close's context expires before the drain completes. The batch
// belongs to the flush function until it returns and must not be retained
// afterwards (the Coalescer reuses its memory). It may call Top to add
// what arrived for its key since the batch was cut.
type FlushFunc[K comparable, V any] func(ctx context.Context, key K, batch []V)

// Stats is a snapshot of the Coalescer's load.
type Stats struct {
	Keys     int // keys holding values, buffered or in flight
	Buffered int // values waiting for a flush
	InFlight int // flushes running
	Held     int // Buffered plus the values of running flushes (what MaxBuffered bounds)
	Holding  int // keys due but held (WithHold) for more values
}

// Coalescer batches values per key. It is safe for concurrent use.
type Coalescer[K comparable, V any] struct {
	cfg   Config
	flush FlushFunc[K, V]
	base  time.Time // origin of the entries' times

	ctx    context.Context // handed to every flush
	cancel context.CancelFunc

	mu           sync.Mutex
	keys         map[K]*entry[K, V]
	nkeys        int // entries with counted set
	buffered     int // values in entry buffers
	flyingValues int // values in running flushes
	inflight     int // running flushes
	ready        []*entry[K, V]
	readyHead    int
	closed       bool
	room         chan struct{} // closed when room may have freed up; nil while nobody waits
	idle         chan struct{} // closed when closed and nothing is held
	idleClosed   bool
	spare        [][]V // recycled batch buffers
	free         []*entry[K, V]
	hold         HoldFunc[K, V]
	held         map[int]map[*entry[K, V]]struct{} // held keys by group
	nheld        int
	scratch      []*entry[K, V] // Release's work list
}

// entry is the state of one key. It lives in Coalescer.keys while the key
// holds values, flies, or carries a Defer that has not passed.
type entry[K comparable, V any] struct {
	key K
	buf []V
	// Times are offsets from Coalescer.base on the monotonic clock: one
	// clock read per Add instead of the two of time.Now.
	first     time.Duration // arrival of the oldest buffered value
	last      time.Duration // arrival of the newest buffered value
	notBefore time.Duration // Defer; 0: none
	timer     *time.Timer
	live      bool // in Coalescer.keys
	counted   bool // counted against MaxKeys
	flying    bool // a flush runs for the key
	queued    bool // due, waiting for a flush slot
	held      bool // due, held for more values (in Coalescer.held[group])
	group     int
	topped    int // values Top added to the running flush's batch
}

const (
	initialBuf = 16 // first capacity of a key's buffer
	maxSpare   = 256
	maxFree    = 1024
)

// New returns a Coalescer that calls flush for every batch.
func New[K comparable, V any](cfg Config, flush FlushFunc[K, V], opts ...Option[K, V]) (*Coalescer[K, V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if flush == nil {
		return nil, errors.New("coalesce: new: nil flush func")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coalescer[K, V]{
		cfg:    cfg.withDefaults(),
		flush:  flush,
		base:   time.Now(),
		ctx:    ctx,
		cancel: cancel,
		keys:   make(map[K]*entry[K, V]),
		idle:   make(chan struct{}),
		held:   make(map[int]map[*entry[K, V]]struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Add buffers v under key. While MaxBuffered values are held, or MaxKeys
// keys hold values and key is not one of them, Add blocks until a flush
// completes or ctx is done (then it returns ctx's error wrapped). ctx is
// only consulted while blocked. After Close, Add returns ErrClosed.
func (c *Coalescer[K, V]) Add(ctx context.Context, key K, v V) error {
	c.mu.Lock()
	e := c.keys[key]
	if c.closed || c.buffered+c.flyingValues >= c.cfg.MaxBuffered ||
		((e == nil || !e.counted) && c.nkeys >= c.cfg.MaxKeys) {
		var err error
		if e, err = c.waitRoom(ctx, key); err != nil {
			return err
		}
	}
	if e == nil {
		e = c.newEntry(key)
	}
	if !e.counted {
		e.counted = true
		c.nkeys++
	}
	now := c.now()
	if len(e.buf) == 0 {
		e.first = now
		if cap(e.buf) == 0 {
			e.buf = c.spareSlice()
		}
		if cap(e.buf) == 0 {
			e.buf = make([]V, 0, min(c.cfg.MaxSize, initialBuf))
		}
	}
	e.buf = append(e.buf, v)
	e.last = now
	c.buffered++
	if (len(e.buf) == 1 || len(e.buf) == c.cfg.MaxSize) && !e.flying && !e.queued {
		c.schedule(e, now, true)
	}
	c.mu.Unlock()
	return nil
}

// waitRoom blocks (releasing c.mu) until there is room for a value of key.
// It returns with c.mu held and the key's entry (nil if none), or with c.mu
// released and an error.
func (c *Coalescer[K, V]) waitRoom(ctx context.Context, key K) (*entry[K, V], error) {
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		e := c.keys[key]
		if c.buffered+c.flyingValues < c.cfg.MaxBuffered &&
			((e != nil && e.counted) || c.nkeys < c.cfg.MaxKeys) {
			return e, nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
			// Held keys would keep their values: flush them to make room.
			c.releaseAll()
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return nil, fmt.Errorf("coalesce: add: %w", ctx.Err())
		}
		c.mu.Lock()
	}
}

// Defer makes the key's next flush start no earlier than now+d. A flush
// already running is not affected; Close's drain ignores Defer.
func (c *Coalescer[K, V]) Defer(key K, d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := c.now()
	nb := now + d
	e := c.keys[key]
	if e == nil {
		e = c.newEntry(key)
	}
	if nb > e.notBefore {
		e.notBefore = nb
	}
	if !e.flying && !e.queued && len(e.buf) == 0 {
		// Keep the entry until the deferral passes, then drop it. With values
		// buffered a timer is already armed; it re-checks when it fires.
		c.arm(e, nb-now)
	}
}

// Close stops accepting values, flushes everything buffered at once
// (ignoring Grace, MaxDelay and Defer, still one flush per key at a time and
// at most MaxFlushes at once) and waits for every flush to finish. If ctx
// expires first, Close cancels the flushes' context and returns ctx's error
// wrapped; values still buffered are then handed to flush with that
// cancelled context, so every value is still flushed exactly once. Close
// may be called again to wait once more.
func (c *Coalescer[K, V]) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.wake()
		now := c.now()
		for _, e := range c.keys {
			switch {
			case e.flying || e.queued:
			case len(e.buf) > 0:
				c.schedule(e, now, true)
			default:
				c.release(e, now)
			}
		}
		c.checkIdle()
	}
	c.mu.Unlock()
	select {
	case <-c.idle:
		c.cancel()
		return nil
	case <-ctx.Done():
		c.cancel()
		return fmt.Errorf("coalesce: close: %w", ctx.Err())
	}
}

// Top appends to batch the values buffered for key since its running
// flush took batch, up to MaxSize values in all, and returns it. Only the
// flush function running for key may call it, with the batch it was given
// or what an earlier Top returned. A flush that had to wait (for a rate
// limit token, say) uses it to send what arrived meanwhile in the same
// call instead of leaving it for the next batch. The values move from the
// buffer to the running flush: each is still flushed exactly once, in
// arrival order.
func (c *Coalescer[K, V]) Top(key K, batch []V) []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[key]
	if e == nil || !e.flying || len(e.buf) == 0 {
		return batch
	}
	n := min(len(e.buf), c.cfg.MaxSize-len(batch))
	if n <= 0 {
		return batch
	}
	batch = append(batch, e.buf[:n]...)
	rest := copy(e.buf, e.buf[n:])
	clear(e.buf[rest:])
	e.buf = e.buf[:rest]
	// e.first stays: what is left arrived no earlier.
	c.buffered -= n
	c.flyingValues += n
	e.topped += n
	return batch
}

// Release flushes the keys of group that a HoldFunc held, each as it
// would have been flushed without the hold (a key that is still due asks
// the HoldFunc again).
func (c *Coalescer[K, V]) Release(group int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.held[group]
	if len(set) == 0 {
		return
	}
	c.scratch = c.scratch[:0]
	for e := range set {
		c.scratch = append(c.scratch, e)
	}
	c.reschedule(c.scratch)
}

// releaseAll reschedules every held key, without asking the HoldFunc
// while Adds wait for room.
func (c *Coalescer[K, V]) releaseAll() {
	if c.nheld == 0 {
		return
	}
	c.scratch = c.scratch[:0]
	for _, set := range c.held {
		for e := range set {
			c.scratch = append(c.scratch, e)
		}
	}
	c.reschedule(c.scratch)
}

func (c *Coalescer[K, V]) reschedule(es []*entry[K, V]) {
	now := c.now()
	for i, e := range es {
		es[i] = nil
		if e.held && !e.flying && !e.queued && len(e.buf) > 0 {
			c.schedule(e, now, true)
		}
	}
}

func (c *Coalescer[K, V]) holdEntry(e *entry[K, V], group int) {
	set := c.held[group]
	if set == nil {
		set = make(map[*entry[K, V]]struct{})
		c.held[group] = set
	}
	set[e] = struct{}{}
	e.held, e.group = true, group
	c.nheld++
}

func (c *Coalescer[K, V]) unhold(e *entry[K, V]) {
	if !e.held {
		return
	}
	delete(c.held[e.group], e)
	e.held = false
	c.nheld--
}

// Stats returns a snapshot of the Coalescer's load.
func (c *Coalescer[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Keys:     c.nkeys,
		Buffered: c.buffered,
		InFlight: c.inflight,
		Held:     c.buffered + c.flyingValues,
		Holding:  c.nheld,
	}
}

func (c *Coalescer[K, V]) newEntry(key K) *entry[K, V] {
	var e *entry[K, V]
	if n := len(c.free); n > 0 {
		e = c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
	} else {
		e = &entry[K, V]{}
	}
	e.key = key
	e.live = true
	c.keys[key] = e
	return e
}

// now is the time since c.base.
func (c *Coalescer[K, V]) now() time.Duration { return time.Since(c.base) }

// due is when e's buffered values should be flushed (0: now). With ask, a
// key that is due now by Grace or MaxDelay is offered to the HoldFunc,
// unless it reached MaxHold or Adds wait for room; a held key is due at
// MaxHold.
func (c *Coalescer[K, V]) due(e *entry[K, V], now time.Duration, ask bool) time.Duration {
	if c.closed {
		return 0
	}
	var d time.Duration
	if len(e.buf) < c.cfg.MaxSize {
		d = min(e.last+c.cfg.Grace, e.first+c.cfg.MaxDelay)
		if until := e.first + c.cfg.MaxHold; ask && c.hold != nil && c.room == nil &&
			max(d, e.notBefore) <= now && now < until {
			if g, ok := c.hold(e.key, e.buf); ok {
				c.holdEntry(e, g)
				d = until
			}
		}
	}
	return max(d, e.notBefore)
}

// schedule arms e's timer for its due time, or starts its flush if it is
// due. e holds values and neither flies nor waits for a slot. With spawn
// false a due entry is only queued (the caller's goroutine will run it).
func (c *Coalescer[K, V]) schedule(e *entry[K, V], now time.Duration, spawn bool) {
	c.unhold(e)
	if d := c.due(e, now, true); d > now {
		c.arm(e, d-now)
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	if spawn && c.inflight < c.cfg.MaxFlushes {
		batch, whole := c.take(e)
		go c.run(e, batch, whole)
		return
	}
	e.queued = true
	c.ready = append(c.ready, e)
}

func (c *Coalescer[K, V]) arm(e *entry[K, V], d time.Duration) {
	if e.timer == nil {
		e.timer = time.AfterFunc(d, func() { c.fire(e) })
		return
	}
	e.timer.Reset(d)
}

// fire is e's timer. It re-checks everything: a stale or early firing only
// re-arms the timer.
func (c *Coalescer[K, V]) fire(e *entry[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !e.live || e.flying || e.queued {
		return
	}
	now := c.now()
	if len(e.buf) == 0 {
		c.release(e, now)
		return
	}
	c.schedule(e, now, true)
}

// take removes the next batch from e and marks it flying. whole reports
// that the batch owns its backing array (it can be recycled).
func (c *Coalescer[K, V]) take(e *entry[K, V]) (batch []V, whole bool) {
	n := min(len(e.buf), c.cfg.MaxSize)
	if n == len(e.buf) {
		batch, whole = e.buf, true
		e.buf = nil
	} else {
		batch = e.buf[:n:n]
		e.buf = e.buf[n:]
		// e.first stays: the rest arrived no earlier, so MaxDelay still holds.
	}
	c.buffered -= n
	c.flyingValues += n
	c.inflight++
	e.flying = true
	return batch, whole
}

// run flushes batches until no due key is left for this goroutine.
func (c *Coalescer[K, V]) run(e *entry[K, V], batch []V, whole bool) {
	for {
		c.flush(c.ctx, e.key, batch)
		c.mu.Lock()
		n := len(batch) + e.topped
		e.topped = 0
		if whole {
			clear(batch[:cap(batch)]) // Top may have appended in place
			if len(c.spare) < maxSpare {
				c.spare = append(c.spare, batch[:0])
			}
		}
		c.flyingValues -= n
		c.inflight--
		e.flying = false
		c.wake()
		now := c.now()
		if len(e.buf) > 0 {
			c.schedule(e, now, false)
		} else {
			c.release(e, now)
		}
		e = c.popReady(now)
		if e == nil {
			c.checkIdle()
			c.mu.Unlock()
			return
		}
		batch, whole = c.take(e)
		c.mu.Unlock()
	}
}

// popReady returns the next queued entry that is still due, if a flush slot
// is free.
func (c *Coalescer[K, V]) popReady(now time.Duration) *entry[K, V] {
	for c.inflight < c.cfg.MaxFlushes && c.readyHead < len(c.ready) {
		e := c.ready[c.readyHead]
		c.ready[c.readyHead] = nil
		c.readyHead++
		if c.readyHead == len(c.ready) {
			c.ready, c.readyHead = c.ready[:0], 0
		}
		e.queued = false
		if d := c.due(e, now, false); d > now { // deferred while waiting
			c.arm(e, d-now)
			continue
		}
		return e
	}
	return nil
}

// release handles an entry that neither holds nor flies values: it stops
// counting against MaxKeys and is dropped unless a Defer is pending.
func (c *Coalescer[K, V]) release(e *entry[K, V], now time.Duration) {
	c.unhold(e)
	if e.counted {
		e.counted = false
		c.nkeys--
	}
	if !c.closed && e.notBefore > now {
		c.arm(e, e.notBefore-now)
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	delete(c.keys, e.key)
	var zero K
	e.key = zero
	e.live = false
	e.notBefore = 0
	if cap(e.buf) > 0 && len(c.spare) < maxSpare {
		c.spare = append(c.spare, e.buf[:0])
	}
	e.buf = nil
	if len(c.free) < maxFree {
		c.free = append(c.free, e)
	}
}

func (c *Coalescer[K, V]) spareSlice() []V {
	if n := len(c.spare); n > 0 {
		s := c.spare[n-1]
		c.spare[n-1] = nil
		c.spare = c.spare[:n-1]
		return s
	}
	return nil
}

// wake releases Adds blocked for room (they re-check).
func (c *Coalescer[K, V]) wake() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

func (c *Coalescer[K, V]) checkIdle() {
	if c.closed && !c.idleClosed && c.inflight == 0 && c.buffered == 0 {
		c.idleClosed = true
		close(c.idle)
	}
}
