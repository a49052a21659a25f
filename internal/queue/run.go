package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// advisoryQueueGroup makes one worker of a layout handle each
// max-deliveries advisory. The subscription's subject is a wildcard shared
// by every deployment on the NATS account, so the group is named by the
// layout: one group would hand an advisory to another deployment's worker,
// which drops it.
func advisoryQueueGroup(l event.Layout) string { return "friendsync-max-deliveries-" + l.StreamBase() }

// maxSweepScan bounds the messages the sweeper reads per consumer and sweep.
const maxSweepScan = 64

// Run does the background work of a Consumer until ctx ends:
//
//   - InProgress every HeartbeatInterval for held messages (up to MaxHold),
//   - the max-deliveries advisory listener (a queue group, so one worker
//     handles each advisory): copy the message to the DLQ (max_deliver) and
//     delete it from the stream,
//   - the stranded-message sweeper for the partitions this worker owns
//     (advisories are not durable),
//   - consumer lag metrics.
//
// It returns nil when ctx ends, or an error if it cannot subscribe. Stop
// the partitions (StopAll) before cancelling Run: without heartbeats, held
// messages are redelivered after AckWait.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("queue: run: already running")
	}
	defer c.running.Store(false)

	// <stream>.<consumer>: a token wildcard cannot select the layout's
	// streams by prefix, so onAdvisory drops the other streams'.
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*"
	advisories := make(chan *nats.Msg, 256)
	sub, err := c.js.Conn().ChanQueueSubscribe(subject, advisoryQueueGroup(c.cfg.Layout), advisories)
	if err != nil {
		return fmt.Errorf("queue: run: subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var wg sync.WaitGroup
	wg.Go(func() { c.every(ctx, c.cfg.HeartbeatInterval, c.heartbeat) })
	wg.Go(func() { c.every(ctx, c.cfg.SweepInterval, c.sweep) })
	wg.Go(func() { c.every(ctx, c.cfg.LagInterval, c.exportLag) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case msg := <-advisories:
				c.onAdvisory(ctx, msg)
			}
		}
	})
	wg.Wait()
	return nil
}

// every runs f every d until ctx ends.
func (c *Consumer) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// heartbeat sends InProgress to every held message whose AckWait clock
// was last started at least beatAfter ago; the others are settled long
// before their deadline in the common case and are looked at again on the
// next tick. A message being settled right now is skipped (TryLock); one
// held beyond MaxHold is left to expire so that the server redelivers it.
func (c *Consumer) heartbeat(ctx context.Context) {
	now := time.Now()
	after := c.cfg.beatAfter()
	for _, pt := range c.partitionList() {
		for _, h := range pt.snapshot() {
			if ctx.Err() != nil {
				return
			}
			if !h.mu.TryLock() {
				continue
			}
			switch {
			case h.settled || h.stale:
			case now.Sub(h.beat) < after:
			case now.Sub(h.received) > c.cfg.MaxHold:
				if !h.overheld {
					h.overheld = true
					c.log.Warn("queue: message held beyond max hold; heartbeats stopped, the server will redeliver it",
						slog.Uint64("stream_seq", h.meta.Seq), slog.Int("partition", h.meta.Partition),
						slog.Duration("held", now.Sub(h.received)))
				}
			default:
				sent := time.Now()
				if err := h.msg.InProgress(); err != nil {
					c.log.Debug("queue: in progress failed", slog.Uint64("stream_seq", h.meta.Seq), slog.Any("error", err))
				} else {
					h.beat = sent
					c.m.incInProgress()
				}
			}
			h.mu.Unlock()
		}
	}
}

// exportLag sums consumer lag over the owned partitions, per lane.
func (c *Consumer) exportLag(ctx context.Context) {
	var pending, ackPending [2]float64
	for _, pt := range c.partitionList() {
		for li, cons := range pt.cons {
			ci, err := cons.Info(ctx)
			if err != nil {
				c.log.Debug("queue: consumer info", slog.Int("partition", pt.p), slog.Any("error", err))
				continue
			}
			pending[li] += float64(ci.NumPending)
			ackPending[li] += float64(ci.NumAckPending)
		}
	}
	for li, lane := range lanes {
		c.m.setLag(lane, pending[li], ackPending[li])
	}
}

// maxDeliverAdvisory is the part of
// io.nats.jetstream.advisory.v1.max_deliver that the safety net reads.
type maxDeliverAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (c *Consumer) onAdvisory(ctx context.Context, msg *nats.Msg) {
	var a maxDeliverAdvisory
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.StreamSeq == 0 {
		c.log.Warn("queue: unreadable max-deliveries advisory", slog.Any("error", err))
		return
	}
	p, ok := c.cfg.Layout.ParsePartitionStream(a.Stream)
	if !ok || p >= c.topo.Partitions {
		return
	}
	detail := fmt.Sprintf("consumer %s gave up after %d deliveries without a settle (max-deliveries advisory)", a.Consumer, a.Deliveries)
	if err := c.rescue(ctx, p, a.StreamSeq, int(a.Deliveries), detail); err != nil {
		c.log.Error("queue: max-deliveries rescue failed; the sweeper retries", slog.Int("partition", p),
			slog.Uint64("stream_seq", a.StreamSeq), slog.Any("error", err))
	}
}

// streamHandle returns the (cached) stream of partition p.
func (c *Consumer) streamHandle(ctx context.Context, p int) (jetstream.Stream, error) {
	c.mu.Lock()
	s := c.streams[p]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := c.js.Stream(ctx, c.cfg.Layout.PartitionStream(p))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.streams[p] = s
	c.mu.Unlock()
	return s, nil
}

