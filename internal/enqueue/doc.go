// Package enqueue owns the enqueue command: bulk publishing of friend-update
// events from NDJSON or CSV files (backfills) and the inspection and replay
// of dead letters. cmd/enqueue is a thin main around Run.
//
// # Publish
//
// A publish run reads its input (stdin is first copied to a temporary
// file) to hash it into the input identity, then makes two passes. The
// first validates every line with the contract's decoder (event.Decode,
// which has a fast path for the common shape) and the vendor rules of the
// line's app (from the profiles file), on all cores, and keeps the prepared
// messages in memory up to a budget (128 MiB); by default one invalid line
// aborts the run with every bad line reported and nothing published, and
// --skip-invalid writes the bad lines to a reject file instead. The second
// pass publishes (bulk lane unless --lane live) the kept messages, and
// prepares again, through the producer library, the lines beyond the
// budget. Each event goes to the stream of its partition, <STREAM>_P<p>
// (p from the event's app and sender, P from the meta bucket), which a
// worker creates; the run first checks that all P streams are there.
//
//   - Nats-Expected-Stream names the partition's stream, so no other stream
//     that captures the subject (left from an old layout, misconfigured)
//     stores the message where the partition's workers do not read it;
//   - Nats-Msg-Id is enqueue/<identity>/<line>, identity being the first 16
//     hex digits of the SHA-256 of the input, so a re-run of the same input
//     inside the duplicates window stores nothing twice (a line maps to the
//     same partition stream every time);
//   - a row without ts gets --as-of or the file's modification time, so a
//     backfilled value never overwrites a newer live one;
//   - publishes are asynchronous with at most --max-pending in flight, paced
//     by --rate, and every ack is checked in line order; a failed line is
//     retried with backoff, then fails the run naming the line;
//   - the checkpoint <input>.enqueue-state records the highest line L with
//     every line ≤ L acknowledged; it is written atomically every
//     --checkpoint-every acks, and --resume skips those lines;
//   - the run pauses while any partition stream holds more than half of its
//     MaxMsgs or MaxBytes (1/P of the queue's), because those limits
//     (DiscardNew) are shared with live traffic, and a backfill of few
//     senders fills their partitions' streams alone.
//
// # Dead letters
//
// dlq list prints the entries of <STREAM>_DLQ; dlq replay republishes
// selected entries to their original subject (and so the stream of its
// partition, named in Nats-Expected-Stream) with a fresh Msg-Id
// (<event id>/replay/<unix-nanos>) and their original version (the ts of the
// Friendsync-Version header when the payload has none), optionally deleting
// each after its ack.
//
// It does not create streams or buckets (the worker does), consume events,
// or call vendors.
package enqueue
