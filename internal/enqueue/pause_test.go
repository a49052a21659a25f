package enqueue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPausesWhileStreamOverHalfFull: every line has the same sender, so
// one partition stream takes them all; with MaxMsgs 200 per partition
// stream the run stops near 100 stored messages in that stream, while the
// others are empty, and names it; a consumer draining it lets the run
// finish, and no publish ever hits the limit.
func TestPausesWhileStreamOverHalfFull(t *testing.T) {
	t.Parallel()
	const maxMsgs, lines = 200, 1000
	js, l := setupStream(t, func(_ int, c *jetstream.StreamConfig) { c.MaxMsgs = maxMsgs })
	full := l.PartitionStream(event.Partition("demo", "u1", testPartitions))
	var b strings.Builder
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&b, `{"app":"demo","from":"u1","to":"f%d","remark":"r"}`+"\n", i)
	}
	in := writeFile(t, t.TempDir(), "in.ndjson", b.String())

	var out, errw syncBuffer
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errw}
	args := append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-max-pending", "8", "-retries", "0", in)
	code := make(chan int, 1)
	go func() { code <- run(context.Background(), args, e) }()

	eventually(t, 20*time.Second, "the pause", func() bool { return strings.Contains(errw.String(), "paused: stream "+full+" ") })
	held := streamMsgs(t, js, full)
	if held <= maxMsgs/2 || held > maxMsgs/2+30 {
		t.Fatalf("paused with %d messages stored in %s, want just over %d", held, full, maxMsgs/2)
	}
	if total := eventMsgs(t, js, l); total != held {
		t.Fatalf("the other partition streams hold %d messages", total-held)
	}
	if !strings.Contains(errw.String(), "% full") {
		t.Errorf("pause line %q lacks the fill level", errw.String())
	}
	select {
	case c := <-code:
		t.Fatalf("the run ended (exit %d) instead of waiting: %s %s", c, out.String(), errw.String())
	default:
	}

	// Drain the stream; the run resumes and completes.
	s, err := js.Stream(context.Background(), full)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(context.Background(), jetstream.ConsumerConfig{Durable: "drain", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < lines {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen[m.Headers().Get(jetstream.MsgIDHeader)] = true
			if err := m.DoubleAck(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 {
			t.Fatalf("drained %d of %d; stderr: %s", len(seen), lines, errw.String())
		}
	}
	select {
	case c := <-code:
		if c != ExitOK {
			t.Fatalf("exit %d: %s %s", c, out.String(), errw.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not finish after the drain")
	}
	if !strings.Contains(errw.String(), "resumed: stream ") || !strings.Contains(out.String(), fmt.Sprintf("published %d,", lines)) {
		t.Errorf("stdout %q stderr %q", out.String(), errw.String())
	}
}
