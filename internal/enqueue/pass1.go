package enqueue

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/producer"
)

// identity hashes the whole input: the first 16 hex digits of its SHA-256.
func identity(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// msgID is the Nats-Msg-Id of a line.
func msgID(identity string, line int) string {
	return "enqueue/" + identity + "/" + strconv.Itoa(line)
}

// defaultCacheBytes bounds the prepared messages kept between the passes.
// Lines beyond it are read and encoded again by the publish pass.
const defaultCacheBytes = 128 << 20

// arena keeps the prepared messages of the validation pass, so that the
// publish pass of an input that fits does no parsing at all.
type arena struct {
	limit    int
	buf      []byte     // payloads back to back
	items    []prepared // in line order
	subjects []string   // interned subjects
	streams  []string   // Nats-Expected-Stream of each subject (its partition's stream)
	index    map[string]uint32
	// through is the last line whose message is in the arena (if valid,
	// not invalid and not before the checkpoint); later lines must be
	// prepared again.
	through int
	full    bool
}

type prepared struct {
	line    int
	subject uint32
	off     int
	n       int
}

const preparedSize = 32 // bytes per item, for the budget

// newArena makes an arena for an input of about size bytes, sized ahead so
// it does not copy itself while growing: a payload is its line plus the id
// and ts enqueue adds (short lines double), and a line is rarely under 32
// bytes. Capacity that is never written costs no memory.
func newArena(limit int, size int64) *arena {
	a := &arena{limit: limit, index: map[string]uint32{}}
	if size > 0 {
		a.buf = make([]byte, 0, min(int64(limit), 3*size))
		a.items = make([]prepared, 0, min(int64(limit/preparedSize/4), size/32+1))
	}
	return a
}

// add keeps one prepared message, unless the budget is spent. stream is
// the message's Nats-Expected-Stream, which follows from its subject.
func (a *arena) add(line int, subject, stream string, data []byte) {
	if a.full {
		return
	}
	if len(a.buf)+len(data)+(len(a.items)+1)*preparedSize > a.limit {
		a.full = true
		return
	}
	si, ok := a.index[subject]
	if !ok {
		si = uint32(len(a.subjects))
		a.subjects = append(a.subjects, subject)
		a.streams = append(a.streams, stream)
		a.index[subject] = si
	}
	a.items = append(a.items, prepared{line: line, subject: si, off: len(a.buf), n: len(data)})
	a.buf = append(a.buf, data...)
	a.through = line
}

// advance records that line needs no message (invalid, or before the
// checkpoint) while the arena is still complete.
func (a *arena) advance(line int) {
	if !a.full {
		a.through = line
	}
}

// pass1 is the result of the validation pass.
type pass1 struct {
	identity string
	valid    int64
	invalid  int64
	resumed  int64 // valid lines at or before the checkpoint
	bad      []int // invalid lines, ascending (with --skip-invalid)
	lastLine int   // the input's last record
	arena    *arena
}

// vrec is one record on its way through the parallel validation.
type vrec struct {
	line   int
	raw    []byte
	fields []string
	err    error // parse or validation error
	// Prepared message (publishing runs only, lines after the checkpoint).
	subject string
	stream  string // Nats-Expected-Stream
	data    []byte
}

type vbatch struct {
	recs []vrec
	done chan struct{}
}

const batchSize = 256

// validate reads the whole input once: every record is parsed and
// validated for its app by GOMAXPROCS workers, and, when publishing,
// prepared (subject and payload) into the arena; results are handled in
// line order (errors printed, rejects written, counts kept).
func (r *publishRun) validate(ctx context.Context, in io.Reader, size int64, id string, resumeLine int) (*pass1, error) {
	src, err := newSource(r.format, in)
	if err != nil {
		if errors.Is(err, errHeader) {
			return nil, fail(ExitInvalid, "%s: %s; nothing was published", r.name(), strings.TrimPrefix(err.Error(), errHeader.Error()+": "))
		}
		return nil, fail(ExitUsage, "read %s: %v", r.name(), err)
	}
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := max(runtime.GOMAXPROCS(0), 1)
	order := make(chan *vbatch, 2*workers)
	work := make(chan *vbatch, 2*workers)
	var readErr error
	readDone := make(chan struct{})
	go func() { // reader: batches of copied records, in order
		defer close(readDone)
		defer close(work)
		defer close(order)
		for eof := false; !eof; {
			b := &vbatch{recs: make([]vrec, 0, batchSize), done: make(chan struct{})}
			var raw []byte // the batch's NDJSON lines, back to back
			for len(b.recs) < batchSize {
				rec, err := src.next()
				if errors.Is(err, io.EOF) {
					eof = true
					break
				}
				if err != nil {
					readErr = err
					eof = true
					break
				}
				v := vrec{line: rec.line, err: rec.perr}
				if rec.fields != nil {
					v.fields = append([]string(nil), rec.fields...)
				} else {
					if cap(raw)-len(raw) < len(rec.raw) {
						raw = make([]byte, 0, max(64<<10, len(rec.raw)))
					}
					raw = append(raw, rec.raw...)
					v.raw = raw[len(raw)-len(rec.raw) : len(raw) : len(raw)]
				}
				b.recs = append(b.recs, v)
			}
			if len(b.recs) == 0 {
				return
			}
			select {
			case order <- b:
			case <-vctx.Done():
				return
			}
			select {
			case work <- b:
			case <-vctx.Done():
				return
			}
		}
	}()
	for range workers {
		go func() {
			for b := range work {
				for i := range b.recs {
					r.checkRecord(src, &b.recs[i], id, resumeLine)
				}
				close(b.done)
			}
		}()
	}

	arenaSize := size
	if r.prod == nil {
		arenaSize = 0 // a dry run prepares nothing
	}
	res := &pass1{identity: id, arena: newArena(r.cacheBytes, arenaSize)}
	var (
		rejects *bufio.Writer
		rf      *os.File
		printed int
	)
	defer func() {
		if rf != nil {
			rf.Close()
		}
	}()
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, fail(ExitInterrupted, "interrupted while validating; nothing was published")
		}
		for i := range b.recs {
			v := &b.recs[i]
			res.lastLine = v.line
			if v.err == nil {
				res.valid++
				if v.line <= resumeLine {
					res.resumed++
					res.arena.advance(v.line)
				} else if v.data != nil {
					res.arena.add(v.line, v.subject, v.stream, v.data)
				}
				continue
			}
			res.arena.advance(v.line)
			res.invalid++
			why := reason(v.err)
			if printed < r.o.maxErrors {
				fmt.Fprintf(r.e.stderr, "line %d: %s\n", v.line, why)
				printed++
			}
			if !r.o.skipInvalid {
				continue
			}
			res.bad = append(res.bad, v.line)
			if r.o.dryRun {
				continue
			}
			if rejects == nil {
				var err error
				if rf, err = os.Create(r.o.rejectFile); err != nil {
					return nil, fail(ExitUsage, "reject file: %v", err)
				}
				rejects = bufio.NewWriter(rf)
			}
			rec := record{line: v.line, raw: v.raw, fields: v.fields}
			if _, err := rejects.Write(marshalReject(v.line, why, rec.text())); err != nil {
				return nil, fail(ExitUsage, "reject file: %v", err)
			}
		}
	}
	<-readDone
	if ctx.Err() != nil {
		return nil, fail(ExitInterrupted, "interrupted while validating; nothing was published")
	}
	if readErr != nil {
		return nil, fail(ExitUsage, "read %s: %v", r.name(), readErr)
	}
	if n := res.invalid - int64(printed); n > 0 {
		fmt.Fprintf(r.e.stderr, "… and %d more invalid lines\n", n)
	}
	if rejects != nil {
		if err := rejects.Flush(); err != nil {
			return nil, fail(ExitUsage, "reject file: %v", err)
		}
		err := rf.Close()
		rf = nil
		if err != nil {
			return nil, fail(ExitUsage, "reject file: %v", err)
		}
	}
	return res, nil
}

// checkRecord parses and validates one record and, when publishing a line
// after the checkpoint, prepares its message. Workers call it
// concurrently: it touches only v.
func (r *publishRun) checkRecord(src source, v *vrec, id string, resumeLine int) {
	if v.err != nil {
		return
	}
	rec := record{line: v.line, raw: v.raw, fields: v.fields}
	src.parse(&rec)
	if v.err = rec.perr; v.err != nil {
		return
	}
	ev := &rec.ev
	r.chk.fill(ev)
	if v.err = r.chk.check(ev); v.err != nil || r.prod == nil || v.line <= resumeLine {
		return
	}
	mid := msgID(id, v.line)
	if ev.ID == "" {
		ev.ID = mid
	}
	m, err := r.prod.Prepare(ev, producer.WithLane(r.lane), producer.WithMsgID(mid))
	if err != nil {
		v.err = err
		return
	}
	v.subject, v.stream, v.data = m.Subject, m.Header.Get(jetstream.ExpectedStreamHeader), m.Data
}
