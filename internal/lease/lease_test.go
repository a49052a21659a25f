package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// Three managers share 12 partitions 4/4/4; a fourth joins and the others
// hand one partition each back gracefully (3/3/3/3). No partition is ever
// valid at two managers. Runs on the machine's 2.9 server and on a current
// in-process one.
func TestBalanceAndJoin(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			c := newCluster(t, srv.js(t), 12)
			s := startSampler(t, c)
			a, b, cc := c.start("a", nil), c.start("b", nil), c.start("c", nil)
			three := []*node{a, b, cc}
			eventually(t, 10*time.Second, "3 managers balance 4/4/4", func() (bool, string) {
				return balanced(three, 12, []int{4, 4, 4})
			})
			for _, n := range three {
				if got := n.m.Members(); got != 3 {
					t.Fatalf("%s: Members() = %d, want 3", n.id, got)
				}
			}
			before := map[string]int{}
			for _, n := range three {
				before[n.id] = c.rec.count(n.id, kRelease)
			}

			d := c.start("d", nil)
			four := []*node{a, b, cc, d}
			eventually(t, 10*time.Second, "4 managers balance 3/3/3/3", func() (bool, string) {
				return balanced(four, 12, []int{3, 3, 3, 3})
			})
			// Each hands one back; on a loaded machine a manager may see a
			// stale member count for a poll, take a freed partition again
			// and hand it back once more. What must hold: every hand-back
			// is graceful (no lease lost, below), the sampler saw no
			// partition valid twice, and the balance is reached.
			for _, n := range three {
				if got := c.rec.count(n.id, kRelease) - before[n.id]; got < 1 || got > 2 {
					t.Errorf("%s: %d graceful hand-backs after d joined, want 1 (2 under load)", n.id, got)
				} else if got == 2 {
					t.Logf("%s: 2 graceful hand-backs after d joined (a re-acquire between polls)", n.id)
				}
			}
			if got := counter(d.met, EventAcquired); got < 3 {
				t.Errorf("d acquired %d times, want at least 3", got)
			}
			for _, n := range four {
				if got := counter(n.met, EventLost); got != 0 {
					t.Errorf("%s lost %d leases, want 0", n.id, got)
				}
			}
			eventually(t, 2*time.Second, "unowned gauge at 0 and members at 4", func() (bool, string) {
				for _, n := range four {
					u, m := gauge(n.met.unowned), gauge(n.met.members)
					if u != 0 || m != 4 {
						return false, fmt.Sprintf("%s: unowned %v members %v", n.id, u, m)
					}
				}
				return true, ""
			})
			s.stop()
			s.check(t)
		})
	}
}

// A manager that stops renewing without deleting anything (kill -9, or cut
// off from NATS while still running) keeps Valid true until its fencing
// deadline; the others take its partitions only after the keys expired,
// and never while it still considers them valid.
func TestKilledOwnerIsTakenOverOnlyAfterExpiry(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) { testKilledOwner(t, srv.js(t)) })
	}
}

func testKilledOwner(t *testing.T, js jetstream.JetStream) {
	c := newCluster(t, js, 12)
	s := startSampler(t, c)
	a, b, k := c.start("a", nil), c.start("b", nil), c.start("k", nil)
	eventually(t, 10*time.Second, "balance 4/4/4", func() (bool, string) {
		return balanced([]*node{a, b, k}, 12, []int{4, 4, 4})
	})
	victims := k.m.Owned()
	cfg := k.m.Config()

	crashAt := time.Now()
	k.m.crash()
	if !k.m.Valid(victims[0]) {
		t.Fatal("a crashed manager's Valid turned false at once; it must hold until the fencing deadline")
	}
	eventually(t, 3*cfg.TTL, "a and b own 6 each", func() (bool, string) {
		return balanced([]*node{a, b}, 12, []int{6, 6})
	})
	// The killed manager stops considering its partitions valid by its
	// fencing deadline (at most one fence after the crash).
	for _, p := range victims {
		if k.m.Valid(p) {
			t.Errorf("killed manager still valid for %d after takeover", p)
		}
		last := s.last("k", p)
		if last.IsZero() {
			t.Fatalf("no valid sample of k for %d", p)
		}
		if d := last.Sub(crashAt); d > cfg.fence() {
			t.Errorf("k valid for %d until %s after the crash, beyond the fence %s", p, d, cfg.fence())
		}
		got, ok := c.rec.firstAfter(p, kAcquired, "k", crashAt)
		if !ok {
			t.Fatalf("partition %d: no takeover recorded", p)
		}
		// Expiry: the last renew was at most RenewEvery before the crash.
		if d := got.at.Sub(crashAt); d < cfg.TTL-cfg.RenewEvery-50*time.Millisecond {
			t.Errorf("partition %d taken by %s %s after the crash, before the lease could expire (ttl %s)", p, got.worker, d, cfg.TTL)
		}
		// Fencing: the new owner starts at least VendorTimeout after the old
		// owner's last valid instant, so its last call has ended.
		if gap := got.at.Sub(last); gap < cfg.VendorTimeout {
			t.Errorf("partition %d: new owner %s started %s after k's last valid instant, want >= vendor timeout %s", p, got.worker, gap, cfg.VendorTimeout)
		}
		t.Logf("partition %d: k valid until +%s, %s acquired at +%s", p, last.Sub(crashAt).Round(time.Millisecond), got.worker, got.at.Sub(crashAt).Round(time.Millisecond))
	}
	s.stop()
	s.check(t)
}

