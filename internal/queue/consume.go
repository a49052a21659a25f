package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler takes a decoded, validated event. It must return promptly (the
// AckWait clock of the messages prefetched behind it is running): it hands
// the envelope on and settles it later through env.Settle, exactly once.
// A non-nil error means it could not accept the envelope and env.Settle
// must not be called: the queue releases the message, with Nak while the
// partition is stopping and otherwise with NakWithDelay (RetryLater), so
// that a handler refusing in a loop does not use up MaxDeliver at once.
// Prefer blocking (honouring ctx) for backpressure.
type Handler interface {
	Handle(ctx context.Context, env *jobs.Envelope) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, env *jobs.Envelope) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, env *jobs.Envelope) error { return f(ctx, env) }

// Validator checks an event against what the worker knows (its app exists,
// the vendor's limits). A non-nil error dead-letters the event (invalid).
// Event.Validate has already passed when it runs.
type Validator func(ev *event.Event) error

// Consumer pulls the partitions this worker owns, turns messages into
// envelopes for the Handler and settles them. Create it with NewConsumer,
// start Run in the background, then StartPartition / StopPartition as
// leases come and go.
type Consumer struct {
	js       jetstream.JetStream
	cfg      Config
	topo     Topology
	workerID string
	validate Validator
	h        Handler
	log      *slog.Logger
	m        *Metrics
	settler  *settler
	running  atomic.Bool

	mu      sync.Mutex
	parts   map[int]*partition
	streams map[int]jetstream.Stream // cached partition stream handles for GetMsg/DeleteMsg

	cmu        sync.Mutex
	candidates map[msgKey]candidate // stranded-message candidates
	sweeps     uint64               // sweep generation (sweep loop only)
}

// partition is the intake and the held messages of one owned partition.
type partition struct {
	p      int
	cons   [2]jetstream.Consumer // by lane: live, bulk
	cancel context.CancelFunc    // stops intake
	done   chan struct{}         // closed when intake has returned

	mu      sync.Mutex
	held    map[uint64]*held // by sequence in the partition's stream
	perLane [2]int           // held by the consumer (lanes index) that delivered them
	drained chan struct{}    // non-nil while StopPartition waits; closed when held is empty
	freed   chan struct{}    // buffer 1: signalled when a release makes room (poll at a full window waits on it)
}

// NewConsumer builds a Consumer for the topology Ensure returned. workerID
// goes into dead letters; validate may be nil (Event.Validate only); a nil
// logger discards, nil metrics record nothing.
func NewConsumer(js jetstream.JetStream, cfg Config, topo Topology, workerID string, validate Validator, h Handler, logger *slog.Logger, m *Metrics) (*Consumer, error) {
	switch {
	case js == nil:
		return nil, errors.New("queue: new consumer: nil JetStream")
	case h == nil:
		return nil, errors.New("queue: new consumer: nil handler")
	case workerID == "":
		return nil, errors.New("queue: new consumer: empty worker id")
	case topo.Partitions < 1 || topo.Partitions > event.MaxPartitions:
		return nil, fmt.Errorf("queue: new consumer: topology has %d partitions: run Ensure first", topo.Partitions)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("queue: new consumer: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{
		js: js, cfg: cfg, topo: topo, workerID: workerID, validate: validate, h: h, log: logger, m: m,
		parts:      make(map[int]*partition),
		streams:    make(map[int]jetstream.Stream),
		candidates: make(map[msgKey]candidate),
	}
	c.settler = &settler{
		layout: cfg.Layout, workerID: workerID, pub: js, cfg: cfg, log: logger, m: m,
		now: time.Now, rand: newRand(),
	}
	return c, nil
}

// StartPartition starts consuming both lanes of partition p: live first,
// bulk while live is idle or with a small share (BulkShare per round)
// while live keeps returning full batches. ctx bounds the setup only; the
// intake runs until StopPartition.
func (c *Consumer) StartPartition(ctx context.Context, p int) error {
	if p < 0 || p >= c.topo.Partitions {
		return fmt.Errorf("queue: start partition %d: want 0..%d", p, c.topo.Partitions-1)
	}
	c.mu.Lock()
	_, busy := c.parts[p]
	c.mu.Unlock()
	if busy {
		return fmt.Errorf("queue: start partition %d: already started", p)
	}
	pt := &partition{p: p, held: make(map[uint64]*held), done: make(chan struct{}), freed: make(chan struct{}, 1)}
	for i, lane := range lanes {
		// CreateOrUpdate is idempotent and repairs a deleted consumer.
		cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Layout.PartitionStream(p), consumerConfig(c.cfg, lane, p))
		if err != nil {
			return fmt.Errorf("queue: start partition %d: consumer %s: %w", p, jobs.ConsumerName(lane, p), err)
		}
		pt.cons[i] = cons
	}
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pt.cancel = cancel
	c.mu.Lock()
	if _, busy := c.parts[p]; busy {
		c.mu.Unlock()
		cancel()
		return fmt.Errorf("queue: start partition %d: already started", p)
	}
	c.parts[p] = pt
	c.mu.Unlock()
	go c.intake(ictx, pt) // ends at StopPartition, which waits for it
	c.log.Info("queue: partition started", slog.Int("partition", p))
	return nil
}

