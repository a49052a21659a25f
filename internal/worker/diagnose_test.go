package worker_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// journal keeps every item the simulator processed, in order of
// completion, so that a failed proof can show what reached the vendor.
type journal struct {
	mu sync.Mutex
	ws []vendorsim.Write
}

func (j *journal) add(w vendorsim.Write) {
	j.mu.Lock()
	j.ws = append(j.ws, w)
	j.mu.Unlock()
}

// of returns the writes for one friend.
func (j *journal) of(v event.Vendor, app, from, to string) []vendorsim.Write {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []vendorsim.Write
	for _, w := range j.ws {
		if w.Vendor == v && w.App == app && w.From == from && w.To == to {
			out = append(out, w)
		}
	}
	return out
}

// pubRecord is what publishing one workload event returned.
type pubRecord struct {
	seq      uint64
	dup      bool
	attempts int
	at       time.Time
}

func (w *workload) record(i int, ack *jetstream.PubAck, attempts int) {
	if w.acks == nil || ack == nil {
		return
	}
	w.acks[i] = pubRecord{seq: ack.Sequence, dup: ack.Duplicate, attempts: attempts, at: time.Now()}
}

// diagnose logs, for up to n friends whose state differs from want,
// everything that tells where an update was lost: the workload's events
// for the friend in version order with their PubAcks, the partition
// stream's copy of each (sequence, publish time), the friend's partition
// consumer state, the last-applied versions in Redis, and the simulator's
// journal of writes for that friend.
func (c *cluster) diagnose(want map[friendKey]vendorsim.Friend, n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []friendKey
	for k, f := range want {
		if got, ok := apps.Friend(c.sim, k); !ok || !prooftest.SameFriend(got, f) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b friendKey) int {
		return strings.Compare(a.App+"/"+a.From+"/"+a.To, b.App+"/"+b.From+"/"+b.To)
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	var rdb *redis.Client
	if opt, err := redis.ParseURL(c.redisURL); err == nil {
		rdb = redis.NewClient(opt)
		defer rdb.Close()
	}
	w := c.published
	for _, k := range keys {
		var b strings.Builder
		app := apps.Find(k.App)
		got, ok := apps.Friend(c.sim, k)
		part := event.Partition(k.App, k.From, partitions)
		fmt.Fprintf(&b, "DIAGNOSIS %s/%s→%s (partition %d)\n  want %s\n  got  %s (stored %t)\n", k.App, k.From, k.To, part,
			prooftest.Brief(want[k]), prooftest.Brief(got), ok)
		// Both lanes of the partition share its stream; sequences are that
		// stream's.
		stream, serr := c.js.Stream(ctx, c.layout.PartitionStream(part))
		if serr != nil {
			fmt.Fprintf(&b, "  stream %s: %v\n", c.layout.PartitionStream(part), serr)
		}
		if w != nil {
			var idx []int
			for i := range w.Events {
				if ev := &w.Events[i].Ev; ev.App == k.App && ev.From == k.From && ev.To == k.To {
					idx = append(idx, i)
				}
			}
			slices.SortFunc(idx, func(a, b int) int { return int(w.Version(a) - w.Version(b)) })
			for _, i := range idx {
				p := &w.Events[i]
				fmt.Fprintf(&b, "  event #%d id %s lane %s ts %d model-version %d: %s\n", i, p.Ev.ID, p.Lane, p.Ev.TS,
					w.Version(i), fieldsOf(&p.Ev))
				if i < len(w.acks) && w.acks[i].seq != 0 {
					a := w.acks[i]
					fmt.Fprintf(&b, "    puback seq %d duplicate %t attempts %d at %s\n", a.seq, a.dup, a.attempts,
						a.at.Format("15:04:05.000"))
					if serr == nil {
						if m, err := stream.GetMsg(ctx, a.seq); err != nil {
							fmt.Fprintf(&b, "    %s seq %d: %v\n", stream.CachedInfo().Config.Name, a.seq, err)
						} else {
							fmt.Fprintf(&b, "    %s seq %d: subject %s published %s id %s\n", stream.CachedInfo().Config.Name, m.Sequence, m.Subject,
								m.Time.Format("15:04:05.000000"), m.Header.Get(jetstream.MsgIDHeader))
						}
					}
				}
			}
		}
		for _, lane := range []event.Lane{event.LaneLive, event.LaneBulk} {
			cons, err := c.js.Consumer(ctx, c.layout.PartitionStream(part), jobs.ConsumerName(lane, part))
			if err != nil {
				fmt.Fprintf(&b, "  consumer %s/%d: %v\n", lane, part, err)
				continue
			}
			ci, err := cons.Info(ctx)
			if err != nil {
				fmt.Fprintf(&b, "  consumer %s/%d: %v\n", lane, part, err)
				continue
			}
			fmt.Fprintf(&b, "  consumer %s: delivered stream seq %d, ack floor stream seq %d, pending %d, ack pending %d, redelivered %d\n",
				ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
		if rdb != nil {
			vs, err := rdb.HGetAll(ctx, c.redisPrefix+"v:"+k.App+":"+k.From).Result()
			if err != nil {
				fmt.Fprintf(&b, "  versions: %v\n", err)
			}
			for _, f := range slices.Sorted(maps.Keys(vs)) {
				if strings.HasPrefix(f, k.To+"/") {
					fmt.Fprintf(&b, "  version %s = %s\n", f, vs[f])
				}
			}
		}
		for _, jw := range c.journal.of(app.Vendor, app.SimID, k.From, k.To) {
			fmt.Fprintf(&b, "  vendor write %s–%s fail %q: %s\n", jw.Started.Format("15:04:05.000"),
				jw.Ended.Format("15:04:05.000"), jw.Fail, fieldsOf(&event.Event{Remark: jw.Remark, Groups: jw.Groups, Attrs: jw.Attrs}))
		}
		c.t.Log(b.String())
	}
}

// fieldsOf renders the fields an event (or a vendor write) sets.
func fieldsOf(ev *event.Event) string {
	var parts []string
	if ev.Remark != nil {
		parts = append(parts, fmt.Sprintf("remark=%q", *ev.Remark))
	}
	if ev.Groups != nil {
		parts = append(parts, fmt.Sprintf("groups=%q", *ev.Groups))
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Attrs)) {
		parts = append(parts, fmt.Sprintf("attr:%s=%q", k, ev.Attrs[k]))
	}
	return strings.Join(parts, " ")
}
