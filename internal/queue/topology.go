package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology is what Ensure found or created.
type Topology struct {
	// Partitions is P as stored in the meta bucket (never the configured
	// value when the two differ).
	Partitions int
	// Warnings are harmless differences between the configuration and the
	// existing streams that Ensure left alone; the caller logs them.
	Warnings []string
}

// Ensure creates or verifies everything JetStream the worker needs, and is
// safe to run concurrently from every worker at start:
//
//   - the meta bucket and its partitions key (written once; an existing
//     value wins over cfg.Partitions),
//   - one event stream per partition, PartitionStream(p) with subjects
//     <base>.ev.*.<p> (WorkQueue, DiscardNew, limits, Duplicates window),
//   - the dead-letter stream (Limits retention, DLQMaxAge),
//   - one durable pull consumer per lane and partition, on its partition's
//     stream.
//
// An existing stream whose retention, subjects, discard policy or storage
// differ is refused with an error naming every conflict: those cannot be
// changed in place without losing work. So is a stream named StreamBase()
// that captures the event subjects (the one-stream layout of earlier
// builds): its subjects overlap the partition streams'. Limits are only
// ever raised: a configured MaxMsgs, MaxBytes, MaxAge (or DLQ MaxAge)
// above the existing one is applied, one below it is left alone with a
// warning (lowering a limit can drop queued work, so an operator does it
// by hand). The Duplicates window is always set to the configured value,
// and a replica count difference is a warning (scaling is an operator's
// decision). The lease bucket belongs to another package.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (Topology, error) {
	if js == nil {
		return Topology{}, errors.New("queue: ensure: nil JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return Topology{}, fmt.Errorf("queue: ensure: %w", err)
	}
	cfg = cfg.withDefaults()
	l := cfg.Layout
	var topo Topology

	if err := refuseOneStream(ctx, js, l); err != nil {
		return Topology{}, err
	}
	// Look at the streams before the key: the key is written before the
	// first stream is created, so a stream that exists without a key means
	// the key was lost, and P cannot be guessed.
	first, err := streamInfo(ctx, js, l.PartitionStream(0))
	if err != nil {
		return Topology{}, fmt.Errorf("queue: ensure: stream %s: %w", l.PartitionStream(0), err)
	}

	p, warn, err := ensurePartitions(ctx, js, cfg, first)
	if err != nil {
		return Topology{}, err
	}
	topo.Partitions = p
	topo.Warnings = append(topo.Warnings, warn...)

	var streamWarn []string
	for part := range p {
		existing := first
		if part > 0 {
			if existing, err = streamInfo(ctx, js, l.PartitionStream(part)); err != nil {
				return Topology{}, fmt.Errorf("queue: ensure: stream %s: %w", l.PartitionStream(part), err)
			}
		}
		warn, err = ensureStream(ctx, js, existing, eventStreamConfig(cfg, p, part), true)
		if err != nil {
			return Topology{}, err
		}
		streamWarn = append(streamWarn, warn...)
	}
	topo.Warnings = append(topo.Warnings, collapse(streamWarn)...)

	dlqName := jobs.DLQStream(l)
	dlqExisting, err := streamInfo(ctx, js, dlqName)
	if err != nil {
		return Topology{}, fmt.Errorf("queue: ensure: stream %s: %w", dlqName, err)
	}
	warn, err = ensureStream(ctx, js, dlqExisting, dlqStreamConfig(cfg), false)
	if err != nil {
		return Topology{}, err
	}
	topo.Warnings = append(topo.Warnings, warn...)

	for part := range p {
		for _, lane := range lanes {
			if _, err := js.CreateOrUpdateConsumer(ctx, l.PartitionStream(part), consumerConfig(cfg, lane, part)); err != nil {
				return Topology{}, fmt.Errorf("queue: ensure: consumer %s: %w", jobs.ConsumerName(lane, part), err)
			}
		}
	}
	return topo, nil
}

