package prooftest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/lease"
	"github.com/friendsync/friendsync/internal/testenv"
)

func testLayout(t *testing.T, js jetstream.JetStream) event.Layout {
	t.Helper()
	l := event.Layout{Base: strings.ToLower(testenv.Unique("prooftest"))}
	t.Cleanup(func() {
		testenv.DeleteLayout(t, js, l)
	})
	return l
}

func TestPending(t *testing.T) {
	_, js := testenv.JetStream(t)
	l := testLayout(t, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const partitions = 2
	if n := Pending(ctx, js, l, partitions); n != -1 {
		t.Fatalf("Pending without a stream = %d, want -1", n)
	}
	// Each partition's consumers live on its own stream.
	consumer := func(lane event.Lane, p int) {
		t.Helper()
		if _, err := js.CreateConsumer(ctx, l.PartitionStream(p), jetstream.ConsumerConfig{Durable: jobs.ConsumerName(lane, p),
			FilterSubject: l.Subject(lane, p), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	stream := func(p int) {
		t.Helper()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: l.PartitionStream(p), Subjects: []string{l.PartitionSubjects(p)},
			Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	stream(0)
	consumer(event.LaneLive, 0)
	consumer(event.LaneBulk, 0)
	if n := Pending(ctx, js, l, partitions); n != -1 {
		t.Fatalf("Pending with partition 1's stream missing = %d, want -1", n)
	}
	stream(1)
	consumer(event.LaneLive, 1)
	if n := Pending(ctx, js, l, partitions); n != -1 {
		t.Fatalf("Pending with a consumer missing = %d, want -1", n)
	}
	consumer(event.LaneBulk, 1)
	if n := Pending(ctx, js, l, partitions); n != 0 {
		t.Fatalf("Pending of empty consumers = %d", n)
	}
	for _, subj := range []string{l.Subject(event.LaneLive, 0), l.Subject(event.LaneBulk, 1), l.Subject(event.LaneBulk, 1)} {
		if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	// One fetched and not acked: still counted (ack pending).
	cons, err := js.Consumer(ctx, l.PartitionStream(1), jobs.ConsumerName(event.LaneBulk, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := Pending(ctx, js, l, partitions); n != 3 {
		t.Fatalf("Pending = %d, want 3", n)
	}
}

func TestReadDLQ(t *testing.T) {
	_, js := testenv.JetStream(t)
	l := testLayout(t, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ReadDLQ(ctx, js, l); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("ReadDLQ without a stream: %v, want ErrStreamNotFound", err)
	}
	subj := l.Base + ".dlqtest"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: jobs.DLQStream(l), Subjects: []string{subj}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := ReadDLQ(ctx, js, l); err != nil || len(ms) != 0 {
		t.Fatalf("ReadDLQ of an empty stream = %d entries, %v", len(ms), err)
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		m := nats.NewMsg(subj)
		m.Header.Set(jobs.HdrEventID, id)
		m.Data = []byte("data " + id)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteMsg(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadDLQ(ctx, js, l)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Header.Get(jobs.HdrEventID)+"/"+string(m.Data))
	}
	if strings.Join(ids, " ") != "e1/data e1 e3/data e3" {
		t.Fatalf("ReadDLQ = %q, want e1 and e3 in order", ids)
	}
}

func TestLeaseOwnersAndWaitOwned(t *testing.T) {
	_, js := testenv.JetStream(t)
	l := testLayout(t, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := LeaseOwners(ctx, js, l, 3); err == nil {
		t.Fatal("LeaseOwners without a bucket: no error")
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jobs.LeaseBucket(l), Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	put := func(p int, v string) {
		t.Helper()
		if _, err := kv.Put(ctx, lease.PartitionKey(p), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	put(0, "w1/17")
	put(2, "w2/3")
	owners, err := LeaseOwners(ctx, js, l, 3)
	if err != nil || len(owners) != 2 || owners[0] != "w1" || owners[2] != "w2" {
		t.Fatalf("LeaseOwners = %v, %v; want 0:w1 2:w2", owners, err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = kv.Put(context.Background(), lease.PartitionKey(1), []byte("w1/18"))
	}()
	owners = WaitOwned(t, js, l, 3, []string{"w1", "w2"}, 10*time.Second)
	if len(owners) != 3 || owners[1] != "w1" {
		t.Fatalf("WaitOwned = %v", owners)
	}
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as in a test
		defer close(done)
		WaitOwned(r, js, l, 3, []string{"w3"}, 300*time.Millisecond)
	}()
	<-done
	if !strings.Contains(r.fatal, "leases not spread over [w3]") {
		t.Fatalf("WaitOwned for a worker owning nothing: %q, want a failure", r.fatal)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records and ends the
// goroutine.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
