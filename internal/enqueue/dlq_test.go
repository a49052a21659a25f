package enqueue

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
)

type dlqFixture struct {
	reason  string
	payload string
	version string // Friendsync-Version
	code    string
	detail  string
}

const (
	origTS    = int64(1_700_000_000_000_000_000)
	payloadTS = int64(1_710_000_000_000_000_000)
)

// setupDLQ creates the DLQ stream of l the way the worker does and fills it
// with entries 1..4.
func setupDLQ(t *testing.T, js jetstream.JetStream, l event.Layout) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: jobs.DLQStream(l), Subjects: []string{jobs.DLQPrefix(l) + ".>"}, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	fixtures := []dlqFixture{
		{jobs.ReasonVendor, `{"id":"ev-1","app":"demo","from":"alice","to":"bob","remark":"Bobby"}`,
			jobs.Version{TS: origTS, Seq: 5}.String(), "30001", "friend not found"},
		{jobs.ReasonInvalid, `not json`, "", "", "decode: invalid character"},
		{jobs.ReasonMaxDeliver, `{"id":"ev-3","app":"zim","from":"u1","to":"u2","attrs":{"k0":"v"},"ts":` + strconv.FormatInt(payloadTS, 10) + `}`,
			jobs.Version{TS: origTS, Seq: 9}.String(), "", "not applied by the last delivery"},
		{jobs.ReasonVendor, `{"app":"demo","from":"carol","to":"dave","remark":"x"}`, "", "40001", "no version header"},
	}
	for i, f := range fixtures {
		m := nats.NewMsg(jobs.DLQSubject(l, f.reason))
		m.Data = []byte(f.payload)
		m.Header.Set(jobs.HdrReason, f.reason)
		m.Header.Set(jobs.HdrDetail, f.detail)
		m.Header.Set(jobs.HdrTime, time.Date(2024, 1, 2, 3, 4, i, 0, time.UTC).Format(time.RFC3339Nano))
		if f.code != "" {
			m.Header.Set(jobs.HdrVendorCode, f.code)
		}
		if f.version != "" {
			m.Header.Set(jobs.HdrVersion, f.version)
		}
		if strings.HasPrefix(f.payload, "{") {
			var ev event.Event
			_ = json.Unmarshal([]byte(f.payload), &ev)
			part := event.Partition(ev.App, ev.From, testPartitions)
			m.Header.Set(jobs.HdrOrigSubject, l.Subject(event.LaneLive, part))
			m.Header.Set(jobs.HdrOrigStream, l.PartitionStream(part))
			m.Header.Set(jobs.HdrEventID, ev.ID)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDLQList(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	setupDLQ(t, js, l)
	tests := []struct {
		name string
		args []string
		seqs []uint64
	}{
		{"all", nil, []uint64{1, 2, 3, 4}},
		{"by reason", []string{"-reason", "vendor"}, []uint64{1, 4}},
		{"limit", []string{"-limit", "2"}, []uint64{1, 2}},
		{"no match", []string{"-reason", "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"dlq", "list", "-json"}, natsArgs(l)...), tc.args...)
			res := invoke(t, context.Background(), hooks{}, "", nil, args...)
			if res.code != ExitOK {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var got []uint64
			for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
				if line == "" {
					continue
				}
				var en dlqEntry
				if err := json.Unmarshal([]byte(line), &en); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				got = append(got, en.Seq)
				if en.Seq == 1 && (en.Reason != "vendor" || en.VendorCode != "30001" || en.App != "demo" || en.To != "bob" || en.Detail != "friend not found" ||
					en.OrigStream != l.PartitionStream(event.Partition("demo", "alice", testPartitions))) {
					t.Errorf("entry 1: %+v", en)
				}
				if en.Seq == 2 && en.Payload != "not json" {
					t.Errorf("entry 2 keeps its raw payload: %+v", en)
				}
			}
			if len(got) != len(tc.seqs) || len(got) > 0 && got[len(got)-1] != tc.seqs[len(tc.seqs)-1] {
				t.Fatalf("seqs %v, want %v", got, tc.seqs)
			}
		})
	}
	t.Run("table", func(t *testing.T) {
		t.Parallel()
		res := invoke(t, context.Background(), hooks{}, "", nil, append([]string{"dlq", "list"}, natsArgs(l)...)...)
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if res.code != ExitOK || len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") ||
			!strings.Contains(lines[1], "2024-01-02T03:04:00Z") || !strings.Contains(lines[1], "30001") || !strings.Contains(lines[1], "demo/alice/bob") {
			t.Fatalf("exit %d:\n%s", res.code, res.stdout)
		}
	})
}

func TestDLQReplay(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	setupDLQ(t, js, l)
	args := func(extra ...string) []string {
		return append(append([]string{"dlq", "replay"}, natsArgs(l)...), extra...)
	}

	before := time.Now().UnixNano()
	res := invoke(t, context.Background(), hooks{}, "", nil, args("-seq", "1", "-delete")...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "replayed seq 1 → ") || !strings.Contains(res.stdout, "deleted from the DLQ") {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	// Replaying entry 3 twice stores it twice: each replay has a fresh id.
	for range 2 {
		if res := invoke(t, context.Background(), hooks{}, "", nil, args("-reason", "max_deliver")...); res.code != ExitOK {
			t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
		}
	}
	msgs := readAll(t, js, l)
	if len(msgs) != 3 {
		t.Fatalf("%d messages in the stream, want 3", len(msgs))
	}
	checkReplay := func(m stored, id string, ts int64) {
		t.Helper()
		rest, ok := strings.CutPrefix(m.msgID, id+"/replay/")
		n, err := strconv.ParseInt(rest, 10, 64)
		if !ok || err != nil || n < before {
			t.Errorf("Msg-Id %q, want %s/replay/<unix-nanos after the start>", m.msgID, id)
		}
		if m.ev.ID != id || m.ev.TS != ts {
			t.Errorf("replayed %+v, want id %s and the original version ts %d", m.ev, id, ts)
		}
		if want := l.SubjectFor(&m.ev, event.LaneLive, testPartitions); m.subject != want {
			t.Errorf("replayed to %s, want the original %s", m.subject, want)
		}
	}
	checkReplay(msgs[0], "ev-1", origTS) // no ts: the version header's
	checkReplay(msgs[1], "ev-3", payloadTS)
	checkReplay(msgs[2], "ev-3", payloadTS)
	if msgs[1].msgID == msgs[2].msgID {
		t.Errorf("two replays share Msg-Id %s", msgs[1].msgID)
	}

	// Entry 1 was deleted; 2 (not an event) and 4 (no version) are refused.
	res = invoke(t, context.Background(), hooks{}, "", nil, args("-all", "-dry-run")...)
	if res.code != ExitInvalid || !strings.Contains(res.stdout, "would replay 1, skipped 2") ||
		!strings.Contains(res.stderr, "seq 2: not replayed: the payload is not an event") ||
		!strings.Contains(res.stderr, "seq 4: not replayed: no ts and no usable Friendsync-Version header") {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if n := streamMsgs(t, js, jobs.DLQStream(l)); n != 3 {
		t.Fatalf("DLQ holds %d entries, want 3", n)
	}
	if n := eventMsgs(t, js, l); n != 3 {
		t.Fatalf("a dry run published: %d messages", n)
	}
}

func TestDLQMissingStream(t *testing.T) {
	t.Parallel()
	_, l := setupStream(t, nil)
	res := invoke(t, context.Background(), hooks{}, "", nil, append([]string{"dlq", "list"}, natsArgs(l)...)...)
	if res.code != ExitNATS || !strings.Contains(res.stderr, "stream "+jobs.DLQStream(l)+" not found: start a worker first") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
}
