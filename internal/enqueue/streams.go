package enqueue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/producer"
)

// The events of partition p live in their own stream, PartitionStream(p)
// (FRIENDSYNC_P7), which a worker creates with 1/P of the queue's limits.
// enqueue never creates streams: it checks they are there, sends every
// message with Nats-Expected-Stream naming its partition's stream, and
// watches their fill levels.

// listPartitions returns, in one stream-list request (paged by the
// server beyond 256 streams), the info of every stream that captures the
// layout's event subjects: the partition streams by partition, and the
// stream named StreamBase() when the one-stream layout of an earlier build
// is still there (nil otherwise). Listing by subject rather than asking
// for each name keeps a check of P streams at one round trip.
func listPartitions(ctx context.Context, js jetstream.JetStream, l event.Layout) (map[int]*jetstream.StreamInfo, *jetstream.StreamInfo, error) {
	parts := map[int]*jetstream.StreamInfo{}
	var old *jetstream.StreamInfo
	list := js.ListStreams(ctx, jetstream.WithStreamListSubject(l.Subjects()))
	for si := range list.Info() {
		if p, ok := l.ParsePartitionStream(si.Config.Name); ok {
			parts[p] = si
		} else if si.Config.Name == l.StreamBase() {
			old = si
		}
	}
	if err := list.Err(); err != nil {
		return nil, nil, fmt.Errorf("list the streams of %s: %w", l.Subjects(), err)
	}
	return parts, old, nil
}

// partitionInfos returns the infos of partition streams 0..partitions-1
// that exist, in partition order; none at all is an error.
func partitionInfos(ctx context.Context, js jetstream.JetStream, l event.Layout, partitions int) ([]*jetstream.StreamInfo, error) {
	parts, _, err := listPartitions(ctx, js, l)
	if err != nil {
		return nil, err
	}
	infos := make([]*jetstream.StreamInfo, 0, partitions)
	for p := range partitions {
		if si := parts[p]; si != nil {
			infos = append(infos, si)
		}
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("no stream %s found", streamRange(l, partitions))
	}
	return infos, nil
}

// openPartitions checks that the queue a worker creates is there: the
// meta bucket's partition count P and all P partition streams. It returns
// P and the streams' infos in partition order. A missing stream is
// ExitNATS with the advice to start a worker, as for the DLQ stream; so is
// the one-stream layout of an earlier build, which a worker of this build
// refuses with migration instructions.
func openPartitions(ctx context.Context, js jetstream.JetStream, l event.Layout, timeout time.Duration) (int, []*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	parts, old, err := listPartitions(ctx, js, l)
	if err != nil {
		return 0, nil, fail(ExitNATS, "%w", err)
	}
	if old != nil && len(parts) == 0 {
		return 0, nil, fail(ExitNATS, "stream %s (%d messages) is the one-stream layout of an earlier friendsync, and stream %s is missing: "+
			"this build publishes to one stream per partition; start a worker of this build, which says how to migrate",
			old.Config.Name, old.State.Msgs, l.PartitionStream(0))
	}
	if len(parts) == 0 {
		return 0, nil, missingStream(l.PartitionStream(0))
	}
	partitions, err := producer.ReadPartitions(ctx, js, l)
	if err != nil {
		return 0, nil, fail(ExitNATS, "%w", err)
	}
	infos := make([]*jetstream.StreamInfo, partitions)
	for p := range partitions {
		if infos[p] = parts[p]; infos[p] == nil {
			return 0, nil, missingStream(l.PartitionStream(p))
		}
	}
	return partitions, infos, nil
}

// missingStream says who creates a stream that is not there.
func missingStream(name string) error {
	return fail(ExitNATS, "stream %s not found: start a worker first (it creates the streams), or check -name", name)
}

// streamRange names the partition streams for people: FRIENDSYNC_P0..P31,
// or FRIENDSYNC_P* when P is unknown (0), as in a dry run without NATS.
func streamRange(l event.Layout, partitions int) string {
	switch partitions {
	case 0:
		return l.StreamBase() + "_P*"
	case 1:
		return l.PartitionStream(0)
	}
	return l.PartitionStream(0) + "..P" + strconv.Itoa(partitions-1)
}

// configs are the configurations of infos.
func configs(infos []*jetstream.StreamInfo) []jetstream.StreamConfig {
	out := make([]jetstream.StreamConfig, 0, len(infos))
	for _, si := range infos {
		out = append(out, si.Config)
	}
	return out
}
