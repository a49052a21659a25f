package jobs

import "time"

// Kind is the final (or, for RetryLater and Released, per-delivery) fate of
// one event. The queue's settle switch maps each Kind to an ack action.
type Kind int

const (
	// Applied: the vendor confirmed the item carrying the event's values.
	Applied Kind = iota + 1
	// Superseded: every field the event sets already has a newer applied
	// value (or is carried by a newer event whose item was applied).
	Superseded
	// Invalid: the event cannot be decoded or validated, or names an
	// unknown app. Dead-lettered at once.
	Invalid
	// Permanent: the vendor refused the item with a permanent code.
	// Dead-lettered at once.
	Permanent
	// RetryLater: a transient failure outlived the in-process retry budget;
	// the queue redelivers after Delay (dead-letters on the last delivery).
	RetryLater
	// Released: not attempted (lease lost, shutdown); redeliver at once.
	Released
)

var kindNames = [...]string{"", "applied", "superseded", "invalid", "permanent", "retry_later", "released"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Outcome is what happened to one event.
type Outcome struct {
	Kind Kind
	// Reason is a short human-readable cause, safe to log and to store in the
	// DLQ (never holds credentials).
	Reason string
	// Code and Message are the vendor's code and text, when a vendor answered.
	Code    string
	Message string
	// Delay is the redelivery delay hint for RetryLater (0: the queue's own
	// backoff by delivery count); the queue also sets it on Released while
	// a partition stops, so a late delivery is not refetched at once.
	Delay time.Duration
}

// Final reports whether the outcome ends the event (ack or dead letter).
func (o Outcome) Final() bool {
	switch o.Kind {
	case Applied, Superseded, Invalid, Permanent:
		return true
	}
	return false
}

// worse ranks outcomes when one event's fields had different fates: a field
// that must be retried keeps the event alive; a permanent failure beats
// success, since the event was not fully applied.
var rank = [...]int{0, 2, 1, 4, 3, 5, 6}

// Worse returns the outcome that decides the event when its fields ended
// differently: Released > RetryLater > Invalid > Permanent > Applied > Superseded.
func Worse(a, b Outcome) Outcome {
	if a.Kind == 0 {
		return b
	}
	if b.Kind == 0 {
		return a
	}
	if rank[b.Kind] > rank[a.Kind] {
		return b
	}
	return a
}
