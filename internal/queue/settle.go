package queue

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// held is one delivered message this worker has not settled yet. Its
// mutex serializes the settle with InProgress heartbeats.
type held struct {
	msg      jetstream.Msg
	meta     jobs.Meta
	eventID  string
	version  jobs.Version
	received time.Time
	li       int // index in lanes of the consumer that delivered it
	// release removes the message from its partition's held set (nil in
	// unit tests).
	release func(*held)

	mu       sync.Mutex
	settled  bool
	first    jobs.Kind // the first settle's outcome, for double-settle logs
	byStop   bool      // released by StopPartition, not by the pipeline
	stale    bool      // a newer delivery of the same sequence replaced it
	overheld bool      // held longer than MaxHold: heartbeats stopped
	// beat is no later than the server last started the message's AckWait
	// clock: when the pull that delivered it was sent, then when its
	// latest InProgress was sent.
	beat time.Time
}

// actionKind is what settling does to the message.
type actionKind int

const (
	doAck      actionKind = iota + 1 // Ack
	doNak                            // Nak, redeliver at once
	doNakDelay                       // NakWithDelay(delay)
	doDLQ                            // DLQ copy (PubAck awaited), then Term
)

// action is the decision of the settle switch.
type action struct {
	kind   actionKind
	delay  time.Duration // doNakDelay
	reason string        // doDLQ: jobs.Reason*
	detail string        // doDLQ: human-readable cause
}

// decide is THE settle table (DESIGN.md): the one place that maps an
// outcome to what happens to the message.
//
//	applied, superseded                 → Ack
//	invalid                             → DLQ(invalid), Term
//	permanent                           → DLQ(vendor), Term
//	retry later, not the last delivery  → NakWithDelay(hint, else backoff by delivery count; capped)
//	released, not the last delivery     → Nak (NakWithDelay(Delay) when set: see receive)
//	retry later or released on the last → DLQ(max_deliver), Term
//	anything else (a pipeline bug)      → NakWithDelay(backoff): never lost, never final
func decide(o jobs.Outcome, m jobs.Meta, backoff func(delivered int) time.Duration, retryMax time.Duration) action {
	switch o.Kind {
	case jobs.Applied, jobs.Superseded:
		return action{kind: doAck}
	case jobs.Invalid:
		return action{kind: doDLQ, reason: jobs.ReasonInvalid, detail: o.Reason}
	case jobs.Permanent:
		return action{kind: doDLQ, reason: jobs.ReasonVendor, detail: o.Reason}
	case jobs.RetryLater:
		if m.LastDelivery() {
			return action{kind: doDLQ, reason: jobs.ReasonMaxDeliver,
				detail: fmt.Sprintf("not applied by delivery %d of %d: %s", m.Delivered, m.MaxDeliver, o.Reason)}
		}
		d := o.Delay
		if d <= 0 {
			d = backoff(m.Delivered)
		}
		return action{kind: doNakDelay, delay: min(d, retryMax)}
	case jobs.Released:
		if m.LastDelivery() {
			return action{kind: doDLQ, reason: jobs.ReasonMaxDeliver,
				detail: fmt.Sprintf("released on delivery %d of %d: %s", m.Delivered, m.MaxDeliver, o.Reason)}
		}
		if o.Delay > 0 {
			return action{kind: doNakDelay, delay: min(o.Delay, retryMax)}
		}
		return action{kind: doNak}
	default:
		return action{kind: doNakDelay, delay: backoff(m.Delivered)}
	}
}

// retryDelay is base·2^(delivered−1) with ±50 % jitter (r in [0,1)),
// capped at max.
func retryDelay(base, limit time.Duration, delivered int, r float64) time.Duration {
	if delivered < 1 {
		delivered = 1
	}
	d := limit
	if shift := delivered - 1; shift < 32 && base<<shift > 0 && base<<shift < limit {
		d = base << shift
	}
	d = time.Duration(float64(d) * (0.5 + r))
	return min(max(d, time.Millisecond), limit)
}

// publisher is the part of jetstream.JetStream that dead-lettering uses.
type publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// settler applies settle actions. It is the only code that acks.
type settler struct {
	layout   event.Layout
	workerID string
	pub      publisher
	cfg      Config
	log      *slog.Logger
	m        *Metrics
	now      func() time.Time
	rand     func() float64
}

func (s *settler) backoff(delivered int) time.Duration {
	return retryDelay(s.cfg.RetryBase, s.cfg.RetryMax, delivered, s.rand())
}

// settle settles h with outcome o exactly once; later calls are no-ops.
func (s *settler) settle(h *held, o jobs.Outcome, byStop bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settled || h.stale {
		lvl := slog.LevelWarn
		if h.byStop || h.stale {
			lvl = slog.LevelDebug // the pipeline settling after a stop or a redelivery: expected
		}
		s.log.Log(context.Background(), lvl, "queue: settle ignored: already settled or replaced",
			slog.Uint64("stream_seq", h.meta.Seq), slog.String("first", h.first.String()),
			slog.String("second", o.Kind.String()), slog.Bool("replaced", h.stale))
		return
	}
	h.settled, h.first, h.byStop = true, o.Kind, byStop
	if h.release != nil {
		h.release(h)
	}

	act := decide(o, h.meta, s.backoff, s.cfg.RetryMax)
	s.apply(h, o, act)
	s.m.observeLatency(h.meta.Lane, o.Kind.String(), s.now().Sub(h.meta.Published).Seconds())
}

