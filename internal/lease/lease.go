package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/internal/jobs"
)

// Key names in the lease bucket.
const (
	partitionPrefix = "p."
	memberPrefix    = "w."
)

// PartitionKey is the lease key of partition p: p.<p>.
func PartitionKey(p int) string { return partitionPrefix + strconv.Itoa(p) }

// MemberKey is the heartbeat key of a worker: w.<id>.
func MemberKey(workerID string) string { return memberPrefix + workerID }

// Callbacks connect a Manager to the work it guards. Both may be nil.
type Callbacks struct {
	// Acquired starts work on p. It must return promptly (start goroutines
	// and return). ctx is cancelled when p is lost, after a graceful
	// release, and never because Run's context ended (shutdown releases
	// gracefully first).
	Acquired func(ctx context.Context, p int)
	// Release hands p back gracefully: stop intake, finish in-flight
	// calls, Nak what is buffered, and return when drained. ctx is bounded
	// by Config.ReleaseTimeout and cancelled if the lease is lost
	// meanwhile. The lease stays valid (and renewed) until Release returns.
	// A nil error means nothing is in flight: the key is deleted at once
	// and another worker may take p. An error leaves the key to expire.
	Release func(ctx context.Context, p int) error
}

// Manager holds this worker's partition leases. See the package comment.
type Manager struct {
	js     jetstream.JetStream
	cfg    Config
	cb     Callbacks
	log    *slog.Logger
	met    *Metrics
	bucket string
	self   []byte // heartbeat value, unique to this Manager

	kv jetstream.KeyValue // set by Run before any goroutine starts

	mu        sync.RWMutex
	leases    map[int]*lease
	members   int
	abandoned map[string]time.Time // tokens whose Create had an unknown outcome
	started   bool

	crashed   chan struct{} // closed by crash (tests): stop without releasing
	crashOnce sync.Once
	wg        sync.WaitGroup // renewers and releases
}

// lease is one held partition.
type lease struct {
	p      int
	key    string
	token  []byte
	ctx    context.Context // given to Acquired; cancelled when lost or released
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewer exits

	// guarded by Manager.mu
	rev       uint64
	deadline  time.Time // fencing deadline on the monotonic clock
	releasing bool
}

// New checks cfg and returns a Manager; it does no I/O. logger nil
// discards logs; m nil creates unregistered metrics.
func New(js jetstream.JetStream, cfg Config, cb Callbacks, logger *slog.Logger, m *Metrics) (*Manager, error) {
	if js == nil {
		return nil, errors.New("lease: new: nil jetstream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	cfg = cfg.withDefaults()
	return &Manager{
		js:        js,
		cfg:       cfg,
		cb:        cb,
		log:       logger.With(slog.String("component", "lease")), // the caller's logger names the worker
		met:       m,
		bucket:    jobs.LeaseBucket(cfg.Layout),
		self:      []byte(cfg.WorkerID + "/" + randomHex()),
		leases:    make(map[int]*lease),
		members:   1,
		abandoned: make(map[string]time.Time),
		crashed:   make(chan struct{}),
	}, nil
}

// Config returns the effective configuration (defaults applied).
func (m *Manager) Config() Config { return m.cfg }

// Valid reports whether a vendor call for p may start now: p is held and
// now < renewSentAt + TTL − (VendorTimeout + Margin) on this process's
// monotonic clock, where renewSentAt is when the last confirmed renew (or
// the Create) was sent. Call it right before every vendor call for p.
func (m *Manager) Valid(p int) bool {
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.leases[p]
	return l != nil && now.Before(l.deadline)
}

// CallDeadline reports, when Valid(p), the instant by which a vendor call
// for p started now must have ended: the fencing deadline plus
// VendorTimeout (renewSentAt + TTL − Margin). Use it as the call's context
// deadline, so that a process paused between Valid and the request (GC,
// SIGSTOP) cannot send it after the lease may have expired.
func (m *Manager) CallDeadline(p int) (time.Time, bool) {
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.leases[p]
	if l == nil || !now.Before(l.deadline) {
		return time.Time{}, false
	}
	return l.deadline.Add(m.cfg.VendorTimeout), true
}

// Owned returns the partitions held now (including those being handed
// back), in increasing order.
func (m *Manager) Owned() []int {
	m.mu.RLock()
	out := make([]int, 0, len(m.leases))
	for p := range m.leases {
		out = append(out, p)
	}
	m.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Members is the number of live workers (w.* heartbeats) at the last poll,
// at least 1.
func (m *Manager) Members() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.members
}

// Run heartbeats, acquires up to the fair share ceil(P / members), renews
// and rebalances until ctx ends; then it releases every partition
// gracefully (Release, then Delete with the revision), deletes its
// heartbeat and returns nil. It returns an error only when the bucket
// cannot be opened. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("lease: run: already started")
	}
	m.started = true
	m.mu.Unlock()

	kv, err := m.openBucketRetrying(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the bucket opened: nothing held
		}
		return err
	}
	m.kv = kv
	m.log.Info("lease manager started", slog.String("bucket", m.bucket),
		slog.Int("partitions", m.cfg.Partitions), slog.Duration("ttl", m.cfg.TTL),
		slog.Duration("fence", m.cfg.fence()))

	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		m.heartbeatLoop(hbCtx)
	}()

	// The first poll waits a little (jittered) so that workers starting
	// together see each other's heartbeats before they acquire.
	poll := time.NewTimer(m.cfg.PollEvery/4 + mrand.N(m.cfg.PollEvery/4+1))
	defer poll.Stop()
	for {
		select {
		case <-m.crashed:
			stopHB()
			<-hbDone
			return nil
		case <-ctx.Done():
			m.shutdown()
			stopHB()
			<-hbDone
			m.deleteHeartbeat()
			return nil
		case <-poll.C:
			m.poll(ctx)
			poll.Reset(m.cfg.PollEvery)
		}
	}
}

