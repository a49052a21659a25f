package enqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/producer"
)

// job is a prepared line; flight a published one awaiting its ack.
type job struct {
	line int
	msg  *nats.Msg
}

type flight struct {
	line int
	msg  *nats.Msg
	fut  jetstream.PubAckFuture
	err  error // the publish call itself failed
	sent time.Time
}

// publishResult is what the publish pass reports.
type publishResult struct {
	killed      bool
	interrupted bool
	failures    int
	firstFail   int // line
	failErr     error
	inputErr    error // the input changed between the passes
}

const (
	// drainTimeout bounds the wait for outstanding acks after an interrupt.
	drainTimeout = 10 * time.Second
	// checkpointInterval is the longest time between checkpoint writes.
	checkpointInterval = 2 * time.Second
)

// publish runs the publish pass. The publisher sends the arena's messages,
// then (for an input larger than the arena) the lines a reader prepares
// again from the input, paced and kept below the headroom limit, with at
// most --max-pending in flight; this goroutine checks every ack in line
// order, retries failed lines and advances the checkpoint.
func (r *publishRun) publish(ctx context.Context, p1 *pass1, state *checkpoint, reopen func() (source, error)) publishResult {
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	dead := make(chan struct{}) // closed when the collector abandons the run
	// The in-flight bound is the producer's MaxPending; flights travel to
	// the collector in batches so that no goroutine wakes per message.
	flights := make(chan []flight, max(8, 2*r.o.maxPending/flightBatch))
	resumeLine := state.Line
	a := p1.arena

	hr := newHeadroom(func(ctx context.Context) ([]*jetstream.StreamInfo, error) {
		ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
		defer cancel()
		return partitionInfos(ctx, r.js, r.layout, r.partitions)
	}, configs(r.streams), func(s string) { r.prog.note(s) })
	r.prog = newProgress(r.o.progress, r.e.stderr, isTerminal(r.e.stderr), p1.valid-p1.resumed, &r.cnt, hr.paused)
	r.prog.run()
	defer r.prog.stop()

	// Reader of the lines beyond the arena: parse, fill, prepare.
	var (
		tail    chan job
		prepErr error
	)
	prepDone := make(chan struct{})
	if !a.full {
		close(prepDone)
	} else {
		tail = make(chan job, 256)
		go func() {
			defer close(prepDone)
			defer close(tail)
			prepErr = r.prepareTail(pctx, reopen, p1, max(resumeLine, a.through), tail)
			if prepErr != nil {
				stop()
			}
		}()
	}

	// Publisher: pace, keep headroom, send.
	pace := newPacer(r.o.rate)
	go func() {
		defer close(flights)
		var (
			batch []flight
			first time.Time
		)
		flush := func() bool {
			if len(batch) == 0 {
				return true
			}
			select {
			case flights <- batch:
				batch = nil
				return true
			case <-dead:
				return false
			}
		}
		defer flush()
		// Before a pause or a paced wait, hand over what was sent.
		waited := func() { flush() }
		pace.beforeSleep, hr.beforeSleep = waited, waited
		send := func(line int, m *nats.Msg) bool {
			if pace.wait(pctx) != nil || hr.wait(pctx) != nil {
				return false
			}
			fut, err := r.prod.PublishMsgAsync(m)
			now := time.Now()
			if len(batch) == 0 {
				batch, first = make([]flight, 0, flightBatch), now
			}
			batch = append(batch, flight{line: line, msg: m, fut: fut, err: err, sent: now})
			if len(batch) == flightBatch || now.Sub(first) >= flightMaxAge {
				return flush()
			}
			return true
		}
		for _, it := range a.items {
			m := &nats.Msg{Subject: a.subjects[it.subject], Data: a.buf[it.off : it.off+it.n : it.off+it.n], Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, msgID(p1.identity, it.line))
			// The producer named the subject's partition stream; a stream
			// that captured the subject under another name (a misconfigured
			// or foreign stream) makes the server refuse the message.
			m.Header.Set(jetstream.ExpectedStreamHeader, a.streams[it.subject])
			if !send(it.line, m) {
				return
			}
		}
		if tail == nil {
			return
		}
		for j := range tail {
			if !send(j.line, j.msg) {
				return
			}
		}
	}()

	// Collector: every ack, in line order.
	var res publishResult
	drain := make(chan struct{})
	stopDrain := context.AfterFunc(ctx, func() {
		time.AfterFunc(drainTimeout, func() { close(drain) })
	})
	defer stopDrain()
	var acked int64
	lastSave := time.Now()
	frozen := false // a line failed: the checkpoint cannot pass it
	for fl := range allFlights(flights) {
		ack, err := r.await(fl, drain)
		if err != nil && ctx.Err() == nil && res.failures == 0 {
			ack, err = r.retry(pctx, fl, err)
		}
		if err != nil {
			r.cnt.retries.Add(1)
			res.failures++
			if res.firstFail == 0 {
				res.firstFail, res.failErr = fl.line, err
			}
			frozen = true
			stop()
			continue
		}
		if ack.Duplicate {
			r.cnt.duplicates.Add(1)
		} else {
			r.cnt.published.Add(1)
		}
		acked++
		if r.e.hooks.afterAck != nil && r.e.hooks.afterAck(acked) {
			close(dead)
			stop()
			r.nc.Close()
			res.killed = true
			return res
		}
		if frozen {
			continue
		}
		state.Line = fl.line
		if acked%int64(r.o.checkpointEvery) == 0 || time.Since(lastSave) >= checkpointInterval {
			if err := state.save(r.o.stateFile); err != nil {
				r.prog.note("warning: " + err.Error())
			}
			lastSave = time.Now()
		}
	}
	stop() // the publisher may have quit early; release the reader
	<-prepDone
	res.inputErr = prepErr
	res.interrupted = ctx.Err() != nil
	return res
}

