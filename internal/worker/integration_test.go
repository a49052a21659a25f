package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// The proofs of issue 6: the worker's invariants, end to end, on the real
// NATS and Redis with the strict vendor simulator. Every test builds its
// own stream layout and Redis key prefix and removes them at cleanup.
//
// Config note: every test runs with retry_budget 2s, which before the
// worker capped deliver's RetryMax (5s) at the budget made worker.Run fail
// at start ("retry max 5s exceeds retry budget 2s").

// TestProofMixedWorkload: three workers, every vendor, remarks, groups and
// attributes with clears, several updates per field, backfill on the bulk
// lane with older ts. When the stream is drained every (app, from, to,
// field) holds the newest value written, no account had two writes in
// flight, no budget saw more calls in a 1-second window than its limit,
// and nothing was dead-lettered.
func TestProofMixedWorkload(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	startStallMonitor(t)
	accounts := *proofAccounts
	if accounts == 0 {
		accounts = 10_000
		if raceBuild {
			accounts = 3000
		}
	}
	w := newWorkload(mix{accounts: accounts, t1: 0.25, t2: 0.25, volc: 0.48, zego: 0.02, seed: 1})
	want := w.Expected()
	lanes := map[event.Lane]int{}
	withTS := 0
	for _, p := range w.Events {
		lanes[p.Lane]++
		if p.Ev.TS != 0 {
			withTS++
		}
	}

	ids := []string{"w1", "w2", "w3"}
	var workers []*inproc
	for _, id := range ids {
		workers = append(workers, c.startWorker(id))
	}
	owners := c.waitOwned(ids, 30*time.Second)
	t.Logf("leases: %v", owners)

	stopSampling := make(chan struct{})
	sampled := make(chan float64, 1)
	go func() { // the most accounts with a batch in flight at once, summed over workers
		peak := 0.0
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				sampled <- peak
				return
			case <-tk.C:
			}
			n := 0.0
			for _, wk := range workers {
				n += wk.metric("friendsync_coalesce_inflight_accounts")
			}
			peak = max(peak, n)
		}
	}()
	start := time.Now()
	pub := c.publishAll(w)
	took := c.waitApplied(want, 4*time.Minute)
	total := time.Since(start)
	close(stopSampling)
	var granted, rlErrors, waits float64
	for _, wk := range workers {
		granted += wk.metric("friendsync_ratelimit_granted_total")
		rlErrors += wk.metric("friendsync_ratelimit_errors_total")
		waits += wk.metric("friendsync_ratelimit_wait_seconds")
	}
	t.Logf("rate limiter: %.0f tokens granted, %.0f Redis errors/timeouts; peak accounts with a batch in flight (all workers): %.0f",
		granted, rlErrors, <-sampled)
	t.Logf("workload: %d events (%d live, %d bulk backfill; %d with explicit ts), %d accounts, %d friends; published in %s; applied and drained %s after the first publish (waited %s after the last ack)",
		len(w.Events), lanes[event.LaneLive], lanes[event.LaneBulk], withTS, w.Accounts(), len(want),
		pub.Round(time.Millisecond), total.Round(time.Millisecond), took.Round(time.Millisecond))

	c.checkVendorInvariants()
	if dls := c.deadLetters(); len(dls) > 0 {
		t.Errorf("%d dead letters, want none:\n%s", len(dls), describeDLQ(dls))
	}
}