// Ending Run hands every partition back (Release, then Delete): the others
// take them over well before the lease could have expired.
func TestGracefulStopHandsBackQuickly(t *testing.T) {
	_, js := testenv.JetStream(t)
	c := newCluster(t, js, 12)
	s := startSampler(t, c)
	a, b, g := c.start("a", nil), c.start("b", nil), c.start("g", nil)
	eventually(t, 10*time.Second, "balance 4/4/4", func() (bool, string) {
		return balanced([]*node{a, b, g}, 12, []int{4, 4, 4})
	})
	handed := g.m.Owned()
	cfg := g.m.Config()
	releasedBefore := counter(g.met, EventReleased)
	stopAt := time.Now()
	if err := g.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after a graceful stop", err)
	}
	if got := g.m.Owned(); len(got) != 0 {
		t.Fatalf("after Run returned g still owns %v", got)
	}
	for _, p := range handed {
		if g.m.Valid(p) {
			t.Fatalf("g still valid for %d after Run returned", p)
		}
	}
	if got := c.rec.countSince("g", kRelease, stopAt); got != 4 {
		t.Fatalf("Release called %d times, want 4", got)
	}
	if got := counter(g.met, EventReleased) - releasedBefore; got != 4 {
		t.Fatalf("released counter rose by %d, want 4", got)
	}
	eventually(t, cfg.TTL, "a and b own 6 each", func() (bool, string) {
		return balanced([]*node{a, b}, 12, []int{6, 6})
	})
	for _, p := range handed {
		got, ok := c.rec.firstAfter(p, kAcquired, "g", stopAt)
		if !ok {
			t.Fatalf("partition %d: no takeover", p)
		}
		// An expired lease could not be taken before TTL − RenewEvery.
		if d := got.at.Sub(stopAt); d >= cfg.TTL-cfg.RenewEvery {
			t.Errorf("partition %d taken %s after stop: looks like expiry, not a hand-back", p, d)
		}
	}
	// g's heartbeat is gone: members drop to 2.
	if a.m.Members() != 2 || b.m.Members() != 2 {
		t.Errorf("members after g stopped: a=%d b=%d, want 2", a.m.Members(), b.m.Members())
	}
	s.stop()
	s.check(t)
}

// A hand-back whose Release reports work still in flight drops the
// partition locally but leaves the key to expire: nobody takes it before
// the lease could have expired.
func TestUndrainedReleaseLeavesTheKeyToExpire(t *testing.T) {
	_, js := testenv.JetStream(t)
	c := newCluster(t, js, 4)
	c.rec.failRelease["x"] = true
	s := startSampler(t, c)
	x := c.start("x", nil)
	eventually(t, 5*time.Second, "x owns all", func() (bool, string) {
		return balanced([]*node{x}, 4, []int{4})
	})
	cfg := x.m.Config()
	joinAt := time.Now()
	y := c.start("y", nil)
	eventually(t, 3*cfg.TTL, "x and y own 2 each", func() (bool, string) {
		return balanced([]*node{x, y}, 4, []int{2, 2})
	})
	handed := 0
	for p := range 4 {
		rel, ok := c.rec.firstAfter(p, kRelease, "y", joinAt)
		if !ok {
			continue
		}
		handed++
		got, ok := c.rec.firstAfter(p, kAcquired, "x", rel.at)
		if !ok {
			t.Fatalf("partition %d: handed back by x but never acquired by y", p)
		}
		if d := got.at.Sub(rel.at); d < cfg.TTL-cfg.RenewEvery-50*time.Millisecond {
			t.Errorf("partition %d: y acquired %s after an undrained release, before the key could expire", p, d)
		}
	}
	if handed != 2 {
		t.Fatalf("x handed back %d partitions, want 2", handed)
	}
	if got := counter(x.met, EventReleased); got != 0 {
		t.Errorf("released counter %d after undrained releases, want 0", got)
	}
	s.stop()
	s.check(t)
}

