package jobs

import (
	"strconv"
	"strings"

	"github.com/friendsync/friendsync/event"
)

// Dead-letter reasons: the last subject token of a DLQ entry and the value
// of HdrReason.
const (
	ReasonInvalid    = "invalid"     // decode, validation or unknown app
	ReasonVendor     = "vendor"      // a permanent vendor code
	ReasonMaxDeliver = "max_deliver" // not applied by the last delivery
)

// Headers of a dead-letter entry. The payload is the original event JSON.
const (
	HdrReason        = "Friendsync-Reason"         // one of the Reason* values
	HdrDetail        = "Friendsync-Detail"         // human-readable cause
	HdrVendorCode    = "Friendsync-Vendor-Code"    // vendor code, when a vendor answered
	HdrVendorMessage = "Friendsync-Vendor-Message" // vendor text
	HdrOrigSubject   = "Friendsync-Orig-Subject"
	HdrOrigStream    = "Friendsync-Orig-Stream" // the partition stream it was in
	HdrOrigSeq       = "Friendsync-Orig-Seq"    // its sequence in that stream
	HdrDelivered     = "Friendsync-Delivered"   // delivery count when dead-lettered
	HdrWorker        = "Friendsync-Worker"      // worker id
	HdrTime          = "Friendsync-Time"        // RFC 3339 (nanoseconds), UTC
	HdrVersion       = "Friendsync-Version"     // Version.String() of the event, kept on replay
	HdrEventID       = "Friendsync-Event-Id"    // the event's id (Nats-Msg-Id)
)

// DLQStream is the dead-letter stream of a layout: <STREAM>_DLQ.
func DLQStream(l event.Layout) string { return l.StreamBase() + "_DLQ" }

// DLQPrefix is the subject prefix of dead letters: <base>.dlq.
func DLQPrefix(l event.Layout) string {
	return strings.TrimSuffix(l.SubjectPrefix(), ".ev") + ".dlq"
}

// DLQSubject is <base>.dlq.<reason>.
func DLQSubject(l event.Layout, reason string) string { return DLQPrefix(l) + "." + reason }

// LeaseBucket is the KV bucket of partition leases: <base>-leases.
func LeaseBucket(l event.Layout) string {
	return strings.TrimSuffix(l.MetaBucket(), "-meta") + "-leases"
}

// ConsumerName is the durable pull consumer of one lane and partition:
// fs-<lane>-<p>.
func ConsumerName(lane event.Lane, p int) string {
	return "fs-" + string(lane) + "-" + strconv.Itoa(p)
}