// refuseOneStream fails when a stream named StreamBase() holds the event
// subjects: the layout of earlier builds, one stream for every partition.
// Its subjects overlap the partition streams', so the server would refuse
// to create them anyway; the error says how to move on without losing
// what it holds.
func refuseOneStream(ctx context.Context, js jetstream.JetStream, l event.Layout) error {
	old, err := streamInfo(ctx, js, l.StreamBase())
	if err != nil {
		return fmt.Errorf("queue: ensure: stream %s: %w", l.StreamBase(), err)
	}
	if old == nil || !slices.Contains(old.Config.Subjects, l.Subjects()) {
		return nil
	}
	return fmt.Errorf("queue: ensure: stream %s (%d messages) is the one-stream layout of an earlier friendsync; "+
		"this build keeps each partition in its own stream (%s ...): stop producers, let the old workers drain %s "+
		"to 0 messages, delete it (`nats stream rm %s`), then start this build", l.StreamBase(), old.State.Msgs,
		l.PartitionStream(0), l.StreamBase(), l.StreamBase())
}

// collapse keeps the first of the partition streams' warnings and counts
// the rest: P streams configured alike tend to warn alike.
func collapse(warn []string) []string {
	if len(warn) <= 1 {
		return warn
	}
	return []string{fmt.Sprintf("%s (and %d more like it on other partition streams)", warn[0], len(warn)-1)}
}

// streamInfo returns the stream's info, or nil when it does not exist.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// ensurePartitions reads P from the meta bucket, writing cfg.Partitions
// when the key is absent (Create: the first writer wins).
func ensurePartitions(ctx context.Context, js jetstream.JetStream, cfg Config, stream *jetstream.StreamInfo) (int, []string, error) {
	bucket := cfg.Layout.MetaBucket()
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "friendsync stream-wide settings (partitions)",
			History:     1,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("queue: ensure: meta bucket %s: %w", bucket, err)
	}

	for range 2 {
		entry, err := kv.Get(ctx, event.PartitionsKey)
		if err == nil {
			p, perr := strconv.Atoi(strings.TrimSpace(string(entry.Value())))
			if perr != nil || p < 1 || p > event.MaxPartitions {
				return 0, nil, fmt.Errorf("queue: ensure: meta bucket %s key %s holds %q: want a partition count 1..%d",
					bucket, event.PartitionsKey, entry.Value(), event.MaxPartitions)
			}
			var warn []string
			if p != cfg.Partitions {
				warn = append(warn, fmt.Sprintf("configured partitions %d ignored: the stream uses %d (bucket %s key %s); changing P is a migration",
					cfg.Partitions, p, bucket, event.PartitionsKey))
			}
			return p, warn, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, nil, fmt.Errorf("queue: ensure: meta bucket %s key %s: %w", bucket, event.PartitionsKey, err)
		}
		if stream != nil && (stream.State.Msgs > 0 || stream.State.Consumers > 0) {
			return 0, nil, fmt.Errorf("queue: ensure: stream %s exists (%d messages, %d consumers) but bucket %s has no key %s: "+
				"P cannot be guessed; restore it with `nats kv put %s %s <P>`",
				stream.Config.Name, stream.State.Msgs, stream.State.Consumers, bucket, event.PartitionsKey, bucket, event.PartitionsKey)
		}
		_, err = kv.Create(ctx, event.PartitionsKey, []byte(strconv.Itoa(cfg.Partitions)))
		if err == nil {
			return cfg.Partitions, nil, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, nil, fmt.Errorf("queue: ensure: meta bucket %s: create key %s: %w", bucket, event.PartitionsKey, err)
		}
		// Another worker wrote it first: read theirs.
	}
	return 0, nil, fmt.Errorf("queue: ensure: meta bucket %s key %s: created and vanished", bucket, event.PartitionsKey)
}

// eventStreamConfig is the stream of partition p of P. MaxMsgs and
// MaxBytes bound the whole queue, so each stream gets 1/P of them
// (rounded up).
func eventStreamConfig(cfg Config, partitions, p int) jetstream.StreamConfig {
	share := func(v int64) int64 {
		if unlimited(v) {
			return v
		}
		return (v + int64(partitions) - 1) / int64(partitions)
	}
	return jetstream.StreamConfig{
		Name:        cfg.Layout.PartitionStream(p),
		Description: "friendsync friend-update events, partition " + strconv.Itoa(p),
		Subjects:    []string{cfg.Layout.PartitionSubjects(p)},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     share(cfg.MaxMsgs),
		MaxBytes:    share(cfg.MaxBytes),
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	}
}

func dlqStreamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        jobs.DLQStream(cfg.Layout),
		Description: "friendsync dead letters",
		Subjects:    []string{jobs.DLQPrefix(cfg.Layout) + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      cfg.DLQMaxAge,
		Duplicates:  min(cfg.Duplicates, cfg.DLQMaxAge),
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	}
}

func consumerConfig(cfg Config, lane event.Lane, p int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       jobs.ConsumerName(lane, p),
		Description:   "friendsync " + string(lane) + " partition " + strconv.Itoa(p),
		FilterSubject: cfg.Layout.Subject(lane, p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.serverMaxDeliver(),
		MaxAckPending: cfg.maxAckPending(lane),
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// ensureStream creates want, or verifies an existing stream against it.
// strictDiscard also compares the discard policy (the event stream relies
// on DiscardNew; the DLQ does not care).
func ensureStream(ctx context.Context, js jetstream.JetStream, existing *jetstream.StreamInfo, want jetstream.StreamConfig, strictDiscard bool) ([]string, error) {
	if existing == nil {
		_, err := js.CreateStream(ctx, want)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("queue: ensure: create stream %s: %w", want.Name, err)
		}
		// Created concurrently by another worker: verify theirs.
		existing, err = streamInfo(ctx, js, want.Name)
		if err != nil || existing == nil {
			return nil, fmt.Errorf("queue: ensure: stream %s: created concurrently, then unreadable: %v", want.Name, err)
		}
	}
	have := existing.Config

	var conflicts []string
	if have.Retention != want.Retention {
		conflicts = append(conflicts, fmt.Sprintf("retention %s (want %s)", have.Retention, want.Retention))
	}
	if !sameSet(have.Subjects, want.Subjects) {
		conflicts = append(conflicts, fmt.Sprintf("subjects %v (want %v)", have.Subjects, want.Subjects))
	}
	if strictDiscard && have.Discard != want.Discard {
		conflicts = append(conflicts, fmt.Sprintf("discard %s (want %s)", have.Discard, want.Discard))
	}
	if have.Storage != want.Storage {
		conflicts = append(conflicts, fmt.Sprintf("storage %s (want %s)", have.Storage, want.Storage))
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("queue: ensure: stream %s exists with conflicting settings: %s; "+
			"these cannot change in place (drain the stream and recreate it, or fix the configuration)",
			want.Name, strings.Join(conflicts, ", "))
	}

	var warn []string
	upd := have
	changed := false
	raise := func(name string, haveV, wantV int64, set func(int64), format func(int64) string) {
		if haveV == wantV {
			return
		}
		if unlimited(haveV) || (!unlimited(wantV) && wantV < haveV) {
			warn = append(warn, fmt.Sprintf("stream %s keeps %s %s: the configured %s is lower, and lowering a limit can drop queued messages (change it by hand)",
				want.Name, name, format(haveV), format(wantV)))
			return
		}
		set(wantV)
		changed = true
	}
	count := func(v int64) string {
		if unlimited(v) {
			return "unlimited"
		}
		return strconv.FormatInt(v, 10)
	}
	dur := func(v int64) string {
		if unlimited(v) {
			return "unlimited"
		}
		return time.Duration(v).String()
	}
	raise("max msgs", have.MaxMsgs, want.MaxMsgs, func(v int64) { upd.MaxMsgs = v }, count)
	raise("max bytes", have.MaxBytes, want.MaxBytes, func(v int64) { upd.MaxBytes = v }, count)
	raise("max age", int64(have.MaxAge), int64(want.MaxAge), func(v int64) { upd.MaxAge = time.Duration(v) }, dur)
	dup := want.Duplicates
	if upd.MaxAge > 0 && dup > upd.MaxAge {
		dup = upd.MaxAge
	}
	if have.Duplicates != dup {
		upd.Duplicates = dup
		changed = true
	}
	if have.Replicas != want.Replicas {
		warn = append(warn, fmt.Sprintf("stream %s has %d replicas, configured %d: left alone (scale it by hand)",
			want.Name, have.Replicas, want.Replicas))
	}
	if changed {
		if _, err := js.UpdateStream(ctx, upd); err != nil {
			return warn, fmt.Errorf("queue: ensure: update stream %s limits: %w", want.Name, err)
		}
	}
	return warn, nil
}

// unlimited reports whether a stream limit means "no limit" (0 or -1).
func unlimited(v int64) bool { return v <= 0 }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
