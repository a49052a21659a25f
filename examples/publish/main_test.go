package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// TestExamplePublishes runs the example against a stream made the way a
// worker makes it, on the machine's NATS.
func TestExamplePublishes(t *testing.T) {
	_, js := testenv.JetStream(t)
	l := event.Layout{Base: strings.ToLower(testenv.Unique("example"))}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: l.Stream(), Subjects: []string{l.Subjects()}, Storage: jetstream.MemoryStorage,
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.DeleteStreams(t, js, l.Stream()) })
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: l.MetaBucket(), Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), l.MetaBucket()) })
	if _, err := kv.Create(ctx, event.PartitionsKey, []byte(strconv.Itoa(4))); err != nil {
		t.Fatal(err)
	}

	if err := run(ctx, []string{"-nats-url", testenv.NATSURL(), "-name", l.Base, "-rate", "500", "-count", "20"}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, l.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(l.SubjectPrefix()+".live.>"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 20 || len(info.State.Subjects) == 0 {
		t.Fatalf("stream holds %d messages on %d live subjects, want 20", info.State.Msgs, len(info.State.Subjects))
	}
	if err := run(ctx, []string{"-vendor", "zego", "-nats-url", testenv.NATSURL(), "-name", l.Base, "-app", "bad app"}); err == nil {
		t.Fatal("an invalid app name was published")
	}
}
