package queue

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// safetyConfig: MaxDeliver 2 (the server allows 3), AckWait 1 s.
func safetyConfig(l event.Layout) Config {
	cfg := testConfig(l)
	cfg.MaxDeliver = 2
	cfg.AckWait = time.Second
	cfg.SweepInterval = 100 * time.Millisecond
	return cfg
}

// TestKilledOnLastDelivery: a worker that never settles and sends no
// heartbeats (killed) holds deliveries 1 and 2; the spare delivery 3 is
// dead-lettered (max_deliver) without reaching the handler.
func TestKilledOnLastDelivery(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := safetyConfig(l)
		topo := ensure(t, js, cfg)
		rec := newRecorder() // never settles
		startConsumer(t, js, cfg, topo, "w-killed", nil, rec, false, nil, 0)
		ev := newEvent(t, "doomed", 0, topo.Partitions)
		ack := publish(t, js, l, event.LaneLive, topo.Partitions, ev)

		for want := 1; want <= 2; want++ {
			if env := rec.next(t, 3*time.Second); env.Meta.Delivered != want {
				t.Fatalf("handler got delivery %d, want %d", env.Meta.Delivered, want)
			}
		}
		dl := waitDLQ(t, js, l, 1, 4*time.Second)[0]
		data, _ := event.Encode(ev)
		checkDeadLetter(t, dl, l, jobs.ReasonMaxDeliver, ack.Sequence, 3, "w-killed", string(data))
		if d := dl.Header.Get(jobs.HdrDetail); !strings.Contains(d, "spare delivery 3") {
			t.Errorf("detail %q, want it to name the spare delivery", d)
		}
		rec.none(t, 200*time.Millisecond)
		eventually(t, 2*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
	})
}

// killDeliveries takes every server delivery of the partition's live
// consumer without settling, as workers that die would, until the server
// gives up (MaxDeliver+1 deliveries). Naks make it quick.
func killDeliveries(t *testing.T, js jetstream.JetStream, cfg Config, p int) {
	t.Helper()
	cons, err := js.Consumer(t.Context(), cfg.Layout.PartitionStream(p), jobs.ConsumerName(event.LaneLive, p))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < cfg.MaxDeliver+1; {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			n++
			_ = m.Nak()
		}
		if b.Error() != nil {
			t.Fatal(b.Error())
		}
	}
	// One more pull: the server notices the exhausted message on it.
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		md, _ := m.Metadata()
		t.Fatalf("delivery %d beyond the server's MaxDeliver", md.NumDelivered)
	}
}

// TestMaxDeliveriesAdvisory: every delivery, the spare one included, went
// to dying workers; a running worker (not owning the partition) catches
// the MAX_DELIVERIES advisory, copies the message to the DLQ and deletes it.
func TestMaxDeliveriesAdvisory(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := safetyConfig(l)
		cfg.SweepInterval = time.Hour // the advisory alone
		topo := ensure(t, js, cfg)
		m := NewMetrics(prometheus.NewRegistry())
		startConsumer(t, js, cfg, topo, "w-listener", nil, newRecorder(), true, m)
		startConsumer(t, js, cfg, topo, "w-listener-2", nil, newRecorder(), true, nil) // same queue group
		// Workers of another deployment on the same account hear the same
		// advisories; they must not take this layout's share of them.
		other := safetyConfig(testLayout(t, js))
		otherTopo := ensure(t, js, other)
		for i := range 3 {
			startConsumer(t, js, other, otherTopo, "w-other-"+strconv.Itoa(i), nil, newRecorder(), true, nil)
		}
		time.Sleep(100 * time.Millisecond) // subscriptions registered
		ev := newEvent(t, "exhausted", 1, topo.Partitions)
		ack := publish(t, js, l, event.LaneLive, topo.Partitions, ev)

		killDeliveries(t, js, cfg, 1)
		dl := waitDLQ(t, js, l, 1, 3*time.Second)[0]
		data, _ := event.Encode(ev)
		worker := dl.Header.Get(jobs.HdrWorker)
		checkDeadLetter(t, dl, l, jobs.ReasonMaxDeliver, ack.Sequence, 3, worker, string(data))
		if d := dl.Header.Get(jobs.HdrDetail); !strings.Contains(d, "advisory") {
			t.Errorf("detail %q, want the advisory named", d)
		}
		if got, want := dl.Header.Get(jobs.HdrVersion), (jobs.Version{TS: ev.TS, Seq: ack.Sequence}).String(); got != want {
			t.Errorf("version header %q, want %q", got, want)
		}
		eventually(t, 2*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
		time.Sleep(200 * time.Millisecond)
		if n := len(dlqEntries(t, js, l)); n != 1 {
			t.Fatalf("DLQ holds %d entries, want 1 (one worker per advisory)", n)
		}
	})
}

