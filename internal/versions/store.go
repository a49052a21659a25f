package versions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/internal/jobs"
)

// Field names one versioned value of an account: "<to>/<field>", field as
// in event.(*Event).Fields.
func Field(to, field string) string { return to + "/" + field }

// Store keeps last-applied versions in Redis, one hash per account, with a
// write-through cache that answers during an outage. It is safe for
// concurrent use.
type Store struct {
	cfg Config
	rdb redis.UniversalClient
	log *slog.Logger
	m   *Metrics

	mu           sync.Mutex // guards cache, pending, pendingCount, lastProbe
	cache        *cache
	pending      map[jobs.Key]map[string]jobs.Version
	pendingCount int
	lastProbe    time.Time

	down    atomic.Bool // Redis unreachable: answer from the cache, queue raises
	flushMu sync.Mutex  // one flush at a time
}

// NewRedis returns a Store on rdb.
func NewRedis(rdb redis.UniversalClient, cfg Config, logger *slog.Logger, m *Metrics) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("versions: new: a redis client is required (NewMemory runs in process)")
	}
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
	return &Store{
		cfg:     cfg,
		rdb:     rdb,
		log:     logger,
		m:       m,
		cache:   newCache(cfg.CacheSize),
		pending: make(map[jobs.Key]map[string]jobs.Version),
	}, nil
}

func (s *Store) key(k jobs.Key) string { return s.cfg.Prefix + k.App + ":" + k.From }

// Load returns the last-applied version of each field of key, in order;
// the zero Version means never applied. While Redis is unreachable it
// answers from the cache when every field is cached and none has a raise
// pending (a pending version is not durable: deciding "superseded" on it
// could settle the very event whose raise a kill would lose), else it
// returns an error matching ErrUnavailable.
func (s *Store) Load(ctx context.Context, key jobs.Key, fields []string) ([]jobs.Version, error) {
	if len(fields) == 0 {
		return []jobs.Version{}, nil
	}
	s.probe(ctx)
	if !s.down.Load() {
		vs, err := s.loadRedis(ctx, key, fields)
		if err == nil {
			s.m.ops.WithLabelValues(opLoad, resultOK).Inc()
			return vs, nil
		}
		if ctx.Err() != nil || !isOutage(err) {
			s.m.ops.WithLabelValues(opLoad, resultError).Inc()
			return nil, fmt.Errorf("versions: load (app %s): %w", key.App, err)
		}
		s.markDown(err)
	}
	s.mu.Lock()
	vs, ok := s.cache.lookup(key, fields)
	pending := ok && s.anyPending(key, fields)
	s.mu.Unlock()
	if !ok || pending {
		s.m.ops.WithLabelValues(opLoad, resultUnavailable).Inc()
		why := "the account's versions are not cached"
		if pending {
			why = "a field has a raise pending"
		}
		return nil, fmt.Errorf("versions: load (app %s): %w; %s", key.App, ErrUnavailable, why)
	}
	s.m.ops.WithLabelValues(opLoad, resultCache).Inc()
	return vs, nil
}

func (s *Store) loadRedis(ctx context.Context, key jobs.Key, fields []string) ([]jobs.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	raw, err := s.rdb.HMGet(ctx, s.key(key), fields...).Result()
	if err != nil {
		return nil, err
	}
	if len(raw) != len(fields) {
		return nil, fmt.Errorf("hmget returned %d values for %d fields", len(raw), len(fields))
	}
	vs := make([]jobs.Version, len(fields))
	for i, r := range raw {
		str, ok := r.(string)
		if !ok { // nil: never applied
			continue
		}
		v, err := jobs.ParseVersion(str)
		if err != nil {
			// A corrupt value reads as never applied; the next raise
			// overwrites it. Failing would stall the account for good.
			s.log.Warn("versions: corrupt stored version ignored", slog.String("app", key.App), slog.Any("error", err))
			continue
		}
		vs[i] = v
	}
	s.mu.Lock()
	// The cache may hold newer values (our own raises, or a Redis that lost
	// data): versions only rise, so the max is always right.
	for i, f := range fields {
		if c, ok := s.cache.get(key, f); ok && vs[i].Less(c) {
			vs[i] = c
		}
	}
	s.withPending(key, fields, vs)
	s.cache.merge(key, fields, vs)
	s.mu.Unlock()
	return vs, nil
}

// anyPending reports whether a raise of one of fields is pending; s.mu
// must be held.
func (s *Store) anyPending(key jobs.Key, fields []string) bool {
	p := s.pending[key]
	for _, f := range fields {
		if _, ok := p[f]; ok {
			return true
		}
	}
	return false
}