// ttlConflict is a bucket whose TTL differs from the configured one: a
// configuration conflict, not retried.
type ttlConflict struct{ have, want time.Duration }

func (e *ttlConflict) Error() string {
	return fmt.Sprintf("bucket ttl %s differs from configured ttl %s", e.have, e.want)
}

// openBucketRetrying opens the bucket, retrying other failures (JetStream
// still electing a leader on a fresh cluster, a slow server) with backoff
// until ctx ends: a worker that starts with its cluster waits for it.
func (m *Manager) openBucketRetrying(ctx context.Context) (jetstream.KeyValue, error) {
	var lastErr error
	attempt := 0
	kv, err := backoff.RetryNotifyWithData(func() (jetstream.KeyValue, error) {
		attempt++
		kv, err := m.openBucket(ctx)
		var conflict *ttlConflict
		if errors.As(err, &conflict) {
			return nil, backoff.Permanent(err)
		}
		lastErr = err
		return kv, err
	}, backoff.WithContext(startupBackOff(), ctx), func(err error, wait time.Duration) {
		m.log.Warn("lease bucket not ready; retrying", slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("err", err))
	})
	if err != nil && ctx.Err() != nil && lastErr != nil {
		err = lastErr // say what failed, not only that the wait was cut short
	}
	return kv, err
}

// startupBackOff paces start-up retries: 250 ms doubling to 5 s, jittered
// ±50 % so that workers restarted together do not retry in step, until
// the context ends.
func startupBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 250*time.Millisecond, 5*time.Second, 0
	return b
}

// openBucket creates the lease bucket or opens it and checks its TTL.
func (m *Manager) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := m.js.CreateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket:      m.bucket,
		Description: "friendsync partition leases",
		TTL:         m.cfg.TTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    m.cfg.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = m.js.KeyValue(cctx, m.bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("lease: open bucket %s: %w", m.bucket, err)
	}
	st, err := kv.Status(cctx)
	if err != nil {
		return nil, fmt.Errorf("lease: open bucket %s: status: %w", m.bucket, err)
	}
	if st.TTL() != m.cfg.TTL {
		return nil, fmt.Errorf("lease: open bucket %s: %w", m.bucket, &ttlConflict{have: st.TTL(), want: m.cfg.TTL})
	}
	return kv, nil
}

// opCtx is a context for one KV request, bounded by the op timeout and d
// (if d > 0), independent of Run's context.
func (m *Manager) opCtx(d time.Duration) (context.Context, context.CancelFunc) {
	t := m.cfg.opTimeout()
	if d > 0 && d < t {
		t = d
	}
	return context.WithTimeout(context.Background(), t)
}

// heartbeatLoop puts w.<id> every RenewEvery until ctx ends or a crash.
func (m *Manager) heartbeatLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.crashed:
			return
		case <-t.C:
		}
		cctx, cancel := m.opCtx(0)
		_, err := m.kv.Put(cctx, MemberKey(m.cfg.WorkerID), m.self)
		cancel()
		if err != nil {
			m.log.Warn("lease heartbeat failed", slog.Any("err", err))
		}
		t.Reset(m.cfg.RenewEvery)
	}
}