// StopPartition stops intake of p, waits until every message of p this
// worker holds is settled (ctx bounds the wait), then releases (Nak) the
// rest; a later Settle of a released envelope is a no-op. Stopping a
// partition that is not started is a no-op.
func (c *Consumer) StopPartition(ctx context.Context, p int) error {
	c.mu.Lock()
	pt := c.parts[p]
	c.mu.Unlock()
	if pt == nil {
		return nil
	}
	pt.cancel()
	var errs []error
	select {
	case <-pt.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("queue: stop partition %d: intake still running: %w", p, ctx.Err()))
	}

	pt.mu.Lock()
	pt.drained = make(chan struct{})
	if len(pt.held) == 0 {
		close(pt.drained)
	}
	drained := pt.drained
	pt.mu.Unlock()
	select {
	case <-drained:
	case <-ctx.Done():
	}

	pt.mu.Lock()
	left := make([]*held, 0, len(pt.held))
	for _, h := range pt.held {
		left = append(left, h)
	}
	pt.mu.Unlock()
	slices.SortFunc(left, func(a, b *held) int { return cmp.Compare(a.meta.Seq, b.meta.Seq) })
	for _, h := range left {
		c.settler.settle(h, jobs.Outcome{Kind: jobs.Released, Reason: "partition " + strconv.Itoa(p) + " stopped"}, true)
	}

	c.mu.Lock()
	if c.parts[p] == pt {
		delete(c.parts, p)
	}
	c.mu.Unlock()
	c.log.Info("queue: partition stopped", slog.Int("partition", p), slog.Int("released", len(left)))
	return errors.Join(errs...)
}

