package prooftest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/lease"
)

// Pending sums the unprocessed and unacknowledged messages of every
// consumer (both lanes of every partition) of layout; -1 when one cannot be
// read.
func Pending(ctx context.Context, js jetstream.JetStream, layout event.Layout, partitions int) int {
	n := 0
	for p := range partitions {
		for _, lane := range []event.Lane{event.LaneLive, event.LaneBulk} {
			c, err := js.Consumer(ctx, layout.PartitionStream(p), jobs.ConsumerName(lane, p))
			if err != nil {
				return -1
			}
			info, err := c.Info(ctx)
			if err != nil {
				return -1
			}
			n += int(info.NumPending) + info.NumAckPending
		}
	}
	return n
}

// ReadDLQ reads the whole dead-letter stream of layout, oldest first,
// passing over deleted entries. A missing stream is an error wrapping
// jetstream.ErrStreamNotFound; on a failed read it returns the entries read
// so far and the error.
func ReadDLQ(ctx context.Context, js jetstream.JetStream, layout event.Layout) ([]*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, jobs.DLQStream(layout))
	if err != nil {
		return nil, fmt.Errorf("prooftest: dlq stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("prooftest: dlq stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return out, fmt.Errorf("prooftest: dlq get %d: %w", seq, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// LeaseOwners reads the owner (worker id) of every leased partition of
// layout. On a failed read it returns the owners read so far and the error.
func LeaseOwners(ctx context.Context, js jetstream.JetStream, layout event.Layout, partitions int) (map[int]string, error) {
	kv, err := js.KeyValue(ctx, jobs.LeaseBucket(layout))
	if err != nil {
		return nil, fmt.Errorf("prooftest: lease bucket: %w", err)
	}
	out := map[int]string{}
	for p := range partitions {
		e, err := kv.Get(ctx, lease.PartitionKey(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("prooftest: lease %d: %w", p, err)
		}
		owner, _, _ := strings.Cut(string(e.Value()), "/")
		out[p] = owner
	}
	return out, nil
}

// WaitOwned waits until every partition is leased and each worker in ids
// owns at least one, and returns the owners; it fails t after timeout.
func WaitOwned(t testing.TB, js jetstream.JetStream, layout event.Layout, partitions int, ids []string, timeout time.Duration) map[int]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		owners, err := LeaseOwners(ctx, js, layout, partitions)
		cancel()
		if err == nil && len(owners) == partitions {
			per := map[string]int{}
			for _, o := range owners {
				per[o]++
			}
			ok := true
			for _, id := range ids {
				ok = ok && per[id] > 0
			}
			if ok {
				return owners
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases not spread over %v after %s: %v (err %v)", ids, timeout, owners, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