func (m *Manager) deleteHeartbeat() {
	cctx, cancel := m.opCtx(0)
	defer cancel()
	if err := m.kv.Delete(cctx, MemberKey(m.cfg.WorkerID)); err != nil {
		m.log.Warn("lease heartbeat delete failed", slog.Any("err", err))
	}
}

// snapshot reads every live key of the bucket (the latest value per key,
// deleted keys left out).
func (m *Manager) snapshot() (map[string]jetstream.KeyValueEntry, error) {
	cctx, cancel := context.WithTimeout(context.Background(), max(m.cfg.opTimeout(), time.Second))
	defer cancel()
	w, err := m.kv.WatchAll(cctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = w.Stop()
		go drain(w.Updates())
	}()
	out := make(map[string]jetstream.KeyValueEntry)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher closed")
			}
			if e == nil {
				return out, nil
			}
			out[e.Key()] = e
		case <-cctx.Done():
			return nil, cctx.Err()
		}
	}
}

// drain empties a stopped watcher's channel so its callback cannot block.
func drain(ch <-chan jetstream.KeyValueEntry) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// poll counts members and free partitions, then acquires up to the fair
// share or hands partitions back above it.
func (m *Manager) poll(ctx context.Context) {
	snap, err := m.snapshot()
	if err != nil {
		m.log.Warn("lease poll failed", slog.Any("err", err))
		return
	}
	members, present := 0, make(map[int]jetstream.KeyValueEntry)
	selfSeen := false
	for k, e := range snap {
		switch {
		case strings.HasPrefix(k, memberPrefix):
			members++
			if k == MemberKey(m.cfg.WorkerID) {
				selfSeen = true
				if !bytes.Equal(e.Value(), m.self) {
					m.log.Warn("another worker heartbeats with this worker id")
				}
			}
		case strings.HasPrefix(k, partitionPrefix):
			p, err := strconv.Atoi(k[len(partitionPrefix):])
			if err == nil && p >= 0 && p < m.cfg.Partitions {
				present[p] = e
			}
		}
	}
	if !selfSeen {
		members++
	}
	share := (m.cfg.Partitions + members - 1) / members

	m.mu.Lock()
	m.members = members
	m.met.members.Set(float64(members))
	m.met.unowned.Set(float64(m.cfg.Partitions - len(present)))
	held := 0
	var candidates []*lease
	for _, l := range m.leases {
		if !l.releasing {
			held++
			candidates = append(candidates, l)
		}
	}
	m.mu.Unlock()

	m.cleanAbandoned(present)

	switch {
	case held < share:
		var free []int
		for p := 0; p < m.cfg.Partitions; p++ {
			if _, taken := present[p]; !taken && !m.holds(p) {
				free = append(free, p)
			}
		}
		mrand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
		for _, p := range free {
			if held >= share || ctx.Err() != nil {
				break
			}
			ok, err := m.acquire(ctx, p)
			if err != nil {
				m.log.Warn("lease acquire failed", slog.Int("partition", p), slog.Any("err", err))
				break // the server is slow or away: try again at the next poll
			}
			if ok {
				held++
			}
		}
	case held > share:
		// Hand back the highest-numbered partitions above the share.
		slices.SortFunc(candidates, func(a, b *lease) int { return b.p - a.p })
		for _, l := range candidates[:held-share] {
			m.startRelease(l, "rebalance")
		}
	}
}

func (m *Manager) holds(p int) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.leases[p]
	return ok
}

// cleanAbandoned deletes keys created by a Create whose reply was lost
// (this Manager never worked them) and forgets old abandoned tokens.
func (m *Manager) cleanAbandoned(present map[int]jetstream.KeyValueEntry) {
	m.mu.Lock()
	if len(m.abandoned) == 0 {
		m.mu.Unlock()
		return
	}
	var del []jetstream.KeyValueEntry
	for _, e := range present {
		if _, ok := m.abandoned[string(e.Value())]; ok {
			del = append(del, e)
			delete(m.abandoned, string(e.Value()))
		}
	}
	for tok, at := range m.abandoned {
		if time.Since(at) > 2*m.cfg.TTL {
			delete(m.abandoned, tok)
		}
	}
	m.mu.Unlock()
	for _, e := range del {
		cctx, cancel := m.opCtx(0)
		err := m.kv.Delete(cctx, e.Key(), jetstream.LastRevision(e.Revision()))
		cancel()
		m.log.Info("lease abandoned key deleted", slog.String("key", e.Key()), slog.Any("err", err))
	}
}