func (s *settler) apply(h *held, o jobs.Outcome, act action) {
	// Built only when something is logged: Logger.With on every Ack was
	// 3–4 % of the worker's CPU in the fsbench throughput profile.
	log := func() *slog.Logger {
		return s.log.With(slog.Uint64("stream_seq", h.meta.Seq), slog.Int("num_delivered", h.meta.Delivered),
			slog.String("lane", string(h.meta.Lane)), slog.Int("partition", h.meta.Partition))
	}
	lane := h.meta.Lane
	var err error
	switch act.kind {
	case doAck:
		err = h.msg.Ack()
		s.m.incSettled(lane, actionAck)
	case doNak:
		err = h.msg.Nak()
		s.m.incSettled(lane, actionNak)
	case doNakDelay:
		err = h.msg.NakWithDelay(act.delay)
		s.m.incSettled(lane, actionNakDelay)
		log().Debug("queue: retry later", slog.Duration("delay", act.delay), slog.String("reason", o.Reason))
	case doDLQ:
		dl := deadLetter{
			reason: act.reason, detail: act.detail, code: o.Code, message: o.Message,
			stream: h.meta.Stream, subject: h.meta.Subject, seq: h.meta.Seq, delivered: h.meta.Delivered,
			version: h.version, eventID: h.eventID, data: h.msg.Data(),
		}
		if perr := s.publishDLQ(dl); perr != nil {
			// Never Term without a copy: let the message come back.
			d := s.backoff(h.meta.Delivered)
			s.m.incDLQError()
			log().Error("queue: dead-letter publish failed; nak with delay instead of term",
				slog.String("reason", act.reason), slog.Duration("delay", d), slog.Any("error", perr))
			err = h.msg.NakWithDelay(d)
			s.m.incSettled(lane, actionNakDelay)
			break
		}
		s.m.incDLQ(act.reason)
		log().Warn("queue: dead-lettered", slog.String("reason", act.reason), slog.String("detail", act.detail),
			slog.String("event_id", h.eventID))
		err = h.msg.Term()
		s.m.incSettled(lane, actionTerm)
	}
	if err != nil {
		// The server redelivers after AckWait; nothing is lost.
		log().Warn("queue: settle action failed", slog.Any("error", err))
	}
}

// deadLetter is one DLQ entry.
type deadLetter struct {
	reason, detail, code, message string
	stream, subject               string
	seq                           uint64 // in stream
	delivered                     int    // 0: unknown, header left out
	version                       jobs.Version
	eventID                       string
	data                          []byte
}

// dlqMsgID deduplicates a retried dead-letter copy of one stream message
// (sequences are per stream, so the stream is part of it).
func dlqMsgID(stream string, seq uint64) string {
	return stream + "/" + strconv.FormatUint(seq, 10) + "/dlq"
}

// publishDLQ publishes dl and waits for its PubAck.
func (s *settler) publishDLQ(dl deadLetter) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DLQTimeout)
	defer cancel()
	msg := nats.NewMsg(jobs.DLQSubject(s.layout, dl.reason))
	msg.Data = dl.data
	set := func(k, v string) {
		if v = headerValue(v); v != "" {
			msg.Header.Set(k, v)
		}
	}
	set(jobs.HdrReason, dl.reason)
	set(jobs.HdrDetail, dl.detail)
	set(jobs.HdrVendorCode, dl.code)
	set(jobs.HdrVendorMessage, dl.message)
	set(jobs.HdrOrigSubject, dl.subject)
	set(jobs.HdrOrigStream, dl.stream)
	set(jobs.HdrOrigSeq, strconv.FormatUint(dl.seq, 10))
	if dl.delivered > 0 {
		set(jobs.HdrDelivered, strconv.Itoa(dl.delivered))
	}
	set(jobs.HdrWorker, s.workerID)
	set(jobs.HdrTime, s.now().UTC().Format(time.RFC3339Nano))
	set(jobs.HdrVersion, dl.version.String())
	set(jobs.HdrEventID, dl.eventID)
	_, err := s.pub.PublishMsg(ctx, msg,
		jetstream.WithMsgID(dlqMsgID(dl.stream, dl.seq)),
		jetstream.WithExpectStream(jobs.DLQStream(s.layout)))
	if err != nil {
		return fmt.Errorf("queue: dead-letter %s seq %d: %w", dl.stream, dl.seq, err)
	}
	return nil
}

// maxHeaderValue bounds one DLQ header value.
const maxHeaderValue = 1024

// headerValue makes v safe as a NATS header value: one line, bounded,
// valid UTF-8 cut at a rune boundary.
func headerValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, strings.TrimSpace(v))
	if len(v) > maxHeaderValue {
		v = strings.ToValidUTF8(v[:maxHeaderValue], "")
	}
	return v
}

// newRand returns a jitter source in [0,1).
func newRand() func() float64 { return rand.Float64 }