// TestSweeperFindsStrandedMessage: the advisory went unheard (no worker
// ran); the message stays in the stream, undeliverable. The next owner's
// sweeper dead-letters it. This also pins the server behaviour the
// sweeper relies on (2.9.10 and current): the exhausted message stays in
// the WorkQueue stream and the consumer has nothing pending.
func TestSweeperFindsStrandedMessage(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := safetyConfig(l)
		topo := ensure(t, js, cfg)
		ev := newEvent(t, "stranded", 0, topo.Partitions)
		ack := publish(t, js, l, event.LaneLive, topo.Partitions, ev)
		killDeliveries(t, js, cfg, 0)

		cons, err := js.Consumer(t.Context(), l.PartitionStream(0), jobs.ConsumerName(event.LaneLive, 0))
		if err != nil {
			t.Fatal(err)
		}
		ci := cons.CachedInfo()
		if n := eventMsgs(t, js, l); n != 1 || ci.NumAckPending != 0 || ci.NumPending != 0 || ci.Delivered.Stream < ack.Sequence {
			t.Fatalf("server state after max deliveries: stream msgs %d, ack pending %d, pending %d, delivered %d (want 1, 0, 0, >= %d)",
				n, ci.NumAckPending, ci.NumPending, ci.Delivered.Stream, ack.Sequence)
		}

		rec := newRecorder()
		m := NewMetrics(prometheus.NewRegistry())
		startConsumer(t, js, cfg, topo, "w-sweeper", nil, rec, true, m, 0, 1)
		dl := waitDLQ(t, js, l, 1, 3*time.Second)[0]
		data, _ := event.Encode(ev)
		checkDeadLetter(t, dl, l, jobs.ReasonMaxDeliver, ack.Sequence, 0, "w-sweeper", string(data))
		if d := dl.Header.Get(jobs.HdrDetail); !strings.Contains(d, "sweep") {
			t.Errorf("detail %q, want the sweep named", d)
		}
		eventually(t, 2*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
		if got := testutil.ToFloat64(m.maxDelivery); got != 1 {
			t.Errorf("stranded_total = %v, want 1", got)
		}
		rec.none(t, 100*time.Millisecond)

		// Messages in flight are never swept: a held one outlives many sweeps.
		ev2 := newEvent(t, "busy", 0, topo.Partitions)
		publish(t, js, l, event.LaneLive, topo.Partitions, ev2)
		env := rec.next(t, 3*time.Second)
		time.Sleep(5 * cfg.SweepInterval)
		env.Settle(jobs.Outcome{Kind: jobs.Applied})
		eventually(t, 2*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
		if n := len(dlqEntries(t, js, l)); n != 1 {
			t.Fatalf("DLQ holds %d entries, want only the stranded one", n)
		}
	})
}