// rescue copies message seq of partition p's stream to the DLQ
// (max_deliver) and deletes it. A message already gone is fine (settled,
// or rescued by another worker: the DLQ copy deduplicates by Msg-Id).
func (c *Consumer) rescue(ctx context.Context, p int, seq uint64, delivered int, detail string) error {
	s, err := c.streamHandle(ctx, p)
	if err != nil {
		return fmt.Errorf("queue: rescue partition %d seq %d: %w", p, seq, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: rescue partition %d seq %d: get: %w", p, seq, err)
	}
	meta := jobs.Meta{Stream: c.cfg.Layout.PartitionStream(p), Subject: raw.Subject, Seq: raw.Sequence, Published: raw.Time}
	dl := deadLetter{
		reason: jobs.ReasonMaxDeliver, detail: detail, stream: meta.Stream, subject: raw.Subject, seq: raw.Sequence,
		delivered: delivered, data: raw.Data, eventID: raw.Header.Get(jetstream.MsgIDHeader),
		version: jobs.VersionOf(&event.Event{}, meta),
	}
	if ev, err := event.Decode(raw.Data); err == nil {
		dl.version = jobs.VersionOf(&ev, meta)
		if ev.ID != "" {
			dl.eventID = ev.ID
		}
	}
	if err := c.settler.publishDLQ(dl); err != nil {
		c.m.incDLQError()
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("queue: rescue partition %d seq %d: copied to the DLQ, delete failed: %w", p, seq, err)
	}
	c.m.incDLQ(jobs.ReasonMaxDeliver)
	c.m.incStranded()
	c.log.Warn("queue: dead-lettered a message the consumer gave up on", slog.Int("partition", p), slog.Uint64("stream_seq", seq),
		slog.String("reason", jobs.ReasonMaxDeliver), slog.String("detail", detail))
	return nil
}

// candidate is a message that looked stranded in a sweep.
type candidate struct {
	firstSeen time.Time
	sightings int
	definite  bool // nothing can deliver it again (below the ack floor, or nothing pending)
	sweep     uint64
}

// msgKey names a message: its partition and its sequence in the
// partition's stream.
type msgKey struct {
	p   int
	seq uint64
}

// forget drops k from the candidates: it was just delivered.
func (c *Consumer) forget(k msgKey) {
	c.cmu.Lock()
	delete(c.candidates, k)
	c.cmu.Unlock()
}

// sweep dead-letters stranded messages of the owned partitions: messages
// still in the stream that no consumer will deliver again. On both
// nats-server 2.9.10 and 2.15 a message whose deliveries ran out stays in
// the WorkQueue stream, the consumer drops it from its pending set, and
// the ack floor stays below it (tested in this package). So a message is
// stranded when it is in the stream, at or below the consumer's delivered
// sequence, not held here, and
//
//   - at or below the ack floor, or the consumer has nothing ack-pending
//     (then nothing can redeliver it): seen in two consecutive sweeps;
//   - otherwise (a busy consumer) not delivered for StrandedAfter, longer
//     than any Nak delay or AckWait can keep a pending message waiting.
func (c *Consumer) sweep(ctx context.Context) {
	c.sweeps++ // only the sweep loop touches it
	gen := c.sweeps

	now := time.Now()
	var due []msgKey
	for _, pt := range c.partitionList() {
		s, err := c.streamHandle(ctx, pt.p)
		if err != nil {
			c.log.Debug("queue: sweep: stream", slog.Int("partition", pt.p), slog.Any("error", err))
			continue
		}
		for li, cons := range pt.cons {
			ci, err := cons.Info(ctx)
			if err != nil {
				c.log.Debug("queue: sweep: consumer info", slog.Int("partition", pt.p), slog.Any("error", err))
				continue
			}
			floor, delivered := ci.AckFloor.Stream, ci.Delivered.Stream
			idle := ci.NumAckPending == 0
			filter := c.cfg.Layout.Subject(lanes[li], pt.p)
			seq := uint64(1)
			for range maxSweepScan {
				raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgNotFound) {
						c.log.Debug("queue: sweep: get", slog.Int("partition", pt.p), slog.Any("error", err))
					}
					break
				}
				if raw.Sequence > delivered {
					break // not delivered yet: ordinary backlog
				}
				seq = raw.Sequence + 1
				if pt.holds(raw.Sequence) {
					continue
				}
				definite := raw.Sequence <= floor || idle
				k := msgKey{pt.p, raw.Sequence}
				if c.observe(k, definite, gen, now) {
					due = append(due, k)
				}
				if !definite {
					break // a busy consumer: only the message pinning the floor is worth a look
				}
			}
		}
	}
	// Forget candidates not seen in this sweep (delivered or gone since).
	c.cmu.Lock()
	for k, cd := range c.candidates {
		if cd.sweep != gen {
			delete(c.candidates, k)
		}
	}
	c.cmu.Unlock()

	for _, k := range due {
		if err := c.rescue(ctx, k.p, k.seq, 0, "stranded: in the stream but no longer deliverable by its consumer (sweep)"); err != nil {
			c.log.Error("queue: sweep rescue failed", slog.Int("partition", k.p), slog.Uint64("stream_seq", k.seq), slog.Any("error", err))
			continue
		}
		c.forget(k)
	}
}

// observe records a sighting and reports whether the candidate is due.
func (c *Consumer) observe(k msgKey, definite bool, gen uint64, now time.Time) bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	cd, ok := c.candidates[k]
	if !ok {
		cd = candidate{firstSeen: now}
	}
	cd.sightings++
	cd.definite = definite
	cd.sweep = gen
	c.candidates[k] = cd
	if definite {
		return cd.sightings >= 2
	}
	return now.Sub(cd.firstSeen) >= c.cfg.StrandedAfter
}