// A renew that hits a revision mismatch with someone else's token is lost
// at once; one whose key holds our own token at a newer revision (a renew
// applied without a reply) is kept.
func TestRenewRevisionMismatch(t *testing.T) {
	_, js := testenv.JetStream(t)
	c := newCluster(t, js, 2)
	n := c.start("solo", nil)
	eventually(t, 5*time.Second, "solo owns both", func() (bool, string) {
		return balanced([]*node{n}, 2, []int{2})
	})
	kv := c.kv()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := n.m.Config()

	t.Run("another token means lost", func(t *testing.T) {
		if _, err := kv.Put(ctx, PartitionKey(0), []byte("intruder/x")); err != nil {
			t.Fatal(err)
		}
		putAt := time.Now()
		eventually(t, 2*cfg.RenewEvery+time.Second, "partition 0 lost", func() (bool, string) {
			return !n.m.Valid(0) && c.rec.count("solo", kCtxDone) == 1, fmt.Sprintf("valid=%v", n.m.Valid(0))
		})
		if d := time.Since(putAt); d > cfg.RenewEvery+500*time.Millisecond {
			t.Errorf("loss noticed %s after the intruder wrote, want about one renew interval", d)
		}
		if got := counter(n.met, EventLost); got != 1 {
			t.Errorf("lost counter %d, want 1", got)
		}
		if _, ok := n.m.CallDeadline(0); ok {
			t.Error("CallDeadline(0) ok after the lease was lost")
		}
		if got := n.m.Owned(); !slices.Equal(got, []int{1}) {
			t.Errorf("Owned() = %v, want [1]", got)
		}
		e, err := kv.Get(ctx, PartitionKey(0))
		if err != nil || string(e.Value()) != "intruder/x" {
			t.Fatalf("intruder key changed: %v %v", e, err)
		}
	})

	t.Run("own token at a newer revision is kept", func(t *testing.T) {
		e, err := kv.Get(ctx, PartitionKey(1))
		if err != nil {
			t.Fatal(err)
		}
		// What a renew applied without a reply leaves behind.
		rev, err := kv.Update(ctx, PartitionKey(1), e.Value(), e.Revision())
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		eventually(t, 3*cfg.RenewEvery+time.Second, "renews continue past the foreign revision", func() (bool, string) {
			cur, err := kv.Get(ctx, PartitionKey(1))
			if err != nil {
				return false, err.Error()
			}
			return cur.Revision() > rev && string(cur.Value()) == string(e.Value()), fmt.Sprintf("rev %d", cur.Revision())
		})
		if !n.m.Valid(1) {
			t.Fatal("partition 1 not valid")
		}
		// Renewed within the last RenewEvery (plus scheduling slack), so the
		// call deadline is close to now + TTL − Margin and never beyond it.
		dl, ok := n.m.CallDeadline(1)
		upper := time.Now().Add(cfg.TTL - cfg.Margin)
		if !ok || dl.After(upper) || dl.Before(upper.Add(-cfg.RenewEvery-300*time.Millisecond)) {
			t.Fatalf("CallDeadline(1) = %v, %v; want within (%v, %v]", dl, ok, upper.Add(-cfg.RenewEvery-300*time.Millisecond), upper)
		}
		if got := counter(n.met, EventLost); got != 1 {
			t.Errorf("lost counter %d, want still 1", got)
		}
	})
}

