package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/queue"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// throughputTarget is the target of our events/s over the raw JetStream
// rate.
const throughputTarget = 0.5

// publishPending is the async-publish window of both sides.
const publishPending = 4096

// phase is one timed publish-to-final-ack run.
type phase struct {
	name      string
	events    int
	published time.Duration // first publish → last publish ack
	acked     time.Duration // first publish → last consumer ack seen
	cpu       time.Duration
	series    []string // acks/s per ackSlot
}

func (p phase) rate() float64 { return float64(p.events) / p.acked.Seconds() }

func runThroughput(ctx context.Context, e *env, s *Section) error {
	n, accounts := e.sc.tputEvents, e.sc.tputAccounts
	s.Intro = fmt.Sprintf(`%d remark updates (each to a friend of its own) over %d Tencent accounts, uniform, are published
asynchronously (%d in flight) while one in-process worker consumes them through a simulator with no QPS limit and no
write time; the clock runs from the first publish until the consumers' acks of every event have been seen on the
$JS.ACK subjects. The raw baseline publishes the same payloads (same Nats-Msg-Id headers, same number in flight) to a
plain work-queue stream with the same storage, consumed by one pull consumer (Consume) that acks each message, timed
the same way; it runs before and after ours and the ratio uses their mean. A second baseline, run next to it, locates
the gap: consumers like the plain one (Consume, ack each) on friendsync's layout (a stream per partition holding its
live and bulk subjects, a consumer per lane filtered to its subject, each message on its partition's live subject).
The worker's limiter still holds Tencent at 180 calls/s + 10, so every call must carry a large batch.`, n, accounts, publishPending)
	d, err := e.deploy("tput", deployOpts{sim: func(c *vendorsim.Config) {
		c.TencentQPS, c.ZegoQPS, c.VolcQPS, c.WriteTime = -1, -1, 0, -1
	}})
	if err != nil {
		return err
	}
	defer d.cleanup()
	if err := d.ensure(ctx); err != nil {
		return err
	}
	p, err := d.producer(ctx)
	if err != nil {
		return err
	}
	evs, _ := backlog(event.Tencent, distUniform, n, accounts, 21)
	msgs := make([]*nats.Msg, n)
	for i := range evs {
		if msgs[i], err = p.Prepare(&evs[i]); err != nil {
			return err
		}
	}
	// The baselines: plain (one stream, one consumer: the target's
	// denominator) and friendsync's layout (a stream per partition with
	// both lanes' subjects, a consumer per lane filtered to its subject,
	// as queue.Ensure makes them). Each message keeps its partition.
	rawStream := d.layout.StreamBase() + "_RAW"
	plain := rawPlain(rawStream, d.name+".raw.>")
	var layout rawLayout
	for p := range d.partitions {
		ps := strconv.Itoa(p)
		layout.streams = append(layout.streams, rawStreamSpec{name: rawStream + "_P" + ps,
			subjects: []string{d.name + ".lay.*." + ps},
			filters:  []string{d.name + ".lay.live." + ps, d.name + ".lay.bulk." + ps}})
	}
	plainMsgs, layoutMsgs := make([]*nats.Msg, n), make([]*nats.Msg, n)
	for i, m := range msgs {
		_, part, ok := d.layout.ParseSubject(m.Subject)
		if !ok {
			return fmt.Errorf("bench: prepared subject %q is not the layout's", m.Subject)
		}
		if want := d.layout.PartitionStream(part); m.Header.Get(jetstream.ExpectedStreamHeader) != want {
			return fmt.Errorf("bench: prepared message on %q expects stream %q, not %q", m.Subject, m.Header.Get(jetstream.ExpectedStreamHeader), want)
		}
		ps := strconv.Itoa(part)
		plainMsgs[i] = rawMsg(m, d.name+".raw."+ps, rawStream)
		layoutMsgs[i] = rawMsg(m, d.name+".lay.live."+ps, rawStream+"_P"+ps)
	}

	var phases []phase
	raw := func(label string, lay rawLayout, ms []*nats.Msg) (phase, error) {
		ph, err := rawRun(ctx, e, lay, ms)
		ph.name = label
		if err == nil {
			phases = append(phases, ph)
		}
		return ph, err
	}
	baselines := func(when string) ([2]phase, error) {
		var out [2]phase
		var err error
		if out[0], err = raw("raw JetStream ("+when+")", plain, plainMsgs); err != nil {
			return out, err
		}
		out[1], err = raw("raw, friendsync's layout ("+when+")", layout, layoutMsgs)
		return out, err
	}
	before, err := baselines("before")
	if err != nil {
		return err
	}
	if err := d.start(ctx, 1, nil); err != nil {
		return err
	}
	if e.opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(e.opts.CPUProfile); err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
	}
	ours, err := oursRun(ctx, e, d, msgs)
	if e.opts.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	ours.name = "friendsync, 1 worker"
	phases = append(phases, ours)
	if err := d.stop(); err != nil {
		return err
	}
	after, err := baselines("after")
	if err != nil {
		return err
	}

	tbl := Table{Header: []string{"run", "events", "publish (all acked by the stream)", "publish → last consumer ack", "events/s", "CPU of this process", "CPU µs/event"}}
	for _, ph := range phases {
		tbl.Rows = append(tbl.Rows, []string{ph.name, itoa(ph.events), secs(ph.published), secs(ph.acked), f1(ph.rate()),
			secs(ph.cpu), f1(float64(ph.cpu.Microseconds()) / float64(ph.events))})
	}
	s.Tables = append(s.Tables, tbl)
	series := Table{Caption: fmt.Sprintf("Consumer acks per second, in %s steps from the first publish:", ackSlot), Header: []string{"run", "acks/s"}}
	for _, ph := range phases {
		series.Rows = append(series.Rows, []string{ph.name, strings.Join(ph.series, " ")})
	}
	s.Tables = append(s.Tables, series)
	mean := func(i int) float64 { return (before[i].rate() + after[i].rate()) / 2 }
	ratio := ours.rate() / mean(0)
	s.check("events/s ÷ raw JetStream publish + consume + ack", f3(ratio), fmt.Sprintf("≥ %.2f", throughputTarget), ratio >= throughputTarget, false)
	s.Notes = append(s.Notes, fmt.Sprintf("Where the gap lies (means of before and after): the plain consumers on friendsync's layout (%d streams, one per partition, each with a consumer per lane filtered to its subject: %d consumers) reached %.3f of the plain rate, and friendsync %.3f of that layout's rate.",
		d.partitions, 2*d.partitions, mean(1)/mean(0), ours.rate()/mean(1)))
	cs := d.sim.Counters()
	tc := cs.Tencent
	s.check("events applied at the vendor", itoa(tc.Applied), fmt.Sprintf("≥ %d (all)", n), tc.Applied >= int64(n), true)
	invariantChecks(s, "", cs)
	if tc.Calls > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("friendsync made %d Tencent calls carrying %.1f items each on average (%.0f events joined a batch after its rate-limit wait); the mean limiter wait was %s ms, the mean vendor call %s ms, the mean publish-to-settle latency (friendsync_queue_e2e_latency_seconds) %s ms.",
			tc.Calls, float64(tc.Items)/float64(tc.Calls), d.metricSum("friendsync_deliver_topped_up_events_total"),
			ms(d.meanDuration("friendsync_ratelimit_wait_seconds")),
			ms(d.meanDuration("friendsync_deliver_call_duration_seconds")), ms(d.meanDuration("friendsync_queue_e2e_latency_seconds"))))
	}
	if extra := d.metricSum("friendsync_queue_received_total") - float64(n); extra > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("The worker received %.0f deliveries beyond the first of each event: messages redelivered, most likely after a pull whose messages never reached the worker left them waiting for AckWait (%s); the last consumer ack then waits for them.",
			extra, queue.DefaultAckWait))
	}
	s.Notes = append(s.Notes,
		"Both sides run in this process next to NATS and Redis on the same cores, so CPU µs/event of this process (worker + publisher, or consumer + publisher) is the less noisy comparison; NATS and Redis CPU is not included.",
		"The worker also runs Redis round trips per batch (limiter token, field versions), which the raw consumer does not have.")
	return nil
}

