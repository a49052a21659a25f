package versions

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
)

func v(ts int64, seq uint64) jobs.Version { return jobs.Version{TS: ts, Seq: seq} }

// store is what the tests exercise on both implementations.
type store interface {
	Load(ctx context.Context, key jobs.Key, fields []string) ([]jobs.Version, error)
	Raise(ctx context.Context, key jobs.Key, fields []string, vs []jobs.Version) error
}

// newRedisStore returns a Store on the machine's Redis under a unique
// prefix (deleted at cleanup), and the raw client.
func newRedisStore(t *testing.T, mod func(*Config)) (*Store, *redis.Client, string) {
	t.Helper()
	prefix := testenv.Unique("fs_v_test") + ":"
	rdb := testenv.Redis(t, prefix)
	cfg := Config{Prefix: prefix}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewRedis(rdb, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb, prefix
}

func mustLoad(t *testing.T, s store, key jobs.Key, fields ...string) []jobs.Version {
	t.Helper()
	vs, err := s.Load(context.Background(), key, fields)
	if err != nil {
		t.Fatalf("Load %v: %v", fields, err)
	}
	if len(vs) != len(fields) {
		t.Fatalf("Load returned %d versions for %d fields", len(vs), len(fields))
	}
	return vs
}

func mustRaise(t *testing.T, s store, key jobs.Key, fields []string, vs ...jobs.Version) {
	t.Helper()
	if err := s.Raise(context.Background(), key, fields, vs); err != nil {
		t.Fatalf("Raise %v: %v", fields, err)
	}
}

// raisePending raises during an outage: the raise is kept in memory and
// reported as not durable (ErrPending).
func raisePending(t *testing.T, s store, key jobs.Key, fields []string, vs ...jobs.Version) {
	t.Helper()
	if err := s.Raise(context.Background(), key, fields, vs); !errors.Is(err, ErrPending) {
		t.Fatalf("Raise %v during the outage = %v, want ErrPending", fields, err)
	}
}

var alice = jobs.Key{App: "demo", From: "alice"}

// implementations runs f on the Redis Store and on Memory.
func implementations(t *testing.T, f func(t *testing.T, s store)) {
	t.Run("redis", func(t *testing.T) {
		s, _, _ := newRedisStore(t, nil)
		f(t, s)
	})
	t.Run("memory", func(t *testing.T) { f(t, NewMemory()) })
}

func TestLoadRaise(t *testing.T) {
	remark, groups := Field("bob", "remark"), Field("bob", "groups")
	implementations(t, func(t *testing.T, s store) {
		if got := mustLoad(t, s, alice, remark, groups); !slices.Equal(got, []jobs.Version{{}, {}}) {
			t.Fatalf("never applied: %v", got)
		}
		mustRaise(t, s, alice, []string{remark, groups}, v(100, 1), v(100, 2))
		if got := mustLoad(t, s, alice, groups, remark, groups); !slices.Equal(got, []jobs.Version{v(100, 2), v(100, 1), v(100, 2)}) {
			t.Fatalf("after raise: %v", got)
		}
		// Older and equal raises never lower; the zero version is skipped.
		mustRaise(t, s, alice, []string{remark, groups}, v(99, 9), jobs.Version{})
		mustRaise(t, s, alice, []string{remark}, v(100, 1))
		if got := mustLoad(t, s, alice, remark, groups); !slices.Equal(got, []jobs.Version{v(100, 1), v(100, 2)}) {
			t.Fatalf("older raise lowered: %v", got)
		}
		// Ties on ts go to the higher sequence.
		mustRaise(t, s, alice, []string{remark}, v(100, 3))
		if got := mustLoad(t, s, alice, remark); got[0] != v(100, 3) {
			t.Fatalf("higher seq not raised: %v", got)
		}
		// Another account is independent.
		if got := mustLoad(t, s, jobs.Key{App: "demo", From: "carol"}, remark); got[0] != (jobs.Version{}) {
			t.Fatalf("other account: %v", got)
		}
		if got, err := s.Load(context.Background(), alice, nil); err != nil || len(got) != 0 {
			t.Fatalf("no fields: %v %v", got, err)
		}
		for _, bad := range []struct {
			name   string
			fields []string
			vs     []jobs.Version
		}{
			{"length mismatch", []string{remark}, nil},
			{"negative ts", []string{remark}, []jobs.Version{v(-1, 5)}},
		} {
			if err := s.Raise(context.Background(), alice, bad.fields, bad.vs); err == nil {
				t.Errorf("%s: Raise accepted it", bad.name)
			}
		}
	})
}

// TestFixedWidthOrdering: versions across digit-length boundaries compare
// correctly as strings inside the script.
func TestFixedWidthOrdering(t *testing.T) {
	pairs := []struct{ lo, hi jobs.Version }{
		{v(9, 0), v(10, 0)},
		{v(99, 5), v(100, 1)},
		{v(999_999_999, 0), v(1_000_000_000, 0)},
		{v(1_699_999_999_999_999_999, 0), v(1_700_000_000_000_000_000, 0)},
		{v(999_999_999_999_999_999, 1), v(1_000_000_000_000_000_000, 0)},
		{v(5, 9), v(5, 10)},
		{v(5, 99_999), v(5, 100_000)},
		{v(5, math.MaxUint64), v(6, 0)},
		{v(math.MaxInt64, 0), v(math.MaxInt64, 1)},
		{v(0, 1), v(1, 0)},
	}
	s, rdb, prefix := newRedisStore(t, nil)
	for i, p := range pairs {
		for _, order := range []string{"low first", "high first"} {
			t.Run(fmt.Sprintf("%d %s", i, order), func(t *testing.T) {
				f := fmt.Sprintf("to%d/%s", i, strings.ReplaceAll(order, " ", "_"))
				first, second := p.lo, p.hi
				if order == "high first" {
					first, second = p.hi, p.lo
				}
				mustRaise(t, s, alice, []string{f}, first)
				mustRaise(t, s, alice, []string{f}, second)
				raw, err := rdb.HGet(context.Background(), prefix+"demo:alice", f).Result()
				if err != nil || raw != p.hi.String() {
					t.Fatalf("stored %q (%v), want %q", raw, err, p.hi.String())
				}
				if got := mustLoad(t, s, alice, f); got[0] != p.hi {
					t.Fatalf("loaded %v, want %v", got[0], p.hi)
				}
			})
		}
	}
}

// TestConcurrentRaisesKeepMax: several workers (Stores) raise the same
// fields concurrently; each field ends at the maximum raised.
func TestConcurrentRaisesKeepMax(t *testing.T) {
	s1, rdb, prefix := newRedisStore(t, nil)
	s2, err := NewRedis(rdb, Config{Prefix: prefix}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fields := []string{Field("bob", "remark"), Field("bob", "attr:k"), Field("carol", "groups")}
	var mu sync.Mutex
	want := make([]jobs.Version, len(fields))
	var wg sync.WaitGroup
	for g := range 8 {
		s := s1
		if g%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for range 40 {
				vs := make([]jobs.Version, len(fields))
				for i := range vs {
					vs[i] = v(rand.Int64N(1_000_000)+1_700_000_000_000_000_000, rand.Uint64N(1000))
				}
				if err := s.Raise(context.Background(), alice, fields, vs); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i := range vs {
					if want[i].Less(vs[i]) {
						want[i] = vs[i]
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fresh, err := NewRedis(rdb, Config{Prefix: prefix}, nil, nil) // no cache
	if err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, fresh, alice, fields...); !slices.Equal(got, want) {
		t.Fatalf("stored %v, want the maxima %v", got, want)
	}
}

func TestTTLRefreshedOnRaise(t *testing.T) {
	s, rdb, prefix := newRedisStore(t, func(c *Config) { c.TTL = time.Hour })
	ctx := context.Background()
	k := prefix + "demo:alice"
	mustRaise(t, s, alice, []string{"bob/remark"}, v(10, 1))
	if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("ttl after raise = %v, want about 1h", ttl)
	}
	rdb.PExpire(ctx, k, time.Minute)
	mustRaise(t, s, alice, []string{"bob/remark"}, v(9, 1)) // raises nothing, still refreshes
	if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 59*time.Minute {
		t.Fatalf("ttl after a no-op raise = %v, want refreshed to about 1h", ttl)
	}
	def, _, prefix2 := newRedisStore(t, nil)
	mustRaise(t, def, alice, []string{"bob/remark"}, v(10, 1))
	if ttl := rdb.PTTL(ctx, prefix2+"demo:alice").Val(); ttl <= DefaultTTL-time.Minute || ttl > DefaultTTL {
		t.Fatalf("default ttl = %v, want 30 days", ttl)
	}
}

// TestBadStoredValues: a corrupt value reads as never applied and is
// overwritten; a key of the wrong type is an error, not an outage.
func TestBadStoredValues(t *testing.T) {
	s, rdb, prefix := newRedisStore(t, nil)
	ctx := context.Background()
	rdb.HSet(ctx, prefix+"demo:alice", "bob/remark", "garbage-that-sorts-high")
	if got := mustLoad(t, s, alice, "bob/remark"); got[0] != (jobs.Version{}) {
		t.Fatalf("corrupt value loaded as %v", got[0])
	}
	mustRaise(t, s, alice, []string{"bob/remark"}, v(5, 5))
	if raw := rdb.HGet(ctx, prefix+"demo:alice", "bob/remark").Val(); raw != v(5, 5).String() {
		t.Fatalf("corrupt value not overwritten: %q", raw)
	}

	rdb.Set(ctx, prefix+"demo:dave", "not a hash", 0)
	dave := jobs.Key{App: "demo", From: "dave"}
	err := s.Raise(ctx, dave, []string{"bob/remark"}, []jobs.Version{v(1, 1)})
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Raise on a string key = %v, want a WRONGTYPE error", err)
	}
	if _, err := s.Load(ctx, dave, []string{"bob/remark"}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Load on a string key = %v", err)
	}
	if !s.Available() || s.Pending() != 0 {
		t.Fatalf("an error reply was taken for an outage: available %v pending %d", s.Available(), s.Pending())
	}
}

// TestOutage: with Redis stopped, cached loads answer, uncached loads fail
// with ErrUnavailable, raises wait in memory; when Redis is back they are
// applied without lowering a newer value written meanwhile.
func TestOutage(t *testing.T) {
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	reg := prometheus.NewRegistry()
	s, err := NewRedis(rdb, Config{Timeout: 300 * time.Millisecond, ProbeInterval: 100 * time.Millisecond}, nil, NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bob := jobs.Key{App: "demo", From: "bob"}
	f1, f2, f3 := "x/remark", "x/groups", "y/remark"

	mustRaise(t, s, alice, []string{f1}, v(10, 1))
	if got := mustLoad(t, s, alice, f1, f2); !slices.Equal(got, []jobs.Version{v(10, 1), {}}) {
		t.Fatalf("before the outage: %v", got)
	}

	srv.Stop()
	if got := mustLoad(t, s, alice, f1, f2); !slices.Equal(got, []jobs.Version{v(10, 1), {}}) {
		t.Fatalf("cached load during the outage: %v", got)
	}
	if s.Available() {
		t.Fatal("store still claims Redis is available")
	}
	for _, tc := range []struct {
		key    jobs.Key
		fields []string
	}{{alice, []string{f1, f3}}, {bob, []string{f1}}} {
		if _, err := s.Load(ctx, tc.key, tc.fields); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("uncached load %v %v = %v, want ErrUnavailable", tc.key, tc.fields, err)
		}
	}
	raisePending(t, s, alice, []string{f1}, v(20, 1))
	raisePending(t, s, bob, []string{f1}, v(7, 7))
	// A field with a pending (not durable) raise is not answered from the
	// cache; cached fields without one still are.
	if _, err := s.Load(ctx, alice, []string{f1, f2}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load of a field with a pending raise = %v, want ErrUnavailable", err)
	}
	if got := mustLoad(t, s, alice, f2); !slices.Equal(got, []jobs.Version{{}}) {
		t.Fatalf("cached load of a field without a pending raise: %v", got)
	}
	raisePending(t, s, alice, []string{f2}, v(5, 1))
	if s.Pending() != 3 || gauge(t, s.m.pending) != 3 {
		t.Fatalf("pending = %d (gauge %v), want 3", s.Pending(), gauge(t, s.m.pending))
	}

	// Redis comes back empty (no persistence); another worker applies a
	// newer f2 before this store flushes.
	srv.Start()
	other := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = other.Close() })
	otherStore, err := NewRedis(other, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustRaise(t, otherStore, alice, []string{f2}, v(50, 1))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for (!s.Available() || s.Pending() > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Available() || s.Pending() != 0 || gauge(t, s.m.pending) != 0 {
		t.Fatalf("not recovered: available %v pending %d", s.Available(), s.Pending())
	}
	fresh, err := NewRedis(other, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, fresh, alice, f1, f2); !slices.Equal(got, []jobs.Version{v(20, 1), v(50, 1)}) {
		t.Fatalf("after the flush: %v, want f1 raised to 20 and f2 kept at the newer 50", got)
	}
	if got := mustLoad(t, fresh, bob, f1); got[0] != v(7, 7) {
		t.Fatalf("bob after the flush: %v", got)
	}
	// The store itself now reads Redis (and its cache learned f2 = 50).
	if got := mustLoad(t, s, alice, f2); got[0] != v(50, 1) {
		t.Fatalf("store load after recovery: %v", got)
	}
	for _, c := range []struct {
		op, result string
		min        float64
	}{
		{opLoad, resultCache, 2}, {opLoad, resultUnavailable, 2}, {opRaise, resultPending, 2},
		{opFlush, resultOK, 2}, {opLoad, resultOK, 2}, {opRaise, resultOK, 1},
	} {
		if got := counter(t, s.m.ops.WithLabelValues(c.op, c.result)); got < c.min {
			t.Errorf("ops_total{op=%s,result=%s} = %v, want ≥ %v", c.op, c.result, got, c.min)
		}
	}
	lint(t, reg)
}

// TestOutageBounds: Forget drops cached accounts but keeps pending raises;
// MaxPending bounds the memory an outage can take.
func TestOutageBounds(t *testing.T) {
	// Nothing listens on this port: every call fails at once.
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := NewRedis(rdb, Config{MaxPending: 3, ProbeInterval: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bob := jobs.Key{App: "demo", From: "bob"}
	// Seed the cache as if both accounts had been loaded before.
	s.cache.merge(alice, []string{"x/remark"}, []jobs.Version{v(1, 1)})
	s.cache.merge(bob, []string{"x/remark"}, []jobs.Version{v(2, 2)})

	raisePending(t, s, alice, []string{"x/remark", "y/remark"}, v(3, 3), v(3, 4))
	if s.Available() || s.Pending() != 2 {
		t.Fatalf("available %v pending %d", s.Available(), s.Pending())
	}
	// bob's cached field answers while nothing of it is pending.
	if got := mustLoad(t, s, bob, "x/remark"); got[0] != v(2, 2) {
		t.Fatalf("cached account: %v", got)
	}
	// Raising a field already pending adds nothing; a new one hits the bound.
	raisePending(t, s, alice, []string{"x/remark"}, v(4, 4))
	raisePending(t, s, bob, []string{"x/remark"}, v(5, 5))
	if err := s.Raise(ctx, bob, []string{"y/remark"}, []jobs.Version{v(6, 6)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("raise beyond MaxPending = %v, want ErrUnavailable", err)
	}
	// y/remark was never cached: raising it while down does not make it
	// answerable.
	if _, err := s.Load(ctx, alice, []string{"y/remark"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load of a pending-only field = %v, want ErrUnavailable", err)
	}
	s.Forget(func(k jobs.Key) bool { return k != alice })
	if _, err := s.Load(ctx, alice, []string{"x/remark"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load after Forget = %v, want ErrUnavailable", err)
	}
	if _, err := s.Load(ctx, bob, []string{"x/remark"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load of bob's pending field = %v, want ErrUnavailable", err)
	}
	if s.Pending() != 3 {
		t.Fatalf("Forget dropped pending raises: %d", s.Pending())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"ttl too short", Config{TTL: time.Microsecond}, "ttl"},
		{"negative cache", Config{CacheSize: -1}, "cache size"},
		{"negative pending", Config{MaxPending: -1}, "max pending"},
		{"negative timeout", Config{Timeout: -time.Second}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := NewRedis(nil, Config{}, nil, nil); err == nil {
		t.Fatal("NewRedis accepted a nil client")
	}
}

func TestMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	NewMetrics(reg) // reuses, never panics
	names := lint(t, reg)
	if want := []string{"friendsync_versions_ops_total", "friendsync_versions_pending_raises"}; !slices.Equal(names, want) {
		t.Fatalf("metrics = %v, want %v", names, want)
	}
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func lint(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	slices.Sort(names)
	return names
}
