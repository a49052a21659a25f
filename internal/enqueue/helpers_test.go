package enqueue

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

const testPartitions = 8

// setupStream creates, for a unique layout and as a worker would, the
// testPartitions partition streams (memory, WorkQueue, DiscardNew, 30 min
// duplicates window; adjust, if set, changes each one's configuration)
// and the meta bucket holding P, and removes them and the DLQ stream at
// cleanup.
func setupStream(t testing.TB, adjust func(p int, c *jetstream.StreamConfig)) (jetstream.JetStream, event.Layout) {
	t.Helper()
	_, js := testenv.JetStream(t)
	return setupStreamOn(t, js, adjust)
}

// setupStreamOn is setupStream on another server.
func setupStreamOn(t testing.TB, js jetstream.JetStream, adjust func(p int, c *jetstream.StreamConfig)) (jetstream.JetStream, event.Layout) {
	t.Helper()
	l := event.Layout{Base: strings.ToLower(testenv.Unique("enq"))}
	testenv.PartitionStreamsWith(t, js, l, testPartitions, func(p int, c *jetstream.StreamConfig) {
		c.Discard, c.Duplicates = jetstream.DiscardNew, 30*time.Minute
		if adjust != nil {
			adjust(p, c)
		}
	})
	return js, l
}

// cleanupLayout removes, at cleanup, every stream and bucket a test may
// make for l (testenv.DeleteLayout).
func cleanupLayout(t testing.TB, js jetstream.JetStream, l event.Layout) {
	t.Helper()
	t.Cleanup(func() { testenv.DeleteLayout(t, js, l) })
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

// stored is one message of a partition stream.
type stored struct {
	stream   string // the partition stream holding it
	seq      uint64 // in that stream
	ts       time.Time
	subject  string
	msgID    string
	expected string // its Nats-Expected-Stream header
	ev       event.Event
}

// readAll returns every message of the (WorkQueue) partition streams
// without removing any: an explicit-ack consumer per stream that never
// acks, deleted after. They come in publish order, as far as the Msg-Ids
// tell it: those of enqueue and of DLQ replays end in a number that grows
// with it (the line, the replay's unix nanos); the stream timestamp
// breaks ties. Every message must be in the stream of its subject's
// partition and carry that stream in Nats-Expected-Stream.
func readAll(t testing.TB, js jetstream.JetStream, l event.Layout) []stored {
	t.Helper()
	var out []stored
	for p := range testPartitions {
		msgs := readStream(t, js, l.PartitionStream(p))
		for _, m := range msgs {
			if _, mp, ok := l.ParseSubject(m.subject); !ok || mp != p {
				t.Errorf("%s holds a message on %s", m.stream, m.subject)
			}
			if m.expected != m.stream {
				t.Errorf("%s seq %d (%s): Nats-Expected-Stream %q, want its partition's stream", m.stream, m.seq, m.msgID, m.expected)
			}
		}
		out = append(out, msgs...)
	}
	order := func(m stored) (int64, bool) {
		n, err := strconv.ParseInt(m.msgID[strings.LastIndexByte(m.msgID, '/')+1:], 10, 64)
		return n, err == nil
	}
	slices.SortStableFunc(out, func(a, b stored) int {
		na, oka := order(a)
		nb, okb := order(b)
		switch {
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		case oka && na != nb:
			return cmp.Compare(na, nb)
		}
		return a.ts.Compare(b.ts)
	})
	return out
}

// readStream returns the messages of one WorkQueue stream, leaving them.
func readStream(t testing.TB, js jetstream.JetStream, name string) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
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
			out = append(out, stored{
				stream: name, seq: md.Sequence.Stream, ts: md.Timestamp, subject: m.Subject(),
				msgID: m.Headers().Get(jetstream.MsgIDHeader), expected: m.Headers().Get(jetstream.ExpectedStreamHeader), ev: ev,
			})
		}
		if n == 0 {
			t.Fatalf("%s: read %d of %d messages: %v", name, len(out), want, batch.Error())
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

// eventMsgs is the number of messages in all of l's partition streams.
func eventMsgs(t testing.TB, js jetstream.JetStream, l event.Layout) uint64 {
	t.Helper()
	return testenv.EventMsgs(t, js, l, testPartitions)
}