// withPending raises vs to any pending raise; s.mu must be held.
func (s *Store) withPending(key jobs.Key, fields []string, vs []jobs.Version) {
	p := s.pending[key]
	if p == nil {
		return
	}
	for i, f := range fields {
		if v, ok := p[f]; ok && vs[i].Less(v) {
			vs[i] = v
		}
	}
}

// Raise sets each field's stored version to max(stored, vs[i]) in one Lua
// script and refreshes the hash's TTL; it never lowers a version. Zero
// versions are skipped. While Redis is unreachable the raises are kept in
// memory and applied with the same max-CAS when Redis answers again; Raise
// then returns an error matching ErrPending (not durable yet), or
// ErrUnavailable when that buffer is full.
func (s *Store) Raise(ctx context.Context, key jobs.Key, fields []string, vs []jobs.Version) error {
	fs, nvs, args, err := raiseArgs(fields, vs)
	if err != nil {
		s.m.ops.WithLabelValues(opRaise, resultError).Inc()
		return fmt.Errorf("versions: raise (app %s): %w", key.App, err)
	}
	if len(fs) == 0 {
		return nil
	}
	s.probe(ctx)
	if !s.down.Load() {
		err := s.raiseRedis(ctx, key, fs, args)
		if err == nil {
			s.m.ops.WithLabelValues(opRaise, resultOK).Inc()
			return nil
		}
		if !isOutage(err) {
			s.m.ops.WithLabelValues(opRaise, resultError).Inc()
			return fmt.Errorf("versions: raise (app %s): %w", key.App, err)
		}
		if ctx.Err() == nil {
			s.markDown(err)
		}
		// Cancelled or failed: the raise may or may not have landed.
		// Keeping it pending is safe either way (max-CAS is idempotent).
	}
	if err := s.addPending(key, fs, nvs); err != nil {
		s.m.ops.WithLabelValues(opRaise, resultUnavailable).Inc()
		return fmt.Errorf("versions: raise (app %s): %w", key.App, err)
	}
	s.m.ops.WithLabelValues(opRaise, resultPending).Inc()
	return fmt.Errorf("versions: raise (app %s): %w", key.App, ErrPending)
}

// raiseArgs validates the raise and returns the fields with a non-zero
// version, those versions, and the script arguments (field, version pairs).
func raiseArgs(fields []string, vs []jobs.Version) ([]string, []jobs.Version, []any, error) {
	if len(fields) != len(vs) {
		return nil, nil, nil, fmt.Errorf("%d fields but %d versions", len(fields), len(vs))
	}
	var fs []string
	var nvs []jobs.Version
	var args []any
	for i, v := range vs {
		if v.IsZero() {
			continue
		}
		if v.TS < 0 {
			return nil, nil, nil, fmt.Errorf("field %d: negative version ts %d", i, v.TS)
		}
		fs = append(fs, fields[i])
		nvs = append(nvs, v)
		args = append(args, fields[i], v.String())
	}
	return fs, nvs, args, nil
}

// raiseRedis runs the max-CAS script and caches what Redis now holds.
func (s *Store) raiseRedis(ctx context.Context, key jobs.Key, fs []string, pairs []any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	args := append([]any{strconv.FormatInt(s.cfg.TTL.Milliseconds(), 10)}, pairs...)
	stored, err := raiseScript.Run(ctx, s.rdb, []string{s.key(key)}, args...).StringSlice()
	if err != nil {
		return err
	}
	if len(stored) != len(fs) {
		return fmt.Errorf("raise script returned %d values for %d fields", len(stored), len(fs))
	}
	vs := make([]jobs.Version, len(fs))
	for i, str := range stored {
		v, err := jobs.ParseVersion(str)
		if err != nil {
			return fmt.Errorf("raise script returned %q: %w", str, err)
		}
		vs[i] = v
	}
	s.mu.Lock()
	s.cache.merge(key, fs, vs)
	s.mu.Unlock()
	return nil
}

// addPending keeps raises for the next flush and raises the cached fields
// with them, so Loads during the outage see them. Fields not cached stay
// uncached: the cache only answers for what it learned from Redis.
func (s *Store) addPending(key jobs.Key, fs []string, vs []jobs.Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[key]
	added := 0
	for _, f := range fs {
		if _, ok := p[f]; !ok {
			added++
		}
	}
	if s.pendingCount+added > s.cfg.MaxPending {
		return fmt.Errorf("%w: %d raises already pending", ErrUnavailable, s.pendingCount)
	}
	if p == nil {
		p = make(map[string]jobs.Version, len(fs))
		s.pending[key] = p
	}
	for i, f := range fs {
		if cur, ok := p[f]; !ok || cur.Less(vs[i]) {
			p[f] = vs[i]
		}
	}
	s.pendingCount += added
	s.m.pending.Set(float64(s.pendingCount))
	s.cache.raise(key, fs, vs)
	return nil
}

