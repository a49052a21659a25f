package producer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// setup creates minimal partition streams and the meta bucket for a
// unique layout, as a worker would, on the machine's NATS.
func setup(t *testing.T, partitions int) (*nats.Conn, jetstream.JetStream, event.Layout) {
	t.Helper()
	nc, js := testenv.JetStream(t)
	l := event.Layout{Base: strings.ToLower(testenv.Unique("prod"))}
	testenv.PartitionStreams(t, js, l, partitions)
	return nc, js, l
}

var apps = map[string]event.Rules{"demo": {Vendor: event.Tencent}, "zim": {Vendor: event.Zego}}

func TestPublish(t *testing.T) {
	t.Parallel()
	nc, js, l := setup(t, 32)
	ctx := context.Background()
	p, err := New(ctx, nc, Config{Layout: l, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	if p.Partitions() != 32 {
		t.Fatalf("partitions = %d", p.Partitions())
	}
	ev := &event.Event{App: "demo", From: "alice", To: "bob", Remark: event.Ptr("Bobby")}
	ack, err := p.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(ev.ID)
	if err != nil || id.Version() != 7 {
		t.Fatalf("generated id %q is not a UUIDv7 (%v)", ev.ID, err)
	}
	// demo/alice → partition 18 of 32 (docs/CONTRACT.md vector), whose
	// stream alone holds it.
	if want := l.PartitionStream(18); ack.Stream != want {
		t.Errorf("acked by stream %s, want %s", ack.Stream, want)
	}
	s, err := js.Stream(ctx, l.PartitionStream(18))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if want := l.Subject(event.LaneLive, 18); m.Subject != want {
		t.Errorf("subject %s, want %s", m.Subject, want)
	}
	if got, want := testenv.EventMsgs(t, js, l, 32), uint64(1); got != want {
		t.Errorf("partition streams hold %d messages, want %d", got, want)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Errorf("Nats-Msg-Id %q, want the event id %q", got, ev.ID)
	}
	back, err := event.Decode(m.Data)
	if err != nil || back.ID != ev.ID || *back.Remark != "Bobby" {
		t.Errorf("payload %s: %v", m.Data, err)
	}

	// The same id again is a duplicate; a new event with the same content is not.
	again, err := p.Publish(ctx, &event.Event{ID: ev.ID, App: "demo", From: "alice", To: "bob", Remark: event.Ptr("Bobby")})
	if err != nil || !again.Duplicate {
		t.Errorf("same id: duplicate=%v err=%v", again != nil && again.Duplicate, err)
	}
	fresh, err := p.Publish(ctx, &event.Event{App: "demo", From: "alice", To: "bob", Remark: event.Ptr("Bobby")})
	if err != nil || fresh.Duplicate {
		t.Errorf("same content, new id must not deduplicate: %+v %v", fresh, err)
	}

	bulk, err := p.Publish(ctx, &event.Event{App: "demo", From: "alice", To: "carol", Remark: event.Ptr("C")}, WithLane(event.LaneBulk), WithMsgID("file/1"))
	if err != nil {
		t.Fatal(err)
	}
	bm, _ := s.GetMsg(ctx, bulk.Sequence)
	if bm.Subject != l.Subject(event.LaneBulk, 18) || bm.Header.Get(jetstream.MsgIDHeader) != "file/1" {
		t.Errorf("bulk publish: subject %s msg id %s", bm.Subject, bm.Header.Get(jetstream.MsgIDHeader))
	}
}

func TestPublishRejectsBadEventsBeforeSending(t *testing.T) {
	t.Parallel()
	nc, js, l := setup(t, 8)
	ctx := context.Background()
	p, err := New(ctx, nc, Config{Layout: l, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ev   event.Event
		is   error
		want string
	}{
		{"unknown app", event.Event{App: "nope", From: "a", To: "b", Remark: event.Ptr("r")}, ErrUnknownApp, `app "nope"`},
		{"remark over tencent limit", event.Event{App: "demo", From: "a", To: "b", Remark: event.Ptr(strings.Repeat("r", 97))}, event.ErrInvalid, "remark"},
		{"groups for zego", event.Event{App: "zim", From: "a", To: "b", Groups: &[]string{"g"}}, event.ErrInvalid, "groups"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Publish(ctx, &tc.ev)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.is, tc.want)
			}
			if _, err := p.PublishAsync(&tc.ev); !errors.Is(err, tc.is) {
				t.Fatalf("async error %v, want %v", err, tc.is)
			}
		})
	}
	if n := testenv.EventMsgs(t, js, l, 8); n != 0 {
		t.Fatalf("%d messages published for invalid events", n)
	}
}

