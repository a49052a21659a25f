package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config. A zero field means its default.
const (
	DefaultReplicas          = 1
	DefaultMaxMsgs           = 10_000_000
	DefaultMaxBytes          = 8 << 30 // 8 GiB
	DefaultMaxAge            = 7 * 24 * time.Hour
	DefaultDuplicates        = 30 * time.Minute
	DefaultDLQMaxAge         = 30 * 24 * time.Hour
	DefaultAckWait           = 60 * time.Second
	DefaultMaxDeliver        = 10
	DefaultMaxAckPendingLive = 1000
	DefaultMaxAckPendingBulk = 500
	DefaultFetchBatch        = 16
	DefaultIdleWait          = time.Second
	DefaultMaxHold           = 30 * time.Minute
	DefaultRetryBase         = 2 * time.Second
	DefaultRetryMax          = 5 * time.Minute
	DefaultSweepInterval     = time.Minute
	DefaultLagInterval       = 15 * time.Second
	DefaultDLQTimeout        = 5 * time.Second
)

// Config is the JetStream side of a deployment: the stream, the DLQ, the
// consumers and how a worker pulls and settles. A zero field means the
// default named in its comment.
type Config struct {
	// Layout derives every name (stream, subjects, buckets). Zero: production.
	Layout event.Layout
	// Partitions is P, used only when the stream is created; afterwards P is
	// read from the meta bucket. Zero: event.DefaultPartitions (32).
	Partitions int
	// Replicas of the streams and the meta bucket. Zero: 1.
	Replicas int
	// MaxMsgs, MaxBytes and MaxAge bound the event stream (DiscardNew).
	// Zero: 10,000,000 messages, 8 GiB, 7 days.
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
	// Duplicates is the Nats-Msg-Id window of both streams. Zero: 30 min.
	Duplicates time.Duration
	// DLQMaxAge is how long dead letters are kept. Zero: 30 days.
	DLQMaxAge time.Duration
	// AckWait is the consumers' ack deadline. Zero: 60 s. Held messages get
	// InProgress before it runs out (see HeartbeatInterval).
	AckWait time.Duration
	// MaxDeliver is the number of deliveries a message gets to reach a final
	// outcome; a RetryLater or Released outcome on delivery MaxDeliver is
	// dead-lettered (max_deliver). The server-side MaxDeliver is one more:
	// that spare delivery only happens when the worker holding delivery
	// MaxDeliver died, and is dead-lettered on receipt. Zero: 10.
	MaxDeliver int
	// MaxAckPendingLive and MaxAckPendingBulk cap unsettled messages per
	// consumer of each lane. Zero: 1000 and 500.
	MaxAckPendingLive int
	MaxAckPendingBulk int
	// Storage of the streams and the meta bucket: jetstream.FileStorage (the
	// zero value) in production, MemoryStorage allowed for tests.
	Storage jetstream.StorageType

	// FetchBatch is the number of messages one pull asks for (the prefetch;
	// the AckWait clock starts at delivery). Zero: 16.
	FetchBatch int
	// BulkShare is how many bulk messages a partition pulls per round while
	// live keeps returning full batches. Zero: max(1, FetchBatch/8).
	BulkShare int
	// IdleWait is how long a live pull waits when both lanes are empty (so
	// also the longest a bulk message waits then); it bounds how long
	// StopPartition waits for the intake to end. Zero: 1 s.
	IdleWait time.Duration
	// HeartbeatInterval is how often the held messages are looked at; one
	// whose AckWait clock last started min(AckWait/2, AckWait − 2 ×
	// HeartbeatInterval) ago or more gets InProgress (so a message settled
	// within that time gets none). Zero: AckWait/6, so that with the
	// defaults a message gets InProgress once it is held 30 s, then every
	// 30–40 s. Must be below AckWait.
	HeartbeatInterval time.Duration
	// MaxHold stops heartbeats for a message held longer than this (a lost
	// envelope), so that the server redelivers it. Zero: 30 min.
	MaxHold time.Duration
	// RetryBase and RetryMax shape the NakWithDelay backoff of RetryLater
	// without a Delay: RetryBase·2^(delivered−1), ±50 % jitter, capped at
	// RetryMax. Zero: 2 s and 5 min.
	RetryBase time.Duration
	RetryMax  time.Duration
	// SweepInterval is how often Run looks for stranded messages in the
	// partitions this worker owns. Zero: 1 min.
	SweepInterval time.Duration
	// StrandedAfter is how long a message must sit undelivered in the
	// delivered range of a busy consumer before the sweeper dead-letters
	// it. Zero: 2 × (AckWait + RetryMax).
	StrandedAfter time.Duration
	// LagInterval is how often Run exports consumer lag. Zero: 15 s.
	LagInterval time.Duration
	// DLQTimeout bounds one dead-letter publish (until its PubAck). Zero: 5 s.
	DLQTimeout time.Duration
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = event.DefaultPartitions
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = DefaultReplicas
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultMaxMsgs
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.Duplicates, DefaultDuplicates)
	def(&cfg.DLQMaxAge, DefaultDLQMaxAge)
	def(&cfg.AckWait, DefaultAckWait)
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if cfg.MaxAckPendingLive == 0 {
		cfg.MaxAckPendingLive = DefaultMaxAckPendingLive
	}
	if cfg.MaxAckPendingBulk == 0 {
		cfg.MaxAckPendingBulk = DefaultMaxAckPendingBulk
	}
	if cfg.FetchBatch == 0 {
		cfg.FetchBatch = DefaultFetchBatch
	}
	if cfg.BulkShare == 0 {
		cfg.BulkShare = max(1, cfg.FetchBatch/8)
	}
	def(&cfg.IdleWait, DefaultIdleWait)
	def(&cfg.HeartbeatInterval, cfg.AckWait/6)
	def(&cfg.MaxHold, DefaultMaxHold)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.SweepInterval, DefaultSweepInterval)
	def(&cfg.StrandedAfter, 2*(cfg.AckWait+cfg.RetryMax))
	def(&cfg.LagInterval, DefaultLagInterval)
	def(&cfg.DLQTimeout, DefaultDLQTimeout)
	return cfg
}