// ackCounter counts the distinct messages (stream and sequence)
// acknowledged (+ACK) on the $JS.ACK subjects of some streams and closes
// done when want were seen (never for want < 0: the caller counts through
// onAck).
type ackCounter struct {
	mu    sync.Mutex
	seen  map[ackedMsg]bool
	want  int
	done  chan struct{}
	at    time.Time
	start time.Time
	// perSlot counts first acks per ackSlot since start.
	perSlot []int
	// onAck, when set before the first ack, runs on every first ack (with
	// the counter's lock held).
	onAck func()
}

// ackSlot is the resolution of the ack time series.
const ackSlot = 5 * time.Second

// ackedMsg is a message of a watched stream: its index among the streams
// and its stream sequence.
type ackedMsg struct {
	stream int
	seq    uint64
}

// watchAcks subscribes to the $JS.ACK subjects of each of streams (one
// subscription per stream, so the acks of other streams on the server
// stay out) and counts their first acks; unsubscribe calls stop.
func watchAcks(nc *nats.Conn, streams []string, want int) (*ackCounter, func(), error) {
	a := &ackCounter{seen: make(map[ackedMsg]bool, max(want, 0)), want: want, done: make(chan struct{})}
	var subs []*nats.Subscription
	unsubscribe := func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	for i, stream := range streams {
		sub, err := nc.Subscribe("$JS.ACK."+stream+".>", func(m *nats.Msg) { a.ack(i, m) })
		if err != nil {
			unsubscribe()
			return nil, nil, fmt.Errorf("bench: subscribe to acks of %s: %w", stream, err)
		}
		subs = append(subs, sub)
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			unsubscribe()
			return nil, nil, err
		}
	}
	if err := nc.Flush(); err != nil {
		unsubscribe()
		return nil, nil, err
	}
	return a, unsubscribe, nil
}

