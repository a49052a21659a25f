package queue

import (
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDecide(t *testing.T) {
	const retryMax = 10 * time.Second
	backoff := func(delivered int) time.Duration { return time.Duration(delivered) * time.Second }
	mid := jobs.Meta{Delivered: 2, MaxDeliver: 5}
	last := jobs.Meta{Delivered: 5, MaxDeliver: 5}
	spare := jobs.Meta{Delivered: 6, MaxDeliver: 5}
	tests := []struct {
		name string
		o    jobs.Outcome
		m    jobs.Meta
		want action
	}{
		{"applied", jobs.Outcome{Kind: jobs.Applied}, mid, action{kind: doAck}},
		{"applied on the last delivery", jobs.Outcome{Kind: jobs.Applied}, last, action{kind: doAck}},
		{"superseded", jobs.Outcome{Kind: jobs.Superseded}, mid, action{kind: doAck}},
		{"invalid", jobs.Outcome{Kind: jobs.Invalid, Reason: "bad"}, mid, action{kind: doDLQ, reason: jobs.ReasonInvalid, detail: "bad"}},
		{"permanent", jobs.Outcome{Kind: jobs.Permanent, Reason: "refused"}, mid, action{kind: doDLQ, reason: jobs.ReasonVendor, detail: "refused"}},
		{"retry later with hint", jobs.Outcome{Kind: jobs.RetryLater, Delay: 3 * time.Second}, mid, action{kind: doNakDelay, delay: 3 * time.Second}},
		{"retry later hint capped", jobs.Outcome{Kind: jobs.RetryLater, Delay: time.Hour}, mid, action{kind: doNakDelay, delay: retryMax}},
		{"retry later backoff by delivery", jobs.Outcome{Kind: jobs.RetryLater}, mid, action{kind: doNakDelay, delay: 2 * time.Second}},
		{"retry later on the last delivery", jobs.Outcome{Kind: jobs.RetryLater, Reason: "5xx"}, last,
			action{kind: doDLQ, reason: jobs.ReasonMaxDeliver, detail: "not applied by delivery 5 of 5: 5xx"}},
		{"released", jobs.Outcome{Kind: jobs.Released}, mid, action{kind: doNak}},
		{"released with a delay (stopping, a pull still open)", jobs.Outcome{Kind: jobs.Released, Delay: 200 * time.Millisecond}, mid,
			action{kind: doNakDelay, delay: 200 * time.Millisecond}},
		{"released on the last delivery", jobs.Outcome{Kind: jobs.Released, Reason: "shutdown"}, last,
			action{kind: doDLQ, reason: jobs.ReasonMaxDeliver, detail: "released on delivery 5 of 5: shutdown"}},
		{"released on the spare delivery", jobs.Outcome{Kind: jobs.Released, Reason: "spare"}, spare,
			action{kind: doDLQ, reason: jobs.ReasonMaxDeliver, detail: "released on delivery 6 of 5: spare"}},
		{"unknown kind is retried, never final", jobs.Outcome{}, mid, action{kind: doNakDelay, delay: 2 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.o, tc.m, backoff, retryMax)
			if got != tc.want {
				t.Fatalf("decide(%v, delivered %d/%d) = %+v, want %+v", tc.o.Kind, tc.m.Delivered, tc.m.MaxDeliver, got, tc.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	const base, limit = time.Second, time.Minute
	tests := []struct {
		name      string
		delivered int
		r         float64
		want      time.Duration
	}{
		{"first delivery, no jitter", 1, 0.5, time.Second},
		{"first delivery, low jitter", 1, 0, 500 * time.Millisecond},
		{"third delivery doubles twice", 3, 0.5, 4 * time.Second},
		{"high jitter", 3, 0.99, time.Duration(float64(4*time.Second) * 1.49)},
		{"capped", 10, 0.5, limit},
		{"high jitter below the cap", 6, 0.99, time.Duration(float64(32*time.Second) * 1.49)},
		{"jitter above the cap is cut", 7, 0.99, limit},
		{"huge delivery count does not overflow", 500, 0.0, 30 * time.Second},
		{"zero delivery count is the first", 0, 0.5, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryDelay(base, limit, tc.delivered, tc.r); got != tc.want {
				t.Fatalf("retryDelay(%d, %v) = %v, want %v", tc.delivered, tc.r, got, tc.want)
			}
		})
	}
}

// newTestSettler returns a settler over a fake publisher and a held
// message over a fake Msg, both logging into one call log.
func newTestSettler(t *testing.T, pubErr error) (*settler, *fakePub, *callLog, *Metrics) {
	t.Helper()
	log := &callLog{}
	pub := &fakePub{log: log, err: pubErr}
	cfg := Config{Layout: event.Layout{Base: "unit"}, RetryBase: time.Second, RetryMax: time.Minute}.withDefaults()
	m := NewMetrics(prometheus.NewRegistry())
	s := &settler{layout: cfg.Layout, workerID: "w-1", pub: pub, cfg: cfg, log: slog.New(slog.DiscardHandler), m: m,
		now:  func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) },
		rand: func() float64 { return 0.5 }}
	return s, pub, log, m
}

func newHeld(log *callLog, delivered int) *held {
	meta := jobs.Meta{Stream: "UNIT", Subject: "unit.ev.live.0", Seq: 42, Published: time.Now(), Delivered: delivered,
		MaxDeliver: 3, Lane: event.LaneLive, MsgID: "id-1"}
	return &held{
		msg:  &fakeMsg{data: []byte(`{"app":"a"}`), log: log},
		meta: meta, eventID: "id-1", version: jobs.Version{TS: 7, Seq: 42},
	}
}

func TestSettleCallsAckOnce(t *testing.T) {
	s, _, log, m := newTestSettler(t, nil)
	var released int
	h := newHeld(log, 1)
	h.release = func(*held) { released++ }
	s.settle(h, jobs.Outcome{Kind: jobs.Applied}, false)
	s.settle(h, jobs.Outcome{Kind: jobs.Permanent}, false)
	s.settle(h, jobs.Outcome{Kind: jobs.Released}, true)
	if got := log.list(); !slices.Equal(got, []string{"ack"}) {
		t.Fatalf("calls = %v, want exactly one ack", got)
	}
	if released != 1 {
		t.Fatalf("released %d times, want 1", released)
	}
	if got := testutil.ToFloat64(m.settled.WithLabelValues("live", actionAck)); got != 1 {
		t.Fatalf("settled{ack} = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.e2eLatency); got != 1 {
		t.Fatalf("latency series = %d, want 1", got)
	}
}

func TestSettleDeadLetter(t *testing.T) {
	tests := []struct {
		name       string
		o          jobs.Outcome
		delivered  int
		wantReason string
		wantCode   string
	}{
		{"permanent", jobs.Outcome{Kind: jobs.Permanent, Reason: "vendor refused", Code: "30001", Message: "bad\r\nfriend"}, 1, jobs.ReasonVendor, "30001"},
		{"invalid", jobs.Outcome{Kind: jobs.Invalid, Reason: "event: to: empty"}, 1, jobs.ReasonInvalid, ""},
		{"retry later on the last delivery", jobs.Outcome{Kind: jobs.RetryLater, Reason: "timeout"}, 3, jobs.ReasonMaxDeliver, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, pub, log, m := newTestSettler(t, nil)
			h := newHeld(log, tc.delivered)
			s.settle(h, tc.o, false)
			if got := log.list(); !slices.Equal(got, []string{"dlq_publish", "term"}) {
				t.Fatalf("calls = %v, want the DLQ publish, then term", got)
			}
			msg := pub.msgs[0]
			if want := "unit.dlq." + tc.wantReason; msg.Subject != want {
				t.Fatalf("DLQ subject %q, want %q", msg.Subject, want)
			}
			if string(msg.Data) != `{"app":"a"}` {
				t.Fatalf("DLQ payload %q is not the original", msg.Data)
			}
			want := map[string]string{
				jobs.HdrReason: tc.wantReason, jobs.HdrOrigSubject: "unit.ev.live.0", jobs.HdrOrigSeq: "42",
				jobs.HdrDelivered: strconv.Itoa(tc.delivered), jobs.HdrWorker: "w-1", jobs.HdrTime: "2026-01-02T03:04:05.000000006Z",
				jobs.HdrVersion: jobs.Version{TS: 7, Seq: 42}.String(), jobs.HdrEventID: "id-1", jobs.HdrVendorCode: tc.wantCode,
			}
			for k, v := range want {
				if got := msg.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if msg.Header.Get(jobs.HdrDetail) == "" {
				t.Errorf("header %s is empty", jobs.HdrDetail)
			}
			if tc.o.Message != "" && msg.Header.Get(jobs.HdrVendorMessage) != "bad  friend" {
				t.Errorf("vendor message header %q: want CR/LF replaced", msg.Header.Get(jobs.HdrVendorMessage))
			}
			if pub.opts != 2 {
				t.Errorf("publish options = %d, want Msg-Id and expected stream", pub.opts)
			}
			if got := testutil.ToFloat64(m.dlq.WithLabelValues(tc.wantReason)); got != 1 {
				t.Errorf("dlq{%s} = %v, want 1", tc.wantReason, got)
			}
		})
	}
}

func TestSettleDeadLetterPublishFails(t *testing.T) {
	s, _, log, m := newTestSettler(t, errors.New("no responders"))
	h := newHeld(log, 1)
	s.settle(h, jobs.Outcome{Kind: jobs.Permanent, Reason: "x"}, false)
	if got := log.list(); !slices.Equal(got, []string{"dlq_publish", "nak_delay"}) {
		t.Fatalf("calls = %v, want a failed publish then nak_delay, never term", got)
	}
	if log.delay != time.Second {
		t.Fatalf("nak delay %v, want the backoff of delivery 1 (1s)", log.delay)
	}
	if got := testutil.ToFloat64(m.dlqErrors); got != 1 {
		t.Fatalf("dlq errors = %v, want 1", got)
	}
}

func TestHeaderValue(t *testing.T) {
	long := strings.Repeat("é", maxHeaderValue)
	tests := []struct{ name, in, want string }{
		{"plain", "hello", "hello"},
		{"newlines", "a\r\nb\n", "a  b"},
		{"nul", "a\x00b", "a b"},
		{"trimmed", "  x  ", "x"},
		{"cut at a rune boundary", long, strings.Repeat("é", maxHeaderValue/2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := headerValue(tc.in); got != tc.want {
				t.Fatalf("headerValue(%.20q) = %.20q, want %.20q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzHeaderValue(f *testing.F) {
	f.Add("a\r\nb")
	f.Add(strings.Repeat("€", 600))
	f.Fuzz(func(t *testing.T, s string) {
		v := headerValue(s)
		if strings.ContainsAny(v, "\r\n\x00") || len(v) > maxHeaderValue {
			t.Fatalf("headerValue(%q) = %q: not a safe header value", s, v)
		}
		if utf8.ValidString(s) && !utf8.ValidString(v) {
			t.Fatalf("headerValue(%q) = %q: broke UTF-8", s, v)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero is valid", Config{}, ""},
		{"short ack wait", Config{AckWait: 100 * time.Millisecond}, "ack wait"},
		{"heartbeat not below ack wait", Config{AckWait: 2 * time.Second, HeartbeatInterval: 2 * time.Second}, "heartbeat"},
		{"too many partitions", Config{Partitions: event.MaxPartitions + 1}, "partitions"},
		{"duplicates beyond max age", Config{MaxAge: time.Minute, Duplicates: time.Hour}, "duplicates"},
		{"bulk share above batch", Config{FetchBatch: 4, BulkShare: 5}, "bulk share"},
		{"negative max deliver", Config{MaxDeliver: -1}, "max deliver"},
		{"retry max below base", Config{RetryBase: time.Minute, RetryMax: time.Second}, "retry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "queue: config: ") {
				t.Fatalf("Validate() = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	m.observeLatency(event.LaneLive, jobs.Applied.String(), 0.2)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