// Validate reports every invalid setting (after defaults) in one error.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Partitions < 1 || c.Partitions > event.MaxPartitions {
		bad("partitions %d: want 1..%d", c.Partitions, event.MaxPartitions)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas %d: want 1..5", c.Replicas)
	}
	if c.MaxMsgs < 1 {
		bad("max msgs %d: want > 0", c.MaxMsgs)
	}
	if c.MaxBytes < 1 {
		bad("max bytes %d: want > 0", c.MaxBytes)
	}
	if c.MaxAge < 0 || c.Duplicates < 0 || c.DLQMaxAge < 0 {
		bad("max age, duplicates and dlq max age must not be negative")
	}
	if c.Duplicates > c.MaxAge {
		bad("duplicates window %s exceeds max age %s", c.Duplicates, c.MaxAge)
	}
	if c.AckWait < time.Second {
		bad("ack wait %s: want at least 1s", c.AckWait)
	}
	if c.MaxDeliver < 1 {
		bad("max deliver %d: want at least 1", c.MaxDeliver)
	}
	if c.MaxAckPendingLive < 1 || c.MaxAckPendingBulk < 1 {
		bad("max ack pending (live %d, bulk %d): want at least 1", c.MaxAckPendingLive, c.MaxAckPendingBulk)
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		bad("storage %v: want file or memory", c.Storage)
	}
	if c.FetchBatch < 1 || c.FetchBatch > min(c.MaxAckPendingLive, c.MaxAckPendingBulk) {
		bad("fetch batch %d: want 1..min(max ack pending)", c.FetchBatch)
	}
	if c.BulkShare < 1 || c.BulkShare > c.FetchBatch {
		bad("bulk share %d: want 1..fetch batch (%d)", c.BulkShare, c.FetchBatch)
	}
	if c.IdleWait < 10*time.Millisecond || c.IdleWait > 30*time.Second {
		bad("idle wait %s: want 10ms..30s", c.IdleWait)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.AckWait {
		bad("heartbeat interval %s: want > 0 and below ack wait %s", c.HeartbeatInterval, c.AckWait)
	}
	if c.MaxHold < c.AckWait {
		bad("max hold %s: want at least ack wait %s", c.MaxHold, c.AckWait)
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		bad("retry base %s / max %s: want 0 < base <= max", c.RetryBase, c.RetryMax)
	}
	if c.SweepInterval <= 0 || c.StrandedAfter <= 0 || c.LagInterval <= 0 || c.DLQTimeout <= 0 {
		bad("sweep interval, stranded after, lag interval and dlq timeout must be positive")
	}
	if len(errs) > 0 {
		return fmt.Errorf("queue: config: %w", errors.Join(errs...))
	}
	return nil
}

// beatAfter is how long after its AckWait clock last started a held
// message gets InProgress: half of AckWait, but no more than AckWait less
// two HeartbeatIntervals. A message skipped on one tick (its clock younger
// than beatAfter) is looked at again one interval later, so it gets
// InProgress before its clock is beatAfter + HeartbeatInterval ≤ AckWait −
// HeartbeatInterval old: one interval of margin for a late tick. Zero
// (HeartbeatInterval ≥ AckWait/2): every held message on every tick.
func (cfg Config) beatAfter() time.Duration {
	return max(0, min(cfg.AckWait/2, cfg.AckWait-2*cfg.HeartbeatInterval))
}

// serverMaxDeliver is the consumers' MaxDeliver: one spare delivery beyond
// the application's last, so that a worker killed on the last delivery
// leaves the message to be dead-lettered by the next one.
func (cfg Config) serverMaxDeliver() int { return cfg.MaxDeliver + 1 }

// maxAckPending is the consumer limit of a lane.
func (cfg Config) maxAckPending(lane event.Lane) int {
	if lane == event.LaneBulk {
		return cfg.MaxAckPendingBulk
	}
	return cfg.MaxAckPendingLive
}

// lanes are consumed in this order: live first.
var lanes = [2]event.Lane{event.LaneLive, event.LaneBulk}