// prepareTail reads the input again and prepares the valid lines after
// line `after` that the arena could not hold.
func (r *publishRun) prepareTail(ctx context.Context, reopen func() (source, error), p1 *pass1, after int, out chan<- job) error {
	src, err := reopen()
	if err != nil {
		return err
	}
	bad := p1.bad
	for {
		rec, err := src.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fail(ExitUsage, "read %s: %v", r.name(), err)
		}
		for len(bad) > 0 && bad[0] < rec.line {
			bad = bad[1:]
		}
		if rec.line <= after || len(bad) > 0 && bad[0] == rec.line {
			continue
		}
		src.parse(&rec)
		if rec.perr == nil {
			r.chk.fill(&rec.ev)
		}
		mid := msgID(p1.identity, rec.line)
		if rec.perr == nil && rec.ev.ID == "" {
			rec.ev.ID = mid
		}
		var m *nats.Msg
		if rec.perr == nil {
			m, rec.perr = r.prod.Prepare(&rec.ev, producer.WithLane(r.lane), producer.WithMsgID(mid))
		}
		if rec.perr != nil {
			return fail(ExitInvalid, "line %d changed since it was validated (%s): the input changed during the run", rec.line, reason(rec.perr))
		}
		select {
		case out <- job{line: rec.line, msg: m}:
		case <-ctx.Done():
			return nil
		}
	}
}

var errAckTimeout = errors.New("no ack from the stream in time")

// Flights are handed to the collector in batches of up to flightBatch, or
// after flightMaxAge.
const (
	flightBatch  = 128
	flightMaxAge = 20 * time.Millisecond
	// ackPoll is how often the collector looks at an unanswered ack: acks
	// arrive in bursts, and polling checks a burst with one wake-up.
	ackPoll = time.Millisecond
)

// allFlights yields the flights of the batches in order.
func allFlights(batches <-chan []flight) iter.Seq[flight] {
	return func(yield func(flight) bool) {
		for b := range batches {
			for _, fl := range b {
				if !yield(fl) {
					return
				}
			}
		}
	}
}

// await waits for one flight's ack, until the ack timeout or the drain
// deadline after an interrupt.
func (r *publishRun) await(fl flight, drain <-chan struct{}) (*jetstream.PubAck, error) {
	if fl.err != nil {
		return nil, fl.err
	}
	ok := fl.fut.Ok()
	select {
	case a := <-ok:
		return a, nil
	default:
	}
	errc := fl.fut.Err()
	for {
		select {
		case a := <-ok:
			return a, nil
		case err := <-errc:
			return nil, err
		case <-drain:
			return nil, errAckTimeout
		default:
		}
		if time.Since(fl.sent) > r.o.timeout {
			return nil, errAckTimeout
		}
		time.Sleep(ackPoll)
	}
}

// retry republishes a failed line synchronously with exponential backoff
// and jitter; the same Nats-Msg-Id makes a lost ack harmless.
func (r *publishRun) retry(ctx context.Context, fl flight, err error) (*jetstream.PubAck, error) {
	delay := 100 * time.Millisecond
	for attempt := 1; attempt <= r.o.retries; attempt++ {
		r.cnt.retries.Add(1)
		r.prog.note(fmt.Sprintf("line %d: publish failed (%v); retry %d of %d", fl.line, err, attempt, r.o.retries))
		if sleep(ctx, delay/2+rand.N(delay)) != nil {
			return nil, err
		}
		delay = min(2*delay, 5*time.Second)
		actx, cancel := context.WithTimeout(ctx, r.o.timeout)
		ack, perr := r.js.PublishMsg(actx, fl.msg)
		cancel()
		if perr == nil {
			return ack, nil
		}
		err = perr
	}
	return nil, fmt.Errorf("%d attempts: %w", r.o.retries+1, err)
}
