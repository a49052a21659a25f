// Package event is the friendsync wire contract that app servers import.
//
// It owns the friend-update Event (its JSON form, field semantics and
// validation against each vendor's documented limits), the lanes and the
// subject layout of the partition streams (FRIENDSYNC_P<p>), and the
// partition function.
// It imports nothing but the standard library, so any producer can depend
// on it without pulling in NATS or the worker.
//
// It does not publish: package producer does that. It does not know app
// profiles or credentials: a caller passes the Rules of the event's app.
//
// # Field semantics
//
// A field left out (nil) is unchanged. Remark "" clears the remark; Groups
// set to an empty list clears the groups; an Attrs entry with value ""
// clears that attribute. Each attrs key is its own field for merging and
// versions, so two events that set different keys never overwrite each
// other.
//
// # Versions
//
// An event's version is TS (Unix nanoseconds, UTC) when the producer sets
// it, else the JetStream publish time of its message; ties go to the higher
// stream sequence. Backfills set TS to the time their data was read, so an
// old row never overwrites a newer live value.
package event
