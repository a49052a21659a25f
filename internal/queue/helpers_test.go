package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eachServer runs f against the machine's NATS (nats-server 2.9.10 on
// 127.0.0.1:4222) and against an in-process current nats-server, in
// parallel.
func eachServer(t *testing.T, f func(t *testing.T, js jetstream.JetStream)) {
	t.Helper()
	t.Run("machine", func(t *testing.T) {
		t.Parallel()
		nc, js := testenv.JetStream(t)
		t.Logf("nats-server %s", nc.ConnectedServerVersion())
		f(t, js)
	})
	t.Run("current", func(t *testing.T) {
		t.Parallel()
		s := testenv.StartNATSServer(t, testenv.ServerOptions{})
		nc, err := nats.Connect(s.ClientURL(), nats.Name(t.Name()))
		if err != nil {
			t.Fatalf("connect in-process server: %v", err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("nats-server %s", nc.ConnectedServerVersion())
		f(t, js)
	})
}

// testLayout returns a unique layout whose streams and bucket are deleted
// at cleanup.
func testLayout(t *testing.T, js jetstream.JetStream) event.Layout {
	t.Helper()
	l := event.Layout{Base: strings.ToLower(testenv.Unique("fsq"))}
	t.Cleanup(func() {
		testenv.DeleteLayout(t, js, l)
	})
	return l
}

// eventStreams names the streams that hold l's event subjects (its
// partition streams, and an old one-stream stream if a test made one).
func eventStreams(t *testing.T, js jetstream.JetStream, l event.Layout) []string {
	t.Helper()
	names, err := testenv.EventStreams(t.Context(), js, l)
	if err != nil {
		t.Error(err)
	}
	return names
}

// eventMsgs is the number of messages in all of l's event streams.
func eventMsgs(t *testing.T, js jetstream.JetStream, l event.Layout) uint64 {
	t.Helper()
	var n uint64
	for _, name := range eventStreams(t, js, l) {
		n += streamMsgs(t, js, name)
	}
	return n
}

// testConfig is a small, fast configuration for integration tests.
func testConfig(l event.Layout) Config {
	return Config{
		Layout:            l,
		Partitions:        2,
		Storage:           jetstream.MemoryStorage,
		MaxMsgs:           10_000,
		MaxBytes:          64 << 20,
		AckWait:           2 * time.Second,
		MaxDeliver:        3,
		MaxAckPendingLive: 100,
		MaxAckPendingBulk: 100,
		FetchBatch:        8,
		IdleWait:          200 * time.Millisecond,
		RetryBase:         100 * time.Millisecond,
		RetryMax:          time.Second,
		SweepInterval:     200 * time.Millisecond,
		LagInterval:       100 * time.Millisecond,
	}
}

func ensure(t *testing.T, js jetstream.JetStream, cfg Config) Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	topo, err := Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return topo
}

// testLogger logs to the test output when FRIENDSYNC_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FRIENDSYNC_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// recorder is a Handler that queues envelopes for the test.
type recorder struct {
	envs chan *jobs.Envelope
	err  error
}

func newRecorder() *recorder { return &recorder{envs: make(chan *jobs.Envelope, 1000)} }

func (r *recorder) Handle(_ context.Context, env *jobs.Envelope) error {
	if r.err != nil {
		return r.err
	}
	r.envs <- env
	return nil
}

// next waits for the next envelope.
func (r *recorder) next(t *testing.T, within time.Duration) *jobs.Envelope {
	t.Helper()
	select {
	case env := <-r.envs:
		return env
	case <-time.After(within):
		t.Fatalf("no envelope within %v", within)
		return nil
	}
}

// none asserts that no envelope arrives for d.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case env := <-r.envs:
		t.Fatalf("unexpected envelope: seq %d delivered %d", env.Meta.Seq, env.Meta.Delivered)
	case <-time.After(d):
	}
}

// startConsumer creates a Consumer, optionally runs it, starts partitions
// and stops everything at cleanup.
func startConsumer(t *testing.T, js jetstream.JetStream, cfg Config, topo Topology, worker string, v Validator, h Handler, run bool, m *Metrics, parts ...int) *Consumer {
	t.Helper()
	c, err := NewConsumer(js, cfg, topo, worker, v, h, testLogger(t), m)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	for _, p := range parts {
		if err := c.StartPartition(t.Context(), p); err != nil {
			t.Fatalf("StartPartition(%d): %v", p, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.StopAll(ctx)
	})
	return c
}

// newEvent returns a valid event that hashes to partition p of P.
func newEvent(t *testing.T, id string, p, partitions int) *event.Event {
	t.Helper()
	for i := range 10_000 {
		from := fmt.Sprintf("user%d", i)
		if event.Partition("app1", from, partitions) == p {
			return &event.Event{ID: id, App: "app1", From: from, To: "friend", Remark: event.Ptr("hi " + id), TS: 1_700_000_000_000_000_000}
		}
	}
	t.Fatalf("no account hashes to partition %d", p)
	return nil
}

// publish publishes ev on its lane and partition with Msg-Id = ev.ID.
func publish(t *testing.T, js jetstream.JetStream, l event.Layout, lane event.Lane, partitions int, ev *event.Event) *jetstream.PubAck {
	t.Helper()
	data, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return publishRaw(t, js, l.SubjectFor(ev, lane, partitions), ev.ID, data)
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject, id string, data []byte) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	ack, err := js.Publish(ctx, subject, data, opts...)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamMsgs is the number of messages in a stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().State.Msgs
}

// dlqEntries reads every dead letter of l.
func dlqEntries(t *testing.T, js jetstream.JetStream, l event.Layout) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), jobs.DLQStream(l))
	if err != nil {
		t.Fatalf("DLQ stream: %v", err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("DLQ get %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// waitDLQ waits until the DLQ holds n entries and returns them.
func waitDLQ(t *testing.T, js jetstream.JetStream, l event.Layout, n int, within time.Duration) []*jetstream.RawStreamMsg {
	t.Helper()
	var got []*jetstream.RawStreamMsg
	eventually(t, within, fmt.Sprintf("%d DLQ entries", n), func() bool {
		got = dlqEntries(t, js, l)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("DLQ holds %d entries, want %d", len(got), n)
	}
	return got
}