// Forget drops cached accounts whose key keep rejects, so that an outage
// never answers from versions of a partition this worker did not own the
// whole time (another owner may have raised them since). Pending raises
// are kept: they are facts and will be flushed.
func (s *Store) Forget(keep func(jobs.Key) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.forget(keep)
}

// Pending returns the number of raised fields waiting for Redis.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingCount
}

// Available reports whether Redis answered the last call.
func (s *Store) Available() bool { return !s.down.Load() }

// Run probes Redis every ProbeInterval while it is unreachable or raises
// are pending, and flushes them when it answers. It returns nil when ctx
// ends. Load and Raise probe too (at most once per ProbeInterval), so Run
// only makes recovery independent of traffic.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.probe(ctx)
		}
	}
}

// markDown switches to the cache (once per outage).
func (s *Store) markDown(err error) {
	s.mu.Lock()
	s.lastProbe = time.Now()
	s.mu.Unlock()
	if s.down.CompareAndSwap(false, true) {
		s.log.Warn("versions: redis unavailable; answering from the cache, raises kept in memory", slog.Any("error", err))
	}
}

// probe, at most once per ProbeInterval while Redis is down or raises are
// pending, pings Redis and flushes the pending raises; the store returns to
// Redis only once they are all applied.
func (s *Store) probe(ctx context.Context) {
	down := s.down.Load()
	s.mu.Lock()
	due := (down || s.pendingCount > 0) && time.Since(s.lastProbe) >= s.cfg.ProbeInterval
	if due {
		s.lastProbe = time.Now()
	}
	s.mu.Unlock()
	if !due || !s.flushMu.TryLock() {
		return
	}
	defer s.flushMu.Unlock()
	if down {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := s.rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return
		}
	}
	if err := s.flush(ctx); err != nil {
		if isOutage(err) && ctx.Err() == nil {
			s.markDown(err)
		}
		return
	}
	if s.down.CompareAndSwap(true, false) {
		s.log.Info("versions: redis is back; pending raises applied")
	}
}

// flush applies every pending raise with the max-CAS script. A raise
// Redis rejects for good (say, a key of the wrong type) is dropped and
// logged; on an outage error flush stops and keeps the rest.
func (s *Store) flush(ctx context.Context) error {
	s.mu.Lock()
	batch := make(map[jobs.Key]map[string]jobs.Version, len(s.pending))
	for k, p := range s.pending {
		cp := make(map[string]jobs.Version, len(p))
		for f, v := range p {
			cp[f] = v
		}
		batch[k] = cp
	}
	s.mu.Unlock()
	for key, p := range batch {
		fs := make([]string, 0, len(p))
		vs := make([]jobs.Version, 0, len(p))
		for f, v := range p {
			fs = append(fs, f)
			vs = append(vs, v)
		}
		_, _, args, _ := raiseArgs(fs, vs)
		err := s.raiseRedis(ctx, key, fs, args)
		if err != nil && isOutage(err) {
			s.m.ops.WithLabelValues(opFlush, resultUnavailable).Inc()
			return err
		}
		if err != nil {
			s.m.ops.WithLabelValues(opFlush, resultError).Inc()
			s.log.Error("versions: pending raise rejected by redis; dropped", slog.String("app", key.App), slog.Any("error", err))
		} else {
			s.m.ops.WithLabelValues(opFlush, resultOK).Inc()
		}
		s.mu.Lock()
		cur := s.pending[key]
		for i, f := range fs {
			// A newer raise may have arrived meanwhile: keep it.
			if v, ok := cur[f]; ok && !vs[i].Less(v) {
				delete(cur, f)
				s.pendingCount--
			}
		}
		if len(cur) == 0 {
			delete(s.pending, key)
		}
		s.m.pending.Set(float64(s.pendingCount))
		s.mu.Unlock()
	}
	return nil
}

// isOutage tells Redis being unreachable or failing over (keep pending,
// answer from the cache) from a reply that will not change on retry.
func isOutage(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// raiseScript sets each field to the greater of its stored and given
// version. Versions are fixed-width decimal strings whose byte order is
// their order (Lua numbers are doubles and cannot hold nanosecond
// timestamps), so they are compared as strings. A stored value that is not
// a version is overwritten. KEYS[1] the account's hash; ARGV[1] TTL in ms;
// then field, version pairs. Returns the stored version of each field.
var raiseScript = redis.NewScript(`
local out = {}
for i = 2, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  local cur = redis.call("HGET", KEYS[1], f)
  if (not cur) or #cur ~= #v or not string.find(cur, "^%d+%.%d+$") or cur < v then
    redis.call("HSET", KEYS[1], f, v)
    cur = v
  end
  out[#out + 1] = cur
end
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return out
`)
