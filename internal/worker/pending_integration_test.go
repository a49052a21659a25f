package worker_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// TestProofKillWithRaisesPending: a worker killed while the versions of a
// value it applied are only in its memory (Redis unreachable) loses
// nothing. The event was not acked (its version was not durable), so it
// comes back after the kill, and the newest value wins over an older event
// processed after the restart. Before the fix the event was acked, the
// kill lost the pending raise, and the older event overwrote the newest
// value (the chaos suite's finding, docs/RELIABILITY.md).
func TestProofKillWithRaisesPending(t *testing.T) {
	rs := testenv.StartRedisServer(t)
	proxy := startOutageProxy(t, rs.Addr)
	c := newCluster(t, clusterOpts{redisURL: "redis://" + proxy.Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k := friendKey{App: appT1, From: "u1", To: "f1_0"}
	base := time.Now().Add(-time.Hour).UnixNano()
	w1 := c.startProc("k1") // creates the stream
	p := c.producer(ctx)
	publish := func(ts int64, remark string) {
		t.Helper()
		ev := event.Event{App: k.App, From: k.From, To: k.To, Remark: &remark, TS: ts}
		if _, err := p.Publish(ctx, &ev); err != nil {
			t.Fatalf("publish %q: %v", remark, err)
		}
	}
	waitRemark := func(want string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			if f, ok := apps.Friend(c.sim, k); ok && f.Remark == want {
				return
			}
			if time.Now().After(deadline) {
				f, _ := apps.Friend(c.sim, k)
				t.Fatalf("remark %q after %s, want %q", f.Remark, d, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	publish(base+1, "first") // w1 caches the account's versions
	// Wait for the ack, not just the vendor: the raise of "first" follows
	// the vendor call, and cutting Redis between the two leaves "first"
	// pending too, which (rightly) holds every later event for the field
	// until Redis answers (a CI run lost that race).
	c.waitApplied(map[friendKey]vendorsim.Friend{k: {Remark: "first"}}, 30*time.Second)

	proxy.SetDown(true)
	publish(base+3, "newest") // applied from the cache; its raise stays in w1's memory
	waitRemark("newest", time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := w1.metric("friendsync_versions_pending_raises")
		if err == nil && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no raise pending in k1 10s after the newest value was applied (%v, %v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w1.signal(syscall.SIGKILL)
	if _, ok := w1.wait(10 * time.Second); !ok {
		t.Fatal("k1 did not die")
	}
	proxy.SetDown(false)

	publish(base+2, "older") // older than "newest", newer than what Redis holds
	c.startProc("k2")
	c.waitApplied(map[friendKey]vendorsim.Friend{k: {Remark: "newest"}}, time.Minute)
	if dls := c.deadLetters(); len(dls) > 0 {
		t.Errorf("%d dead letters, want none:\n%s", len(dls), describeDLQ(dls))
	}
	c.checkVendorInvariants()
}