// TestDuplicateMsgID: a second publish with the same Msg-Id inside the
// Duplicates window is dropped by the server, and a repeated dead-letter
// copy of one stream message is kept once.
func TestDuplicateMsgID(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		topo := ensure(t, js, cfg)
		ev := newEvent(t, "dup", 0, topo.Partitions)
		first := publish(t, js, l, event.LaneLive, topo.Partitions, ev)
		second := publish(t, js, l, event.LaneLive, topo.Partitions, ev)
		if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
			t.Fatalf("pub acks %+v then %+v: want the second flagged duplicate of the first", first, second)
		}
		rec := newRecorder()
		c := startConsumer(t, js, cfg, topo, "w-dup", nil, rec, false, nil, 0)
		rec.next(t, 3*time.Second).Settle(jobs.Outcome{Kind: jobs.Applied})
		rec.none(t, 300*time.Millisecond)

		dl := deadLetter{reason: jobs.ReasonInvalid, detail: "x", subject: l.Subject(event.LaneLive, 0), seq: 99, data: []byte("{}")}
		for range 2 {
			if err := c.settler.publishDLQ(dl); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(dlqEntries(t, js, l)); n != 1 {
			t.Fatalf("DLQ holds %d copies of one message, want 1", n)
		}
	})
}

// TestLiveFirst: with a bulk backlog and a live backlog, live is taken
// first and bulk only gets BulkShare per round while live is busy.
func TestLiveFirst(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		cfg.FetchBatch, cfg.BulkShare = 4, 1
		topo := ensure(t, js, cfg)
		for i := range 12 {
			publish(t, js, l, event.LaneBulk, topo.Partitions, newEvent(t, "b"+itoa(i), 0, topo.Partitions))
		}
		for i := range 8 {
			publish(t, js, l, event.LaneLive, topo.Partitions, newEvent(t, "l"+itoa(i), 0, topo.Partitions))
		}
		rec := newRecorder()
		m := NewMetrics(prometheus.NewRegistry())
		startConsumer(t, js, cfg, topo, "w-live", nil, rec, true, m, 0)
		var order []string
		for range 20 {
			env := rec.next(t, 3*time.Second)
			order = append(order, string(env.Meta.Lane[0]))
			env.Settle(jobs.Outcome{Kind: jobs.Applied})
		}
		// Rounds: live 4 (full) + bulk 1, live 4 (full) + bulk 1, live 0 + bulk 4, ...
		if got, want := strings.Join(order[:10], ""), "llllbllllb"; got != want {
			t.Fatalf("first deliveries %q, want %q (all live first, one bulk per busy round)", got, want)
		}
		eventually(t, 2*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
		if got := testutil.ToFloat64(m.received.WithLabelValues("bulk")); got != 12 {
			t.Fatalf("received{bulk} = %v, want 12", got)
		}
		// Idle now: a bulk message still arrives, within about IdleWait.
		publish(t, js, l, event.LaneBulk, topo.Partitions, newEvent(t, "late-bulk", 0, topo.Partitions))
		if env := rec.next(t, cfg.IdleWait+time.Second); env.Event.ID != "late-bulk" {
			t.Fatalf("got %q, want the late bulk event", env.Event.ID)
		} else {
			env.Settle(jobs.Outcome{Kind: jobs.Applied})
		}
	})
}

// TestLagMetrics: held messages show as ack-pending, the backlog as
// pending, for the owned partitions.
func TestLagMetrics(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		cfg.MaxAckPendingLive, cfg.FetchBatch = 3, 3
		topo := ensure(t, js, cfg)
		for i := range 5 {
			publish(t, js, l, event.LaneLive, topo.Partitions, newEvent(t, "lag"+itoa(i), 0, topo.Partitions))
		}
		rec := newRecorder()
		m := NewMetrics(prometheus.NewRegistry())
		c := startConsumer(t, js, cfg, topo, "w-lag", nil, rec, true, m, 0)
		eventually(t, 3*time.Second, "ack pending 3, pending 2", func() bool {
			return testutil.ToFloat64(m.ackPending.WithLabelValues("live")) == 3 &&
				testutil.ToFloat64(m.pending.WithLabelValues("live")) == 2
		})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second) // > IdleWait: the intake ends in time
		defer cancel()
		if err := c.StopPartition(ctx, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Second, "gauges drop to zero without owned partitions", func() bool {
			return testutil.ToFloat64(m.ackPending.WithLabelValues("live")) == 0
		})
	})
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// TestRunStops: Run returns soon after its ctx ends, and refuses to run
// twice at once.
func TestRunStops(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		topo := ensure(t, js, cfg)
		c, err := NewConsumer(js, cfg, topo, "w-run", nil, newRecorder(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		eventually(t, time.Second, "Run started", func() bool { return c.running.Load() })
		if err := c.Run(t.Context()); err == nil {
			t.Fatal("a second concurrent Run was accepted")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after its ctx ended")
		}
	})
}

