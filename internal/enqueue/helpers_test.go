package enqueue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
)

const testPartitions = 8

// setupStream creates the events stream (memory, WorkQueue, DiscardNew,
// 30 min duplicates window), the meta bucket and a DLQ stream for a unique
// layout, as a worker would, and removes them at cleanup.
func setupStream(t testing.TB, adjust func(*jetstream.StreamConfig)) (jetstream.JetStream, event.Layout) {
	t.Helper()
	_, js := testenv.JetStream(t)
	return setupStreamOn(t, js, adjust)
}

// setupStreamOn is setupStream on another server.
func setupStreamOn(t testing.TB, js jetstream.JetStream, adjust func(*jetstream.StreamConfig)) (jetstream.JetStream, event.Layout) {
	t.Helper()
	l := event.Layout{Base: strings.ToLower(testenv.Unique("enq"))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name: l.Stream(), Subjects: []string{l.Subjects()}, Storage: jetstream.MemoryStorage,
		Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew, Duplicates: 30 * time.Minute,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.DeleteStreams(t, js, l.Stream(), jobs.DLQStream(l)) })
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: l.MetaBucket(), Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), l.MetaBucket()) })
	if _, err := kv.Create(ctx, event.PartitionsKey, []byte(strconv.Itoa(testPartitions))); err != nil {
		t.Fatal(err)
	}
	return js, l
}

// The profiles name their secrets by environment variables that the tests
// leave unset: enqueue never needs a credential.
const testProfiles = `apps:
  demo:
    vendor: tencent
    tencent: {sdkappid: 1400000000, identifier: admin, key: {env: ENQUEUE_TEST_UNSET_KEY}}
  zim:
    vendor: zego
    zego: {app_id: 12345, server_secret: {env: ENQUEUE_TEST_UNSET_SECRET}}
`

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func profilesFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "profiles.yaml", testProfiles)
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// invoke runs the command in process with no environment but getenv.
func invoke(t testing.TB, ctx context.Context, h hooks, stdin string, getenv map[string]string, args ...string) result {
	t.Helper()
	var out, errw syncBuffer
	e := &env{
		getenv: func(k string) string { return getenv[k] },
		stdin:  strings.NewReader(stdin),
		stdout: &out, stderr: &errw, hooks: h,
	}
	code := run(ctx, args, e)
	return result{code: code, stdout: out.String(), stderr: errw.String()}
}

// natsArgs are the connection flags for layout l on the machine's NATS.
func natsArgs(l event.Layout) []string {
	return []string{"-nats-url", testenv.NATSURL(), "-name", l.Base}
}

// stored is one message of the events stream.
type stored struct {
	seq     uint64
	subject string
	msgID   string
	ev      event.Event
}

// readAll returns every message of the (WorkQueue) events stream without
// removing any: an explicit-ack consumer that never acks, deleted after.
func readAll(t testing.TB, js jetstream.JetStream, l event.Layout) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, l.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Msgs)
	if want == 0 {
		return nil
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Name: "reader", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Minute, MaxAckPending: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), "reader") }()
	out := make([]stored, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(min(5000, want-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, _ := m.Metadata()
			ev, err := parseNDJSON(m.Data())
			if err != nil {
				t.Fatalf("stored payload %q: %v", m.Data(), err)
			}
			out = append(out, stored{seq: md.Sequence.Stream, subject: m.Subject(), msgID: m.Headers().Get(jetstream.MsgIDHeader), ev: ev})
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages: %v", len(out), want, batch.Error())
		}
	}
	return out
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