// acquire tries to Create p's key. ok reports whether p is now held; err
// is a request failure whose outcome stayed unknown.
func (m *Manager) acquire(ctx context.Context, p int) (ok bool, err error) {
	key := PartitionKey(p)
	token := []byte(m.cfg.WorkerID + "/" + randomHex())
	sentAt := time.Now()
	cctx, cancel := m.opCtx(0)
	rev, err := m.kv.Create(cctx, key, token)
	cancel()
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		// The Create may have been applied: only a Get can tell.
		cctx, cancel := m.opCtx(0)
		e, gerr := m.kv.Get(cctx, key)
		cancel()
		if gerr != nil || !bytes.Equal(e.Value(), token) {
			// Not ours (yet): should a late Create still land, the next
			// polls delete the key this Manager never worked.
			m.mu.Lock()
			m.abandoned[string(token)] = time.Now()
			m.mu.Unlock()
			return false, fmt.Errorf("lease: acquire %s: %w", key, err)
		}
		rev = e.Revision()
	}
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &lease{
		p: p, key: key, token: token, ctx: lctx, cancel: lcancel, done: make(chan struct{}),
		rev: rev, deadline: sentAt.Add(m.cfg.fence()),
	}
	m.mu.Lock()
	m.leases[p] = l
	m.met.owned.Set(float64(len(m.leases)))
	m.mu.Unlock()
	m.met.events.WithLabelValues(EventAcquired).Inc()
	m.log.Info("lease acquired", slog.Int("partition", p), slog.Uint64("revision", rev))

	m.wg.Add(1)
	go m.renewLoop(l, sentAt)
	if m.cb.Acquired != nil {
		m.cb.Acquired(lctx, p)
	}
	return true, nil
}

// renewLoop renews l every RenewEvery until it is lost, released or the
// Manager crashes.
func (m *Manager) renewLoop(l *lease, lastSent time.Time) {
	defer m.wg.Done()
	defer close(l.done)
	t := time.NewTimer(time.Until(lastSent.Add(m.cfg.RenewEvery)))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-m.crashed:
			return
		case <-t.C:
		}
		sent := time.Now()
		if !m.renew(l, sent) {
			return
		}
		t.Reset(time.Until(sent.Add(m.cfg.RenewEvery)))
	}
}

// renew runs one renew round that started at roundStart: Update with the
// last revision, retried on timeouts until the fencing deadline. It
// returns false when the lease is gone (lost, released or crashed).
func (m *Manager) renew(l *lease, roundStart time.Time) bool {
	wait := 25 * time.Millisecond
	attempt := 0
	for {
		if l.ctx.Err() != nil || m.isCrashed() {
			return false
		}
		m.mu.RLock()
		rev, deadline := l.rev, l.deadline
		m.mu.RUnlock()
		left := time.Until(deadline)
		if left <= 0 {
			m.lose(l, "fencing deadline passed before a renew was confirmed")
			return false
		}
		cctx, cancel := m.opCtx(left)
		newRev, err := m.kv.Update(cctx, l.key, l.token, rev)
		cancel()
		if err == nil {
			m.confirm(l, newRev, roundStart)
			return true
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
			// A renew that timed out may have been applied: look before
			// declaring the lease lost.
			cctx, cancel := m.opCtx(time.Until(deadline))
			e, gerr := m.kv.Get(cctx, l.key)
			cancel()
			switch {
			case gerr == nil && bytes.Equal(e.Value(), l.token) && e.Revision() != rev:
				m.confirm(l, e.Revision(), roundStart)
				return true
			case errors.Is(gerr, jetstream.ErrKeyNotFound):
				m.lose(l, "lease key is gone")
				return false
			case gerr == nil && !bytes.Equal(e.Value(), l.token):
				m.lose(l, "lease key holds another token")
				return false
			}
			if gerr != nil {
				err = gerr
			}
		}
		m.met.events.WithLabelValues(EventRenewError).Inc()
		level := slog.LevelDebug
		if attempt == 0 {
			level = slog.LevelWarn // once per round; retries are counted
		}
		attempt++
		m.log.Log(context.Background(), level, "lease renew failed, retrying", slog.Int("partition", l.p),
			slog.Duration("fence_left", time.Until(deadline)), slog.Any("err", err))
		if !m.sleep(l, min(wait, time.Until(deadline))) {
			return false
		}
		wait = min(2*wait, max(m.cfg.RenewEvery/2, 25*time.Millisecond))
	}
}