func TestNewConsumerRejects(t *testing.T) {
	_, js := testenv.JetStream(t)
	h := newRecorder()
	topo := Topology{Partitions: 2}
	tests := []struct {
		name string
		js   jetstream.JetStream
		cfg  Config
		topo Topology
		id   string
		h    Handler
	}{
		{"nil jetstream", nil, Config{}, topo, "w", h},
		{"nil handler", js, Config{}, topo, "w", nil},
		{"no worker id", js, Config{}, topo, "", h},
		{"no topology", js, Config{}, Topology{}, "w", h},
		{"bad config", js, Config{AckWait: time.Millisecond}, topo, "w", h},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := NewConsumer(tc.js, tc.cfg, tc.topo, tc.id, nil, tc.h, nil, nil); err == nil || c != nil {
				t.Fatalf("NewConsumer = %v, %v; want an error", c, err)
			}
		})
	}
	c, err := NewConsumer(js, Config{}, topo, "w", nil, h, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartPartition(t.Context(), 2); err == nil {
		t.Fatal("StartPartition(2) of 2 partitions was accepted")
	}
}

// TestEmptyBulkNotPulledEveryRound: while live delivers a backlog and the
// bulk lane is empty, the intake asks bulk again only every bulkRecheck,
// not once per round (each empty pull costs the server a request, a
// reply and an inbox); bulk is still asked.
func TestEmptyBulkNotPulledEveryRound(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		topo := ensure(t, js, cfg)
		const n = 3000
		ev := newEvent(t, "x", 0, topo.Partitions)
		data, err := event.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		subj := l.SubjectFor(ev, event.LaneLive, topo.Partitions)
		for i := range n {
			publishRaw(t, js, subj, "bk"+strconv.Itoa(i), data)
		}
		var live, bulk atomic.Int64
		nc := js.Conn()
		next := "$JS.API.CONSUMER.MSG.NEXT." + l.PartitionStream(0) + "."
		for _, c := range []struct {
			lane event.Lane
			n    *atomic.Int64
		}{{event.LaneLive, &live}, {event.LaneBulk, &bulk}} {
			sub, err := nc.Subscribe(next+jobs.ConsumerName(c.lane, 0), func(*nats.Msg) { c.n.Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		h := HandlerFunc(func(_ context.Context, env *jobs.Envelope) error {
			go env.Settle(jobs.Outcome{Kind: jobs.Applied})
			return nil
		})
		startConsumer(t, js, cfg, topo, "w-bulk-recheck", nil, h, true, nil, 0)
		eventually(t, 60*time.Second, "event stream empty", func() bool { return eventMsgs(t, js, l) == 0 })
		lv, bk := live.Load(), bulk.Load()
		t.Logf("pull requests while draining %d live messages: live %d, bulk %d", n, lv, bk)
		if lv < int64(n/cfg.FetchBatch) {
			t.Fatalf("%d live pull requests for %d messages in batches of %d: the count is wrong", lv, n, cfg.FetchBatch)
		}
		if bk < 1 || 4*bk > lv {
			t.Fatalf("bulk pull requests %d with %d live ones: want at least 1 and under a quarter", bk, lv)
		}
	})
}