// ack counts m, an ack on the $JS.ACK subjects of the stream-th stream.
func (a *ackCounter) ack(stream int, m *nats.Msg) {
	if !strings.HasPrefix(string(m.Data), "+ACK") {
		return
	}
	// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
	toks := strings.Split(m.Subject, ".")
	if len(toks) < 9 {
		return
	}
	seq, err := strconv.ParseUint(toks[5], 10, 64)
	if err != nil {
		return
	}
	k := ackedMsg{stream: stream, seq: seq}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[k] {
		return
	}
	a.seen[k] = true
	if !a.start.IsZero() {
		slot := int(time.Since(a.start) / ackSlot)
		for len(a.perSlot) <= slot {
			a.perSlot = append(a.perSlot, 0)
		}
		a.perSlot[slot]++
	}
	if a.onAck != nil {
		a.onAck()
	}
	if len(a.seen) == a.want {
		a.at = time.Now()
		close(a.done)
	}
}

// begin starts the time series.
func (a *ackCounter) begin(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.start = t
}

// series returns the acks per ackSlot, as events/s.
func (a *ackCounter) series() []string { return mergeSeries([]*ackCounter{a}) }

func (a *ackCounter) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// wait waits for every ack and returns when the last was seen.
func (a *ackCounter) wait(ctx context.Context, timeout time.Duration) (time.Time, error) {
	select {
	case <-a.done:
		return a.at, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("bench: %d of %d acks seen after %s", a.count(), a.want, timeout)
	}
}

// publishAsync publishes msgs on nc with at most publishPending in
// flight and waits for every PubAck.
func publishAsync(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return fmt.Errorf("bench: jetstream: %w", err)
	}
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second)); err != nil {
			return fmt.Errorf("bench: publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return errors.New("bench: publish acks missing after 2m")
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("bench: %d publishes failed", n)
	}
	return nil
}

// oursRun publishes msgs to the deployment's partition streams (a worker
// runs) and times until every event's ack.
func oursRun(ctx context.Context, e *env, d *deployment, msgs []*nats.Msg) (phase, error) {
	streams := make([]string, d.partitions)
	for p := range streams {
		streams[p] = d.layout.PartitionStream(p)
	}
	acks, unsubscribe, err := watchAcks(e.nc, streams, len(msgs))
	if err != nil {
		return phase{}, err
	}
	defer unsubscribe()
	cpu0, t0 := cpuTime(), time.Now()
	acks.begin(t0)
	if err := publishAsync(ctx, e.nc, msgs); err != nil {
		return phase{}, err
	}
	pub := time.Since(t0)
	last, err := acks.wait(ctx, 10*time.Minute)
	if err != nil {
		return phase{}, err
	}
	ph := phase{events: len(msgs), published: pub, acked: last.Sub(t0), cpu: cpuTime() - cpu0, series: acks.series()}
	// The server must agree: nothing pending or unacknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for d.pending(ctx) != 0 {
		if time.Now().After(deadline) {
			return ph, fmt.Errorf("bench: consumers still hold messages 30s after the last ack (%d)", d.pending(ctx))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return ph, err
		}
	}
	return ph, nil
}

// rawMsg copies m (data, Nats-Msg-Id) onto subject, expecting stream.
func rawMsg(m *nats.Msg, subject, stream string) *nats.Msg {
	r := nats.NewMsg(subject)
	r.Data = m.Data
	r.Header.Set(jetstream.MsgIDHeader, m.Header.Get(jetstream.MsgIDHeader))
	r.Header.Set(jetstream.ExpectedStreamHeader, stream)
	return r
}