// TestProofPoison: a remark over Tencent's limit published raw (bypassing
// the producer's validation), a message that is not JSON, and an event the
// vendor refuses per item with a permanent code (a custom attribute not
// configured in the console: 30001) each land in the DLQ stream with their
// reason headers, while the same account's other events are applied.
//
// Not asserted: an event for the SAME friend as the refused one (say a
// remark for f2) is merged into the refused item and dead-lettered with it,
// because the vendor refuses an item whole (reported to the lead).
func TestProofPoison(t *testing.T) {
	c := newCluster(t, clusterOpts{sim: func(cfg *vendorsim.Config) {
		cfg.Limits.TencentCustomKeys = []string{"Level", "City"} // "Rogue" is not configured
	}})
	c.startWorker("w1")
	c.waitOwned([]string{"w1"}, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := c.producer(ctx)
	const from = "u1"
	publish := func(ev event.Event) string {
		t.Helper()
		ev.App, ev.From = appT1, from
		if _, err := p.Publish(ctx, &ev); err != nil {
			t.Fatalf("publish %+v: %v", ev, err)
		}
		return ev.ID
	}
	subject := c.layout.SubjectFor(&event.Event{App: appT1, From: from}, event.LaneLive, partitions)
	publishRaw := func(id string, data []byte) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := c.js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish raw: %v", err)
		}
	}
	longRemark := strings.Repeat("x", event.TencentMaxRemarkBytes+104)
	overLimit, err := event.Encode(&event.Event{ID: "poison-remark", App: appT1, From: from, To: "f3", Remark: &longRemark})
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte(`{"app": "t1", "from": "u1", "to": `)

	publish(event.Event{To: "f1", Remark: event.Ptr("hello")})
	publishRaw("poison-remark", overLimit)
	rogueID := publish(event.Event{To: "f2", Attrs: map[string]string{"Rogue": "x"}})
	publish(event.Event{To: "f1", Groups: &[]string{"g1", "g2"}})
	publishRaw("poison-garbage", garbage)
	publish(event.Event{To: "f1", Attrs: map[string]string{"Level": "7"}})
	publish(event.Event{To: "f4", Remark: event.Ptr("another friend")})

	want := map[friendKey]vendorsim.Friend{
		{App: appT1, From: from, To: "f1"}: {Remark: "hello", Groups: []string{"g1", "g2"}, Attrs: map[string]string{"Level": "7"}},
		{App: appT1, From: from, To: "f4"}: {Remark: "another friend"},
	}
	c.waitApplied(want, time.Minute)

	var dls []deadLetter
	deadline := time.Now().Add(20 * time.Second)
	for len(dls) < 3 && time.Now().Before(deadline) {
		dls = c.deadLetters()
		time.Sleep(100 * time.Millisecond)
	}
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3:\n%s", len(dls), describeDLQ(dls))
	}
	byID := map[string]deadLetter{}
	for _, d := range dls {
		byID[d.header.Get(jobs.HdrEventID)] = d
		for _, h := range []string{jobs.HdrReason, jobs.HdrDetail, jobs.HdrOrigSubject, jobs.HdrOrigStream, jobs.HdrOrigSeq, jobs.HdrDelivered, jobs.HdrWorker, jobs.HdrTime, jobs.HdrVersion} {
			if d.header.Get(h) == "" {
				t.Errorf("dead letter %q lacks header %s", d.data, h)
			}
		}
		if got := d.header.Get(jobs.HdrOrigSubject); got != subject {
			t.Errorf("dead letter %q: orig subject %q, want %q", d.data, got, subject)
		}
		if got, want := d.header.Get(jobs.HdrOrigStream), c.layout.PartitionStream(event.Partition(appT1, from, partitions)); got != want {
			t.Errorf("dead letter %q: orig stream %q, want %q", d.data, got, want)
		}
		if got := d.header.Get(jobs.HdrWorker); got != "w1" {
			t.Errorf("dead letter %q: worker %q, want w1", d.data, got)
		}
	}
	cases := []struct {
		name, id, reason, detail, code string
		data                           []byte
	}{
		{"remark over the vendor limit", "poison-remark", jobs.ReasonInvalid, "remark", "", overLimit},
		{"not JSON", "poison-garbage", jobs.ReasonInvalid, "decode", "", garbage},
		{"vendor refuses the item", rogueID, jobs.ReasonVendor, "", "30001", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := byID[tc.id]
			if !ok {
				t.Fatalf("no dead letter for event %s:\n%s", tc.id, describeDLQ(dls))
			}
			if got := d.header.Get(jobs.HdrReason); got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
			if want := jobs.DLQSubject(c.layout, tc.reason); d.subject != want {
				t.Errorf("subject %q, want %q", d.subject, want)
			}
			if !strings.Contains(d.header.Get(jobs.HdrDetail), tc.detail) {
				t.Errorf("detail %q does not mention %q", d.header.Get(jobs.HdrDetail), tc.detail)
			}
			if got := d.header.Get(jobs.HdrVendorCode); got != tc.code {
				t.Errorf("vendor code %q, want %q", got, tc.code)
			}
			if tc.data != nil && string(d.data) != string(tc.data) {
				t.Errorf("payload %q, want the original %q", d.data, tc.data)
			}
			if n, err := strconv.Atoi(d.header.Get(jobs.HdrDelivered)); err != nil || n != 1 {
				t.Errorf("delivered %q, want 1 (dead-lettered on the first delivery)", d.header.Get(jobs.HdrDelivered))
			}
		})
	}
	c.checkVendorInvariants()
}
