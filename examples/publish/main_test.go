package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// TestExamplePublishes runs the example against partition streams made
// the way a worker makes them, on the machine's NATS.
func TestExamplePublishes(t *testing.T) {
	_, js := testenv.JetStream(t)
	l := event.Layout{Base: strings.ToLower(testenv.Unique("example"))}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const partitions = 4
	testenv.PartitionStreams(t, js, l, partitions)

	if err := run(ctx, []string{"-nats-url", testenv.NATSURL(), "-name", l.Base, "-rate", "500", "-count", "20"}); err != nil {
		t.Fatal(err)
	}
	var msgs, live uint64
	for p := range partitions {
		s, err := js.Stream(ctx, l.PartitionStream(p))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(l.Subject(event.LaneLive, p)))
		if err != nil {
			t.Fatal(err)
		}
		msgs += info.State.Msgs
		for _, n := range info.State.Subjects {
			live += n
		}
	}
	if msgs != 20 || live != 20 {
		t.Fatalf("partition streams hold %d messages, %d on live subjects, want 20", msgs, live)
	}
	if err := run(ctx, []string{"-vendor", "zego", "-nats-url", testenv.NATSURL(), "-name", l.Base, "-app", "bad app"}); err == nil {
		t.Fatal("an invalid app name was published")
	}
}