// rawLayout is a baseline's JetStream layout: streams, each with the
// filter subjects of its consumers ("" = one unfiltered consumer).
type rawLayout struct {
	streams []rawStreamSpec
}

type rawStreamSpec struct {
	name     string
	subjects []string
	filters  []string
}

// rawPlain is the plain baseline: one work-queue stream, one consumer.
func rawPlain(stream, subjects string) rawLayout {
	return rawLayout{streams: []rawStreamSpec{{name: stream, subjects: []string{subjects}, filters: []string{""}}}}
}

// rawRun is a baseline: work-queue streams with the same limits as ours,
// pull consumers (Consume, on their own connection) that ack every
// message, timed like ours. msgs carry their subjects and
// Expected-Stream headers for the layout.
func rawRun(ctx context.Context, e *env, lay rawLayout, msgs []*nats.Msg) (phase, error) {
	nc, err := nats.Connect(e.opts.NATSURL, nats.Name("fsbench-raw-consumer"))
	if err != nil {
		return phase{}, fmt.Errorf("bench: connect: %w", err)
	}
	defer nc.Close()
	cjs, err := jetstream.New(nc)
	if err != nil {
		return phase{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, rs := range lay.streams {
			_ = e.js.DeleteStream(dctx, rs.name)
		}
	}()
	var acked atomic.Int64
	var lastAt atomic.Value // time.Time of the last first ack
	want := int64(len(msgs))
	done := make(chan struct{})
	var ccs []jetstream.ConsumeContext
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	var unsubs []func()
	defer func() {
		for _, unsubscribe := range unsubs {
			unsubscribe()
		}
	}()
	var counters []*ackCounter
	for _, rs := range lay.streams {
		s, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: rs.name, Subjects: rs.subjects,
			Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew, Duplicates: queue.DefaultDuplicates,
			Storage: jetstream.FileStorage})
		if err != nil {
			return phase{}, fmt.Errorf("bench: create raw stream: %w", err)
		}
		for i, f := range rs.filters {
			mapc := queue.DefaultMaxAckPendingLive
			if f == "" {
				mapc *= event.DefaultPartitions
			}
			durable := "raw" + strconv.Itoa(i)
			if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: durable, FilterSubject: f,
				AckPolicy: jetstream.AckExplicitPolicy, AckWait: queue.DefaultAckWait, MaxAckPending: mapc}); err != nil {
				return phase{}, fmt.Errorf("bench: create raw consumer: %w", err)
			}
			cons, err := cjs.Consumer(ctx, rs.name, durable)
			if err != nil {
				return phase{}, err
			}
			cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack() })
			if err != nil {
				return phase{}, err
			}
			ccs = append(ccs, cc)
		}
		a, unsubscribe, err := watchAcks(e.nc, []string{rs.name}, -1)
		if err != nil {
			return phase{}, err
		}
		a.onAck = func() {
			if acked.Add(1) == want {
				lastAt.Store(time.Now())
				close(done)
			}
		}
		unsubs = append(unsubs, unsubscribe)
		counters = append(counters, a)
	}
	cpu0, t0 := cpuTime(), time.Now()
	for _, a := range counters {
		a.begin(t0)
	}
	if err := publishAsync(ctx, e.nc, msgs); err != nil {
		return phase{}, err
	}
	pub := time.Since(t0)
	select {
	case <-done:
	case <-ctx.Done():
		return phase{}, ctx.Err()
	case <-time.After(5 * time.Minute):
		return phase{}, fmt.Errorf("bench: %d of %d acks seen after 5m", acked.Load(), want)
	}
	last := lastAt.Load().(time.Time)
	return phase{events: len(msgs), published: pub, acked: last.Sub(t0), cpu: cpuTime() - cpu0, series: mergeSeries(counters)}, nil
}

// mergeSeries sums the acks per ackSlot of several counters, as events/s.
func mergeSeries(cs []*ackCounter) []string {
	var sum []int
	for _, a := range cs {
		a.mu.Lock()
		for i, n := range a.perSlot {
			for len(sum) <= i {
				sum = append(sum, 0)
			}
			sum[i] += n
		}
		a.mu.Unlock()
	}
	out := make([]string, len(sum))
	for i, n := range sum {
		out[i] = fmt.Sprintf("%.0f", float64(n)/ackSlot.Seconds())
	}
	return out
}
