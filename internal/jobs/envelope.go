package jobs

import (
	"time"

	"github.com/friendsync/friendsync/event"
)

// Key identifies one account's friend list: the unit of coalescing and of
// the one-call-in-flight rule.
type Key struct {
	App  string
	From string
}

func (k Key) String() string { return k.App + "/" + k.From }

// Meta is what the queue knows about the message that carried an event.
type Meta struct {
	Stream     string
	Subject    string
	Seq        uint64    // stream sequence
	Published  time.Time // JetStream publish time
	Delivered  int       // delivery count, 1 on the first delivery
	MaxDeliver int       // the last delivery the worker processes (the server allows one spare, see queue); 0: unknown
	Lane       event.Lane
	Partition  int
	MsgID      string // Nats-Msg-Id
	// Pending is how many messages were left for the consumer after this
	// one when it was delivered (0: the intake had caught up).
	Pending uint64
}

// LastDelivery reports whether this is the consumer's last delivery.
func (m Meta) LastDelivery() bool { return m.MaxDeliver > 0 && m.Delivered >= m.MaxDeliver }

// Envelope is one decoded, validated event on its way through the worker.
// Settle is set by the queue and called exactly once, by the pipeline, with
// the event's final outcome for this delivery.
type Envelope struct {
	Event   event.Event
	Meta    Meta
	Version Version
	Settle  func(Outcome)
}

// Key returns the coalescing key of the envelope.
func (e *Envelope) Key() Key { return Key{App: e.Event.App, From: e.Event.From} }

// VersionOf computes an event's version from its ts or the message's
// publish time, and the stream sequence.
func VersionOf(ev *event.Event, m Meta) Version {
	ts := ev.TS
	if ts == 0 {
		ts = m.Published.UnixNano()
	}
	return Version{TS: ts, Seq: m.Seq}
}