// StopAll stops every started partition (see StopPartition).
func (c *Consumer) StopAll(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, p := range c.Partitions() {
		wg.Go(func() {
			if err := c.StopPartition(ctx, p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Partitions lists the started partitions in order.
func (c *Consumer) Partitions() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]int, 0, len(c.parts))
	for p := range c.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// intake pulls p until ctx ends. Live first: a round pulls live without
// waiting; bulk gets a full batch when live returned less than a full one
// and BulkShare messages otherwise; when both are empty it long-polls live
// for IdleWait. While live delivers and the last bulk pull came back
// empty, bulk is asked again only after bulkRecheck (an empty pull per
// round and partition cost the server a request, a reply and an inbox
// each time). Pulls are never cancelled mid-flight (a cancelled pull can
// strand delivered messages until AckWait), so stopping takes up to
// IdleWait.
func (c *Consumer) intake(ctx context.Context, pt *partition) {
	defer close(pt.done)
	var bulkEmpty time.Time // when a bulk pull last came back empty; zero: it did not
	for ctx.Err() == nil {
		n := c.pull(ctx, pt, 0, c.cfg.FetchBatch)
		if ctx.Err() != nil {
			return
		}
		if n > 0 && !bulkEmpty.IsZero() && time.Since(bulkEmpty) < bulkRecheck {
			continue
		}
		share := c.cfg.FetchBatch
		if n >= c.cfg.FetchBatch {
			share = c.cfg.BulkShare
		}
		m := c.pull(ctx, pt, 1, share)
		bulkEmpty = time.Time{}
		if m == 0 {
			bulkEmpty = time.Now()
		}
		if n > 0 || m > 0 || ctx.Err() != nil {
			continue
		}
		c.poll(ctx, pt)
	}
}

// bulkRecheck is how long a busy live lane skips an empty bulk lane, and
// so the longest a bulk message arriving then waits for its first pull.
// Bulk is backfill; live latency is unaffected. In fsbench's throughput
// measurement the empty pulls cost 1.18x in events/s (docs/BENCHMARKS.md).
const bulkRecheck = 100 * time.Millisecond

// pull fetches up to batch messages of one lane without waiting and
// dispatches them; it returns how many arrived. It asks for no more than
// the lane's MaxAckPending leaves room for: a no-wait pull on a consumer
// at its MaxAckPending parks at the server (2.9) without an expiry, the
// client gives up on it after a second, and once acks make room the
// server delivers to the abandoned inbox, stranding those messages until
// AckWait (seen in the fsbench throughput and batching runs).
func (c *Consumer) pull(ctx context.Context, pt *partition, li, batch int) int {
	room := c.cfg.maxAckPending(lanes[li]) - pt.heldIn(li)
	if room <= 0 {
		return 0
	}
	asked := time.Now() // no message of this pull was delivered before
	b, err := pt.cons[li].FetchNoWait(min(batch, room))
	if err != nil {
		c.pullFailed(ctx, pt, li, err)
		return 0
	}
	n := 0
	for msg := range b.Messages() {
		n++
		c.receive(ctx, pt, lanes[li], msg, asked)
	}
	if err := b.Error(); err != nil {
		c.log.Debug("queue: pull ended", slog.Int("partition", pt.p), slog.String("lane", string(lanes[li])), slog.Any("error", err))
	}
	return n
}

// poll long-polls the live lane for up to IdleWait, dispatching messages
// as they arrive. Bulk is not long-polled: a bulk message that arrives
// while both lanes were idle waits at most IdleWait, and a live message
// never waits behind a bulk pull. Like pull it asks for no more than the
// live window leaves room for; with no room it waits (IdleWait at most)
// until a settle makes some.
func (c *Consumer) poll(ctx context.Context, pt *partition) {
	room := c.cfg.maxAckPending(lanes[0]) - pt.heldIn(0)
	if room <= 0 {
		t := time.NewTimer(c.cfg.IdleWait)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-pt.freed:
		}
		return
	}
	asked := time.Now()
	b, err := pt.cons[0].Fetch(min(c.cfg.FetchBatch, room), jetstream.FetchMaxWait(c.cfg.IdleWait))
	if err != nil {
		c.pullFailed(ctx, pt, 0, err)
		return
	}
	for msg := range b.Messages() {
		c.receive(ctx, pt, lanes[0], msg, asked)
	}
	if err := b.Error(); err != nil {
		c.log.Debug("queue: poll ended", slog.Int("partition", pt.p), slog.Any("error", err))
	}
}

// pullFailed logs a failed pull and waits IdleWait (or until ctx ends) so
// that a broken connection does not spin.
func (c *Consumer) pullFailed(ctx context.Context, pt *partition, li int, err error) {
	c.log.Warn("queue: pull failed", slog.Int("partition", pt.p), slog.String("lane", string(lanes[li])), slog.Any("error", err))
	t := time.NewTimer(c.cfg.IdleWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// receive turns one delivery into an envelope for the handler, or settles
// it at once (invalid, spare delivery, partition stopping). asked is when
// the pull that delivered msg was sent: its AckWait clock started later.
func (c *Consumer) receive(ctx context.Context, pt *partition, lane event.Lane, msg jetstream.Msg, asked time.Time) {
	c.m.incReceived(lane)
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to settle against.
		c.log.Error("queue: message without metadata", slog.Int("partition", pt.p), slog.Any("error", err))
		return
	}
	meta := jobs.Meta{
		Stream:     md.Stream,
		Subject:    msg.Subject(),
		Seq:        md.Sequence.Stream,
		Published:  md.Timestamp,
		Delivered:  int(md.NumDelivered),
		MaxDeliver: c.cfg.MaxDeliver,
		Lane:       lane,
		Partition:  pt.p,
		MsgID:      msg.Headers().Get(jetstream.MsgIDHeader),
		Pending:    md.NumPending,
	}
	subjLane, subjPart, subjOK := c.cfg.Layout.ParseSubject(meta.Subject)
	if subjOK {
		meta.Lane, meta.Partition = subjLane, subjPart
	}
	h := &held{msg: msg, meta: meta, eventID: meta.MsgID, received: time.Now(), beat: asked, release: pt.release}
	if lane == event.LaneBulk {
		h.li = 1
	}
	ev, derr := event.Decode(msg.Data())
	if derr == nil {
		if ev.ID != "" {
			h.eventID = ev.ID
		}
		h.version = jobs.VersionOf(&ev, meta)
	} else {
		h.version = jobs.VersionOf(&event.Event{}, meta)
	}
	// From here on heartbeats and StopPartition see h: no more writes.
	pt.hold(h)
	c.forget(msgKey{pt.p, meta.Seq})

	settle := func(o jobs.Outcome) { c.settler.settle(h, o, false) }
	// A partition that is stopping may still have a pull open (pulls are
	// not cancelled): a bare Nak would redeliver the message into that same
	// pull at once, round and round until MaxDeliver dead-letters it. The
	// delay outlasts any open pull (IdleWait), so the next owner gets it.
	stopping := func(reason string) {
		settle(jobs.Outcome{Kind: jobs.Released, Reason: reason, Delay: c.cfg.IdleWait})
	}
	if ctx.Err() != nil {
		stopping("partition stopping")
		return
	}
	if meta.Delivered > c.cfg.MaxDeliver {
		// The spare delivery: whoever held the last one died.
		settle(jobs.Outcome{Kind: jobs.Released,
			Reason: "the worker holding the last delivery did not settle it (spare delivery " + strconv.Itoa(meta.Delivered) + ")"})
		return
	}
	if !subjOK || subjPart != pt.p || subjLane != lane {
		settle(jobs.Outcome{Kind: jobs.Invalid, Reason: "subject " + meta.Subject + " is not this consumer's"})
		return
	}
	if derr != nil {
		settle(jobs.Outcome{Kind: jobs.Invalid, Reason: derr.Error()})
		return
	}
	if err := c.check(&ev, subjPart); err != nil {
		settle(jobs.Outcome{Kind: jobs.Invalid, Reason: err.Error()})
		return
	}
	env := &jobs.Envelope{Event: ev, Meta: meta, Version: h.version, Settle: settle}
	if err := c.h.Handle(ctx, env); err != nil {
		h.mu.Lock()
		done := h.settled
		h.mu.Unlock()
		switch {
		case done:
		case ctx.Err() != nil:
			stopping("partition stopping: " + err.Error())
		default:
			// Not a bare Nak: a handler that keeps refusing would use up
			// MaxDeliver in milliseconds (PRIOR-ART.md pitfall 5).
			settle(jobs.Outcome{Kind: jobs.RetryLater, Reason: "handler refused: " + err.Error()})
		}
	}
}

// check validates an event: the contract, the worker's rules, and that it
// sits in the partition its key hashes to (one owner per account).
func (c *Consumer) check(ev *event.Event, p int) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if c.validate != nil {
		if err := c.validate(ev); err != nil {
			return err
		}
	}
	if want := event.Partition(ev.App, ev.From, c.topo.Partitions); want != p {
		return fmt.Errorf("event hashes to partition %d of %d but was published to partition %d (publisher uses another partition count?)",
			want, c.topo.Partitions, p)
	}
	return nil
}

// hold registers h; a held delivery of the same sequence is replaced (its
// AckWait ran out without heartbeats, so the server redelivered it).
func (pt *partition) hold(h *held) {
	pt.mu.Lock()
	old := pt.held[h.meta.Seq]
	pt.held[h.meta.Seq] = h
	pt.perLane[h.li]++
	if old != nil {
		pt.perLane[old.li]--
	}
	pt.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		old.stale = true
		old.mu.Unlock()
	}
}

// release removes a settled h from the held set.
func (pt *partition) release(h *held) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.held[h.meta.Seq] == h {
		delete(pt.held, h.meta.Seq)
		pt.perLane[h.li]--
		select {
		case pt.freed <- struct{}{}:
		default:
		}
	}
	if pt.drained != nil && len(pt.held) == 0 {
		select {
		case <-pt.drained:
		default:
			close(pt.drained)
		}
	}
}

// heldIn is how many held messages the consumer of lanes[li] delivered.
func (pt *partition) heldIn(li int) int {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.perLane[li]
}

// snapshot returns the held messages.
func (pt *partition) snapshot() []*held {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	hs := make([]*held, 0, len(pt.held))
	for _, h := range pt.held {
		hs = append(hs, h)
	}
	return hs
}

// holds reports whether seq is held.
func (pt *partition) holds(seq uint64) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	_, ok := pt.held[seq]
	return ok
}

func (c *Consumer) partitionList() []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]*partition, 0, len(c.parts))
	for _, pt := range c.parts {
		ps = append(ps, pt)
	}
	slices.SortFunc(ps, func(a, b *partition) int { return a.p - b.p })
	return ps
}