func TestPublishAsyncBoundedAndFlushed(t *testing.T) {
	t.Parallel()
	nc, js, l := setup(t, 4)
	ctx := context.Background()
	p, err := New(ctx, nc, Config{Layout: l, Apps: apps, MaxPending: 64})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := 0; i < n; i++ {
		ev := &event.Event{App: "demo", From: "u" + strconv.Itoa(i%50), To: "f" + strconv.Itoa(i), Remark: event.Ptr("x")}
		if _, err := p.PublishAsync(ev); err != nil {
			t.Fatal(err)
		}
		if p.Pending() > 64 {
			t.Fatalf("pending %d exceeds MaxPending", p.Pending())
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if got := testenv.EventMsgs(t, js, l, 4); got != n {
		t.Fatalf("partition streams hold %d messages, want %d", got, n)
	}
}

func TestAsyncFailuresAreReported(t *testing.T) {
	t.Parallel()
	nc, js, l := setup(t, 4)
	ctx := context.Background()
	p, err := New(ctx, nc, Config{Layout: l, Apps: apps, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Expect a stream the subject does not belong to: the server refuses.
	m, err := p.Prepare(&event.Event{App: "demo", From: "a", To: "b", Remark: event.Ptr("r")})
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(jetstream.ExpectedStreamHeader, "NOT_"+m.Header.Get(jetstream.ExpectedStreamHeader))
	if _, err := p.PublishMsgAsync(m); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err == nil || !strings.Contains(err.Error(), "1 async publishes failed") {
		t.Fatalf("flush error %v, want the failed ack reported", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("second flush reports old failures: %v", err)
	}
	_ = js
}

func TestNewWithoutStream(t *testing.T) {
	t.Parallel()
	nc := testenv.NATS(t)
	_, err := New(context.Background(), nc, Config{Layout: event.Layout{Base: strings.ToLower(testenv.Unique("none"))}, Apps: apps})
	if err == nil || !strings.Contains(err.Error(), "has a worker created the stream") {
		t.Fatalf("error %v, want a hint that the stream is missing", err)
	}
	if _, err := New(context.Background(), nc, Config{}); err == nil || !strings.Contains(err.Error(), "Apps is empty") {
		t.Fatalf("empty config: %v", err)
	}
}

// TestPrepareExpectsThePartitionStream checks that each prepared message
// names its own partition's stream in Nats-Expected-Stream, on both lanes,
// and that the server refuses it on another partition's stream.
func TestPrepareExpectsThePartitionStream(t *testing.T) {
	t.Parallel()
	nc, js, l := setup(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := New(ctx, nc, Config{Layout: l, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := 0; len(seen) < 4; i++ {
		if i > 1000 {
			t.Fatalf("1000 senders reached only partitions %v of 4", seen)
		}
		from := "u" + strconv.Itoa(i)
		part := event.Partition("demo", from, 4)
		seen[part] = true
		for _, lane := range []event.Lane{event.LaneLive, event.LaneBulk} {
			m, err := p.Prepare(&event.Event{App: "demo", From: from, To: "f", Remark: event.Ptr("r")}, WithLane(lane))
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != l.Subject(lane, part) {
				t.Errorf("%s on %s: subject %s, want %s", from, lane, m.Subject, l.Subject(lane, part))
			}
			if got, want := m.Header.Get(jetstream.ExpectedStreamHeader), l.PartitionStream(part); got != want {
				t.Errorf("%s on %s: Nats-Expected-Stream %q, want %q", from, lane, got, want)
			}
		}
	}
	// The header is not decoration: the server checks it.
	m, err := p.Prepare(&event.Event{App: "demo", From: "alice", To: "b", Remark: event.Ptr("r")})
	if err != nil {
		t.Fatal(err)
	}
	_, part, _ := l.ParseSubject(m.Subject)
	m.Header.Set(jetstream.ExpectedStreamHeader, l.PartitionStream((part+1)%4))
	if _, err := js.PublishMsg(ctx, m); err == nil {
		t.Fatalf("a message of partition %d was accepted while expecting stream %s", part, l.PartitionStream((part+1)%4))
	}
	if n := testenv.EventMsgs(t, js, l, 4); n != 0 {
		t.Fatalf("partition streams hold %d messages, want 0", n)
	}
}
