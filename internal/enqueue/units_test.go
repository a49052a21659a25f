package enqueue

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
)

// TestPacerHoldsTheRate: 250 events at 100/s take 2.49 s, no 1-second
// window holds more than rate + the pacer's small burst, and idle time is
// not saved up.
func TestPacerHoldsTheRate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(100)
		start := time.Now()
		var at []time.Duration
		for range 250 {
			if err := p.wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			at = append(at, time.Since(start))
		}
		if got := at[len(at)-1]; got != 2490*time.Millisecond {
			t.Fatalf("250 events at 100/s took %v, want 2.49s", got)
		}
		for i := range at {
			j := i
			for j < len(at) && at[j]-at[i] < time.Second {
				j++
			}
			if j-i > 100 {
				t.Fatalf("%d events in the second after %v", j-i, at[i])
			}
		}
		time.Sleep(10 * time.Second) // idle
		t0 := time.Now()
		for range 11 {
			_ = p.wait(context.Background())
		}
		if got := time.Since(t0); got != 100*time.Millisecond {
			t.Fatalf("after idling, 11 events took %v, want 100ms (no saved-up burst)", got)
		}
	})
}

func TestPacerHighRateSleepsInSteps(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(100_000)
		sleeps := 0
		p.beforeSleep = func() { sleeps++ }
		start := time.Now()
		for range 100_000 {
			_ = p.wait(context.Background())
		}
		if got := time.Since(start); got < 990*time.Millisecond || got > time.Second {
			t.Fatalf("100000 events at 100000/s took %v", got)
		}
		if sleeps > 600 {
			t.Fatalf("%d sleeps: the pacer sleeps per event", sleeps)
		}
	})
}

func TestPacerUnpacedAndCancelled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := newPacer(0)
		for range 1000 {
			_ = p.wait(context.Background())
		}
		if time.Since(start) != 0 {
			t.Fatal("rate 0 paced")
		}
		ctx, cancel := context.WithCancel(context.Background())
		slow := newPacer(0.5)
		_ = slow.wait(ctx)
		go func() { time.Sleep(time.Second); cancel() }()
		if err := slow.wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait = %v, want cancelled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("cancel took effect after %v", got)
		}
	})
}

// fakeStreams are three partition streams: S_P0 steady at 10% of its
// MaxMsgs, S_P1 at a fill level that a test moves, and S_P2 empty with a
// larger limit.
type fakeStreams struct {
	msgs  atomic.Int64 // of S_P1
	calls atomic.Int64
}

func (f *fakeStreams) info(context.Context) ([]*jetstream.StreamInfo, error) {
	f.calls.Add(1)
	return []*jetstream.StreamInfo{
		{Config: jetstream.StreamConfig{Name: "S_P0", MaxMsgs: 1000, MaxBytes: -1}, State: jetstream.StreamState{Msgs: 100}},
		{Config: jetstream.StreamConfig{Name: "S_P1", MaxMsgs: 1000, MaxBytes: -1}, State: jetstream.StreamState{Msgs: uint64(f.msgs.Load())}},
		{Config: jetstream.StreamConfig{Name: "S_P2", MaxMsgs: 4000, MaxBytes: -1}},
	}, nil
}

// TestHeadroomPausesAndResumes: one partition stream over half full
// pauses the run, whatever the others hold, until it drains.

func TestHeadroomPausesAndResumes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fs := &fakeStreams{}
		var notes []string
		cfgs := []jetstream.StreamConfig{{MaxMsgs: 4000}, {MaxMsgs: 1000}, {MaxMsgs: 2000}}
		h := newHeadroom(fs.info, cfgs, func(s string) { notes = append(notes, s) })
		if h.every != 50 {
			t.Fatalf("checks every %d messages, want 50 for the smallest MaxMsgs 1000", h.every)
		}
		ctx := context.Background()
		for range 120 {
			if err := h.wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if c := fs.calls.Load(); c != 3 {
			t.Fatalf("%d checks for 120 messages, want 3 (first, 51st, 101st)", c)
		}
		fs.msgs.Store(630)
		start := time.Now()
		var pausedOn atomic.Value
		go func() {
			time.Sleep(3 * time.Second)
			pausedOn.Store(h.paused())
			fs.msgs.Store(400)
		}()
		for range 50 {
			_ = h.wait(ctx)
		}
		if got := time.Since(start); got < 3*time.Second || got > 3*time.Second+headroomPoll {
			t.Fatalf("paused for %v, want until the stream drained (3s)", got)
		}
		want := []string{"paused: stream S_P1 63% full (630 messages, 0 bytes); waiting until it is at most 50% full", "resumed: stream S_P1 40% full"}
		if !reflect.DeepEqual(notes, want) {
			t.Fatalf("notes %q, want %q", notes, want)
		}
		if got := pausedOn.Load(); got != "S_P1" || h.paused() != "" {
			t.Fatalf("paused on %q while paused, %q after, want S_P1 and \"\"", got, h.paused())
		}
		// A second passes: the next message checks again.
		fs.msgs.Store(0)
		time.Sleep(headroomInterval)
		c := fs.calls.Load()
		_ = h.wait(ctx)
		if fs.calls.Load() != c+1 {
			t.Fatal("no check after a second")
		}
	})
}

func TestHeadroomBytesAndNoLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   jetstream.StreamConfig
		state jetstream.StreamState
		want  float64
		every int
	}{
		{"no limits", jetstream.StreamConfig{MaxMsgs: -1, MaxBytes: -1}, jetstream.StreamState{Msgs: 1e9, Bytes: 1e12}, 0, 1000},
		{"bytes", jetstream.StreamConfig{MaxMsgs: -1, MaxBytes: 1 << 20}, jetstream.StreamState{Msgs: 10, Bytes: 3 << 18}, 0.75, 102},
		{"the fuller limit counts", jetstream.StreamConfig{MaxMsgs: 100, MaxBytes: 1 << 30}, jetstream.StreamState{Msgs: 60, Bytes: 10}, 0.6, 5},
		{"tiny", jetstream.StreamConfig{MaxMsgs: 4}, jetstream.StreamState{}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := fullness(&jetstream.StreamInfo{Config: tc.cfg, State: tc.state}); got != tc.want {
				t.Errorf("fullness %v, want %v", got, tc.want)
			}
			if got := checkEvery(tc.cfg); got != tc.every {
				t.Errorf("checkEvery %d, want %d", got, tc.every)
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		bar              bool
		done, total, err int64
		rate             float64
		pausedOn         string
		want             string
	}{
		{"plain", false, 25, 100, 0, 5, "", "progress: 25/100 (25.0%)  5 ev/s  ETA 15s  errors 0"},
		{"bar", true, 50, 100, 2, 10, "", "[############............] 50/100 (50.0%)  10 ev/s  ETA 5s  errors 2"},
		{"paused, unknown rate", false, 0, 10, 0, 0, "S_P3", "progress: 0/10 (0.0%)  0 ev/s  ETA ?  errors 0  PAUSED (stream S_P3 over half full)"},
		{"done", true, 10, 10, 0, 3, "", "[########################] 10/10 (100.0%)  3 ev/s  ETA 0s  errors 0"},
		{"nothing to do", false, 0, 0, 0, 0, "", "progress: 0/0 (100.0%)  0 ev/s  ETA 0s  errors 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := progressLine(tc.bar, tc.done, tc.total, tc.rate, tc.err, tc.pausedOn); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestProgressTicks: plain lines every 5 s, bar redraws every 200 ms with a
// rate from the recent window.
func TestProgressTicks(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var c counters
		var out syncBuffer
		p := newProgress(progressPlain, &out, false, 1000, &c, nil)
		p.run()
		time.Sleep(time.Second / 2) // events between the ticks
		for range 12 {
			c.published.Add(10)
			time.Sleep(time.Second)
		}
		p.stop()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "progress: 50/1000") || !strings.Contains(lines[1], "100/1000 (10.0%)  10 ev/s  ETA 1m30s") {
			t.Fatalf("plain output:\n%s", out.String())
		}

		var bar syncBuffer
		p = newProgress(progressAuto, &bar, true, 100, &c, nil)
		p.run()
		time.Sleep(time.Second + time.Millisecond)
		p.note("paused: x")
		p.stop()
		s := bar.String()
		if n := strings.Count(s, "\r["); n != 5 {
			t.Fatalf("%d redraws in a second, want 5:\n%q", n, s)
		}
		if !strings.Contains(s, "\r\x1b[Kpaused: x\n") || !strings.HasSuffix(s, "paused: x\n") {
			t.Fatalf("the note tears the bar: %q", s)
		}
		off := newProgress(progressOff, io.Discard, true, 1, &c, nil)
		off.run()
		off.stop()
	})
}

func TestEta(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		left int64
		rate float64
		want string
	}{{0, 0, "0s"}, {10, 0, "?"}, {100, 3, "33s"}, {1 << 40, 1, "?"}} {
		if got := eta(tc.left, tc.rate); got != tc.want {
			t.Errorf("eta(%d, %v) = %s, want %s", tc.left, tc.rate, got, tc.want)
		}
	}
}

func TestCheckpointSaveLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "in.ndjson.enqueue-state")
	if cp, err := loadCheckpoint(path); cp != nil || err != nil {
		t.Fatalf("missing file: %v %v", cp, err)
	}
	cp := &checkpoint{Input: "in.ndjson", Identity: "0123456789abcdef", Line: 42}
	if err := cp.save(path); err != nil {
		t.Fatal(err)
	}
	cp.Line, cp.Done = 99, true
	if err := cp.save(path); err != nil {
		t.Fatal(err)
	}
	back, err := loadCheckpoint(path)
	if err != nil || back.Line != 99 || !back.Done || back.Identity != cp.Identity {
		t.Fatalf("loaded %+v %v", back, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	for _, bad := range []string{"", "{", `{"line":3}`, `{"identity":"x","line":-1}`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadCheckpoint(path); err == nil || !strings.Contains(err.Error(), "remove it to start over") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                       "nats://127.0.0.1:4222",
		"nats://user:pass@h:4222":                     "nats://***@h:4222",
		"nats://s3cr3ttoken@h:4222,tls://u:p@h2:4443": "nats://***@h:4222,tls://***@h2:4443",
		"nats://bad%zz:pw@h":                          "(unparsable URL with credentials)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		pos  []string
		v    bool
	}{
		{[]string{"a.csv", "-v"}, []string{"a.csv"}, true},
		{[]string{"-v", "-"}, []string{"-"}, true},
		{[]string{"x", "y"}, []string{"x", "y"}, false},
		{[]string{"--", "-v"}, []string{"-v"}, false},
		{[]string{"a", "--", "-v", "b"}, []string{"a", "-v", "b"}, false},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		v := fs.Bool("v", false, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || *v != tc.v {
			t.Errorf("%q: %q v=%v %v, want %q v=%v", tc.args, pos, *v, err, tc.pos, tc.v)
		}
	}
}

func TestVendorFlagAndSeqRange(t *testing.T) {
	t.Parallel()
	v := vendorFlag{}
	for _, s := range []string{"a=tencent", "b=volc+alias", "c=zego"} {
		if err := v.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	want := vendorFlag{"a": {Vendor: event.Tencent}, "b": {Vendor: event.Volc, VolcAlias: true}, "c": {Vendor: event.Zego}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("%v", v)
	}
	for _, bad := range []string{"a", "=tencent", "a=wechat"} {
		if err := v.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, tc := range []struct {
		in       string
		from, to uint64
		ok       bool
	}{{"5", 5, 5, true}, {"3-9", 3, 9, true}, {"0", 0, 0, false}, {"9-3", 0, 0, false}, {"x", 0, 0, false}, {"1-", 0, 0, false}} {
		from, to, err := parseSeqRange(tc.in)
		if (err == nil) != tc.ok || from != tc.from || to != tc.to {
			t.Errorf("parseSeqRange(%q) = %d, %d, %v", tc.in, from, to, err)
		}
	}
}

func TestCheckerVersions(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := checker{rules: map[string]event.Rules{"demo": {Vendor: event.Tencent}}, now: now, asOf: now.Add(-time.Hour).UnixNano()}
	tests := []struct {
		name string
		ts   int64
		app  string
		err  string
		want int64
	}{
		{"no ts gets as-of", 0, "demo", "", now.Add(-time.Hour).UnixNano()},
		{"a ts is kept", now.Add(-48 * time.Hour).UnixNano(), "demo", "", now.Add(-48 * time.Hour).UnixNano()},
		{"seconds", 1_700_000_000, "demo", "ts: 1700000000 is before 2001", 0},
		{"far future", now.Add(48 * time.Hour).UnixNano(), "demo", "in the future", 0},
		{"unknown app", 0, "nope", `app: "nope" has no profile (known apps: demo)`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := event.Event{App: tc.app, From: "a", To: "b", Remark: event.Ptr("r"), TS: tc.ts}
			c.fill(&ev)
			err := c.check(&ev)
			if tc.err != "" {
				if err == nil || !strings.Contains(reason(err), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || ev.TS != tc.want {
				t.Fatalf("ts %d err %v, want %d", ev.TS, err, tc.want)
			}
		})
	}
}
