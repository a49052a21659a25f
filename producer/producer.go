package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
)

// ErrUnknownApp is returned for an event whose app has no Rules.
var ErrUnknownApp = errors.New("unknown app")

// Config configures a Producer.
type Config struct {
	// Layout names the stream; the zero value is the production layout.
	Layout event.Layout
	// Apps holds the validation rules per app name. An event for an app not
	// listed is rejected with ErrUnknownApp. Required.
	Apps map[string]event.Rules
	// MaxPending bounds asynchronous publishes awaiting their ack;
	// PublishAsync blocks while it is reached. Default 4096.
	MaxPending int
	// Timeout bounds one synchronous publish. Default 5s.
	Timeout time.Duration
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Apps) == 0 {
		return errors.New("producer: config: Apps is empty: name the apps this producer may publish for")
	}
	for name, r := range c.Apps {
		if !r.Vendor.Valid() {
			return fmt.Errorf("producer: config: app %q: unknown vendor %q", name, r.Vendor)
		}
	}
	if c.MaxPending < 0 || c.Timeout < 0 {
		return errors.New("producer: config: MaxPending and Timeout must be ≥ 0")
	}
	return nil
}

func (c *Config) withDefaults() {
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
}

// Producer publishes events. It is safe for concurrent use.
type Producer struct {
	cfg        Config
	js         jetstream.JetStream
	partitions int

	mu       sync.Mutex
	asyncErr error
	failed   int
}

// New connects a producer to the stream on nc: it reads P from the meta
// bucket, so the stream must exist (a worker creates it at start).
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	p := &Producer{cfg: cfg}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncErrHandler(p.recordAsyncErr),
	)
	if err != nil {
		return nil, fmt.Errorf("producer: jetstream: %w", err)
	}
	p.js = js
	if p.partitions, err = ReadPartitions(ctx, js, cfg.Layout); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadPartitions reads P from the layout's meta bucket.
func ReadPartitions(ctx context.Context, js jetstream.JetStream, l event.Layout) (int, error) {
	kv, err := js.KeyValue(ctx, l.MetaBucket())
	if err != nil {
		return 0, fmt.Errorf("producer: meta bucket %s: %w (has a worker created the stream yet?)", l.MetaBucket(), err)
	}
	e, err := kv.Get(ctx, event.PartitionsKey)
	if err != nil {
		return 0, fmt.Errorf("producer: read %s/%s: %w", l.MetaBucket(), event.PartitionsKey, err)
	}
	n, err := strconv.Atoi(string(e.Value()))
	if err != nil || n < 1 || n > event.MaxPartitions {
		return 0, fmt.Errorf("producer: %s/%s holds %q, not a partition count", l.MetaBucket(), event.PartitionsKey, e.Value())
	}
	return n, nil
}

// Partitions is the stream's partition count P.
func (p *Producer) Partitions() int { return p.partitions }

// Option adjusts one publish.
type Option func(*publishOpts)

type publishOpts struct {
	lane  event.Lane
	msgID string
}

// WithLane publishes on lane (default live). Backfills use event.LaneBulk.
func WithLane(l event.Lane) Option { return func(o *publishOpts) { o.lane = l } }

// WithMsgID sets Nats-Msg-Id instead of the event id (enqueue uses ids
// derived from the input file and line, so a re-run deduplicates).
func WithMsgID(id string) Option { return func(o *publishOpts) { o.msgID = id } }

// Prepare validates ev for its app, fills a random id (UUIDv7) when it has
// none, and returns the message to publish. Publish and PublishAsync call
// it; it is exported for callers that batch messages themselves.
func (p *Producer) Prepare(ev *event.Event, opts ...Option) (*nats.Msg, error) {
	o := publishOpts{lane: event.LaneLive}
	for _, f := range opts {
		f(&o)
	}
	if !o.lane.Valid() {
		return nil, fmt.Errorf("producer: unknown lane %q", o.lane)
	}
	rules, ok := p.cfg.Apps[ev.App]
	if !ok {
		return nil, fmt.Errorf("producer: app %q: %w", ev.App, ErrUnknownApp)
	}
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("producer: generate id: %w", err)
		}
		ev.ID = id.String()
	}
	if err := ev.ValidateFor(rules); err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	data, err := event.Encode(ev)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	msgID := o.msgID
	if msgID == "" {
		msgID = ev.ID
	}
	part := event.Partition(ev.App, ev.From, p.partitions)
	m := nats.NewMsg(p.cfg.Layout.Subject(o.lane, part))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(jetstream.ExpectedStreamHeader, p.cfg.Layout.PartitionStream(part))
	return m, nil
}

// Publish validates and publishes ev, waiting for the stream's ack. A
// duplicate (same id within the stream's window) is not an error: the
// returned ack has Duplicate set.
func (p *Producer) Publish(ctx context.Context, ev *event.Event, opts ...Option) (*jetstream.PubAck, error) {
	m, err := p.Prepare(ev, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("producer: publish %s: %w", m.Subject, err)
	}
	return ack, nil
}

// PublishAsync validates ev and publishes it without waiting; it blocks
// while MaxPending acks are outstanding. Check the future, or call Flush,
// which reports every failed ack.
func (p *Producer) PublishAsync(ev *event.Event, opts ...Option) (jetstream.PubAckFuture, error) {
	m, err := p.Prepare(ev, opts...)
	if err != nil {
		return nil, err
	}
	return p.PublishMsgAsync(m)
}

// PublishMsgAsync publishes a message made by Prepare.
func (p *Producer) PublishMsgAsync(m *nats.Msg) (jetstream.PubAckFuture, error) {
	f, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(p.cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("producer: publish async %s: %w", m.Subject, err)
	}
	return f, nil
}

func (p *Producer) recordAsyncErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed++
	if p.asyncErr == nil {
		p.asyncErr = fmt.Errorf("producer: async publish %s (msg id %s): %w", m.Subject, m.Header.Get(jetstream.MsgIDHeader), err)
	}
}

// Flush waits until every asynchronous publish is acknowledged or ctx
// ends, and reports how many failed since the last Flush (with the first
// error).
func (p *Producer) Flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("producer: flush: %d publishes still pending: %w", p.js.PublishAsyncPending(), ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err, n := p.asyncErr, p.failed
	p.asyncErr, p.failed = nil, 0
	if err != nil {
		return fmt.Errorf("%d async publishes failed; first: %w", n, err)
	}
	return nil
}

// Pending is the number of asynchronous publishes awaiting their ack.
func (p *Producer) Pending() int { return p.js.PublishAsyncPending() }