// With the server down renews time out: the partitions stay valid through
// a short outage (a failover), and turn invalid by the fencing deadline
// (within TTL − Margin of the last renew) in a long one; after the restart
// they are acquired again once the old keys expired.
func TestFencingWhenServerIsDown(t *testing.T) {
	port, dir := testenv.FreePort(t), t.TempDir()
	srv := testenv.StartNATSServer(t, testenv.ServerOptions{Port: port, StoreDir: dir})
	js := connect(t, srv.ClientURL())
	c := newCluster(t, js, 3)
	c.keepBucket = true // the server's store is a temp dir
	n := c.start("solo", nil)
	cfg := n.m.Config()
	eventually(t, 5*time.Second, "solo owns all", func() (bool, string) {
		return balanced([]*node{n}, 3, []int{3})
	})

	restart := func() {
		t.Helper()
		srv = testenv.StartNATSServer(t, testenv.ServerOptions{Port: port, StoreDir: dir})
	}
	down := func() {
		t.Helper()
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	allValid := func() bool {
		for p := range 3 {
			if !n.m.Valid(p) {
				return false
			}
		}
		return true
	}

	t.Run("short outage keeps every partition", func(t *testing.T) {
		revs, err := revisions(c, 3)
		if err != nil {
			t.Fatal(err)
		}
		down()
		outage := cfg.Failover // shorter than the fence minus a renew interval
		end := time.Now().Add(outage)
		for time.Now().Before(end) {
			if !allValid() {
				t.Fatalf("a partition turned invalid %s into a %s outage", outage-time.Until(end), outage)
			}
			time.Sleep(5 * time.Millisecond)
		}
		restart()
		eventually(t, 5*time.Second, "renews resume", func() (bool, string) {
			now, err := revisions(c, 3)
			if err != nil {
				return false, err.Error()
			}
			for p := range 3 {
				if now[p] <= revs[p] {
					return false, fmt.Sprintf("partition %d revision %d", p, now[p])
				}
			}
			return true, ""
		})
		if !allValid() || counter(n.met, EventLost) != 0 {
			t.Fatalf("after a short outage: valid=%v lost=%d", allValid(), counter(n.met, EventLost))
		}
		if counter(n.met, EventRenewError) == 0 {
			t.Error("no renew errors counted during the outage")
		}
	})

	t.Run("long outage invalidates by the fencing deadline", func(t *testing.T) {
		down()
		downAt := time.Now()
		limit := cfg.TTL - cfg.Margin
		eventually(t, limit+time.Second, "every partition invalid", func() (bool, string) {
			return n.m.Valid(0) == false && n.m.Valid(1) == false && n.m.Valid(2) == false, ""
		})
		if d := time.Since(downAt); d > limit {
			t.Errorf("partitions invalid only %s after the server stopped, want within TTL − margin = %s", d, limit)
		}
		eventually(t, time.Second, "contexts cancelled and losses counted", func() (bool, string) {
			return counter(n.met, EventLost) == 3 && len(n.m.Owned()) == 0, fmt.Sprintf("lost=%d", counter(n.met, EventLost))
		})
		restart()
		eventually(t, 3*cfg.TTL, "re-acquired after the old keys expired", func() (bool, string) {
			return balanced([]*node{n}, 3, []int{3})
		})
		if got := counter(n.met, EventAcquired); got != 6 {
			t.Errorf("acquired counter %d, want 6", got)
		}
	})
}

// revisions reads the current revision of p.0 … p.<p-1> (0: no key).
func revisions(c *cluster, p int) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.bucket())
	if err != nil {
		return nil, err
	}
	out := make([]uint64, p)
	for q := range p {
		e, err := kv.Get(ctx, PartitionKey(q))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("get %d: %w", q, err)
		}
		if err == nil {
			out[q] = e.Revision()
		}
	}
	return out, nil
}

// Every worker sharing a bucket must use the bucket's TTL (the fence is
// computed from it); Run may be called once.
func TestRunRefusesABucketWithAnotherTTL(t *testing.T) {
	_, js := testenv.JetStream(t)
	c := newCluster(t, js, 2)
	n := c.start("first", nil)
	eventually(t, 5*time.Second, "first owns both", func() (bool, string) {
		return balanced([]*node{n}, 2, []int{2})
	})
	if err := n.m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Run = %v, want an already-started error", err)
	}
	cfg := testConfig("other", 2)
	cfg.Layout = c.layout
	cfg.TTL = 3 * time.Second
	m, err := New(js, cfg, Callbacks{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = m.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "bucket ttl 2s differs from configured ttl 3s") {
		t.Fatalf("Run with another ttl = %v, want a ttl mismatch error", err)
	}
	if m.Valid(0) || len(m.Owned()) != 0 {
		t.Fatal("a manager that failed to start holds partitions")
	}
}

// A worker that starts before JetStream is ready (a fresh cluster still
// electing its meta leader answers "no responders" or 503) waits for it:
// Run retries opening the bucket until it works, then takes partitions.
func TestRunWaitsForJetStream(t *testing.T) {
	port := testenv.FreePort(t)
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true} // no JetStream yet
	plain := testenv.StartNATSServerWith(t, opts)
	nc, err := nats.Connect(plain.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("early", 2)
	cfg.Layout = event.Layout{Base: strings.ToLower(testenv.Unique("lease"))}
	m, err := New(js, cfg, Callbacks{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while JetStream was unavailable, want it to wait", err)
	case <-time.After(time.Second):
	}

	plain.Shutdown()
	plain.WaitForShutdown()
	testenv.StartNATSServer(t, testenv.ServerOptions{Port: port})
	eventually(t, 15*time.Second, "the early worker owns both partitions", func() (bool, string) {
		owned := m.Owned()
		return len(owned) == 2, fmt.Sprintf("owns %v", owned)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after JetStream came up, want nil", err)
	}
}
