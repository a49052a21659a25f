// Package producer publishes friend-update events to friendsync's
// partition streams (FRIENDSYNC_P0 … FRIENDSYNC_P<P-1>, one per
// partition): the library app servers use to feed friendsync.
//
// It owns validation against the app's vendor limits before anything is
// sent, the subject (lane and partition, with P read once from the meta
// bucket), the Nats-Msg-Id (the event id; a random UUIDv7 when the
// producer set none), the Nats-Expected-Stream header (the partition's
// stream, so a message the server would file elsewhere is refused), and
// publishing, synchronous or asynchronous with a bounded number of
// pending acks whose results are always checked.
//
// It does not create the streams: workers do that at start.
//
//	nc, _ := nats.Connect(url)
//	p, err := producer.New(ctx, nc, producer.Config{Apps: map[string]event.Rules{"chat": {Vendor: event.Tencent}}})
//	ack, err := p.Publish(ctx, &event.Event{App: "chat", From: "alice", To: "bob", Remark: event.Ptr("Bobby")})
package producer
