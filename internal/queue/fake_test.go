package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg is a jetstream.Msg that records the ack calls made on it, in
// order, into a shared log (so tests can check "DLQ publish before Term").
type fakeMsg struct {
	data []byte
	hdr  nats.Header
	subj string
	log  *callLog
}

type callLog struct {
	mu    sync.Mutex
	calls []string
	delay time.Duration // last NakWithDelay
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func (l *callLog) count(s string) int {
	n := 0
	for _, c := range l.list() {
		if c == s {
			n++
		}
	}
	return n
}

var _ jetstream.Msg = (*fakeMsg)(nil)

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, errors.New("fake: no metadata")
}
func (m *fakeMsg) Data() []byte                       { return m.data }
func (m *fakeMsg) Headers() nats.Header               { return m.hdr }
func (m *fakeMsg) Subject() string                    { return m.subj }
func (m *fakeMsg) Reply() string                      { return "" }
func (m *fakeMsg) Ack() error                         { m.log.add("ack"); return nil }
func (m *fakeMsg) DoubleAck(context.Context) error    { m.log.add("ack"); return nil }
func (m *fakeMsg) Nak() error                         { m.log.add("nak"); return nil }
func (m *fakeMsg) InProgress() error                  { m.log.add("in_progress"); return nil }
func (m *fakeMsg) Term() error                        { m.log.add("term"); return nil }
func (m *fakeMsg) TermWithReason(reason string) error { m.log.add("term_with_reason"); return nil }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.log.mu.Lock()
	m.log.delay = d
	m.log.mu.Unlock()
	m.log.add("nak_delay")
	return nil
}

// fakePub records dead-letter publishes into the same log.
type fakePub struct {
	log  *callLog
	err  error
	mu   sync.Mutex
	msgs []*nats.Msg
	opts int
}

func (p *fakePub) PublishMsg(_ context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.log.add("dlq_publish")
	if p.err != nil {
		return nil, p.err
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, msg)
	p.opts = len(opts)
	p.mu.Unlock()
	return &jetstream.PubAck{Stream: "DLQ", Sequence: 1}, nil
}
