package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/producer"
)

// publisher publishes a workload paced over a window, one event at a time
// and waiting for each ack (so publish times follow publish order),
// retrying a failed publish with the same event id while NATS is away:
// the partition stream's deduplication keeps one copy.
type publisher struct {
	prod   *producer.Producer
	js     jetstream.JetStream
	layout event.Layout
	start  time.Time
}

// newProducer waits until a worker has created the partition streams and
// the meta bucket, then returns a producer for them.
func newProducer(ctx context.Context, nc *nats.Conn, layout event.Layout, apps map[string]event.Rules, timeout time.Duration) (*producer.Producer, error) {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		p, err := producer.New(pctx, nc, producer.Config{Layout: layout, Apps: apps, Timeout: 3 * time.Second})
		cancel()
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("chaos: producer: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run publishes the paced events (all but the burst), the i-th of n at
// about start + window·i/n. It returns when every one is published or ctx
// ends.
func (pb *publisher) run(ctx context.Context, w *workload, window time.Duration) error {
	n := 0
	for i := range w.events {
		if !w.events[i].burst {
			n++
		}
	}
	k := 0
	for i := range w.events {
		if w.events[i].burst {
			continue
		}
		at := pb.start.Add(window * time.Duration(k) / time.Duration(n))
		k++
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		if err := pb.publish(ctx, &w.events[i]); err != nil {
			return err
		}
	}
	return nil
}

// publish publishes one event until the stream acknowledges it.
func (pb *publisher) publish(ctx context.Context, p *planned) error {
	for {
		p.attempts++
		var ack *jetstream.PubAck
		var err error
		if p.raw != nil {
			m := nats.NewMsg(pb.layout.SubjectFor(&p.ev, p.lane, pb.prod.Partitions()))
			m.Data = p.raw
			m.Header.Set(jetstream.MsgIDHeader, p.ev.ID)
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			ack, err = pb.js.PublishMsg(pctx, m)
			cancel()
		} else {
			ack, err = pb.prod.Publish(ctx, &p.ev, producer.WithLane(p.lane))
		}
		if err == nil {
			p.published, p.seq, p.pubAt = true, ack.Sequence, time.Since(pb.start)
			return nil
		}
		if errors.Is(err, event.ErrInvalid) || errors.Is(err, producer.ErrUnknownApp) {
			return fmt.Errorf("chaos: publish %s: %w", p.ev.ID, err) // a workload bug, not an outage
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: publish %s: %w", p.ev.ID, ctx.Err())
		case <-time.After(200 * time.Millisecond): // NATS away: retry, same id
		}
	}
}

// burst publishes the burst events asynchronously, all at once, then
// publishes again (synchronously, same id) every one whose ack failed.
func (pb *publisher) burst(ctx context.Context, w *workload) error {
	type sent struct {
		p   *planned
		fut jetstream.PubAckFuture
	}
	var all []sent
	for i := range w.events {
		p := &w.events[i]
		if !p.burst {
			continue
		}
		p.attempts++
		fut, err := pb.prod.PublishAsync(&p.ev, producer.WithLane(p.lane))
		if err != nil {
			fut = nil // published again below
		}
		all = append(all, sent{p, fut})
	}
	for _, s := range all {
		if s.fut != nil {
			select {
			case ack := <-s.fut.Ok():
				s.p.published, s.p.seq, s.p.pubAt = true, ack.Sequence, time.Since(pb.start)
				continue
			case <-s.fut.Err():
			case <-time.After(10 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := pb.publish(ctx, s.p); err != nil {
			return err
		}
	}
	return nil
}