// sleep waits d unless l ends or the Manager crashes first.
func (m *Manager) sleep(l *lease, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	case <-m.crashed:
		return false
	}
}

// confirm records a renew sent at sentAt that the server applied with
// revision rev.
func (m *Manager) confirm(l *lease, rev uint64, sentAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l.rev = rev
	if d := sentAt.Add(m.cfg.fence()); d.After(l.deadline) {
		l.deadline = d
	}
}

// lose drops l at once: Valid(p) turns false and its context is cancelled.
// The key is not deleted: a call started before the deadline may still be
// running, and the key expires no earlier than that call ends.
func (m *Manager) lose(l *lease, reason string) {
	m.mu.Lock()
	if m.leases[l.p] != l {
		m.mu.Unlock()
		return
	}
	delete(m.leases, l.p)
	m.met.owned.Set(float64(len(m.leases)))
	m.mu.Unlock()
	l.cancel()
	m.met.events.WithLabelValues(EventLost).Inc()
	m.log.Warn("lease lost", slog.Int("partition", l.p), slog.String("reason", reason))
}

// startRelease hands l back in the background.
func (m *Manager) startRelease(l *lease, why string) {
	m.mu.Lock()
	if l.releasing || m.leases[l.p] != l {
		m.mu.Unlock()
		return
	}
	l.releasing = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.release(l, why)
	}()
}

// release runs the Release callback while the lease is still renewed,
// then invalidates the lease and deletes its key with the last revision.
func (m *Manager) release(l *lease, why string) {
	var err error
	if m.cb.Release != nil {
		rctx, cancel := context.WithTimeout(l.ctx, m.cfg.ReleaseTimeout)
		err = m.cb.Release(rctx, l.p)
		cancel()
	}
	m.mu.Lock()
	mine := m.leases[l.p] == l
	if mine {
		delete(m.leases, l.p)
		m.met.owned.Set(float64(len(m.leases)))
	}
	m.mu.Unlock()
	l.cancel()
	<-l.done // no renew in flight from here on
	if !mine {
		return // lost meanwhile; already counted
	}
	if err != nil {
		m.log.Warn("lease release not drained, key left to expire", slog.Int("partition", l.p), slog.Any("err", err))
		return
	}
	m.mu.RLock()
	rev := l.rev
	m.mu.RUnlock()
	if err := m.deleteKey(l, rev); err != nil {
		m.log.Warn("lease delete failed, key left to expire", slog.Int("partition", l.p), slog.Any("err", err))
		return
	}
	m.met.events.WithLabelValues(EventReleased).Inc()
	m.log.Info("lease released", slog.Int("partition", l.p), slog.String("why", why))
}

// deleteKey deletes l's key if it still holds l's token.
func (m *Manager) deleteKey(l *lease, rev uint64) error {
	cctx, cancel := m.opCtx(0)
	err := m.kv.Delete(cctx, l.key, jetstream.LastRevision(rev))
	cancel()
	if err == nil || !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return err
	}
	// The last renew may have been applied without a reply.
	cctx, cancel = m.opCtx(0)
	defer cancel()
	e, gerr := m.kv.Get(cctx, l.key)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if !bytes.Equal(e.Value(), l.token) {
		return err
	}
	return m.kv.Delete(cctx, l.key, jetstream.LastRevision(e.Revision()))
}

// shutdown releases every partition gracefully and waits for renewers and
// releases to end.
func (m *Manager) shutdown() {
	m.mu.RLock()
	ls := make([]*lease, 0, len(m.leases))
	for _, l := range m.leases {
		ls = append(ls, l)
	}
	m.mu.RUnlock()
	for _, l := range ls {
		m.startRelease(l, "shutdown")
	}
	m.wg.Wait()
	m.met.owned.Set(0)
	m.log.Info("lease manager stopped")
}

// crash stops every loop without releasing or deleting anything, as if
// the process were killed or cut off from NATS (tests only). Leases stay
// in memory, so Valid stays true until each fencing deadline.
func (m *Manager) crash() {
	m.crashOnce.Do(func() { close(m.crashed) })
}

func (m *Manager) isCrashed() bool {
	select {
	case <-m.crashed:
		return true
	default:
		return false
	}
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
