package queue

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHeartbeat checks, on a fake clock, that held messages get InProgress
// every HeartbeatInterval until settled, and not after MaxHold.
func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{AckWait: 3 * time.Second, HeartbeatInterval: time.Second, MaxHold: 5 * time.Second}.withDefaults()
		m := NewMetrics(prometheus.NewRegistry())
		c := &Consumer{cfg: cfg, log: slog.New(slog.DiscardHandler), m: m, parts: map[int]*partition{}}
		c.settler = &settler{cfg: cfg, log: c.log, m: m, now: time.Now, rand: func() float64 { return 0.5 }}
		pt := &partition{held: map[uint64]*held{}}
		c.parts[0] = pt

		settledLog, heldLog := &callLog{}, &callLog{}
		settleMe := newHeld(settledLog, 1)
		settleMe.meta.Seq = 1
		holdMe := newHeld(heldLog, 1)
		holdMe.meta.Seq = 2
		for _, h := range []*held{settleMe, holdMe} {
			h.received = time.Now()
			h.release = pt.release
			pt.hold(h)
		}

		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { c.every(ctx, cfg.HeartbeatInterval, c.heartbeat) })

		time.Sleep(2*time.Second + 500*time.Millisecond) // ticks at 1s, 2s
		synctest.Wait()
		c.settler.settle(settleMe, jobs.Outcome{Kind: jobs.Applied}, false)
		time.Sleep(8 * time.Second) // ticks at 3s..10s; MaxHold (5s) ends holdMe's heartbeats after the tick at 5s
		synctest.Wait()
		cancel()
		wg.Wait()

		if got := settledLog.count("in_progress"); got != 2 {
			t.Errorf("settled message: %d heartbeats, want 2 (before its settle only)", got)
		}
		if got := settledLog.count("ack"); got != 1 {
			t.Errorf("settled message: %d acks, want 1", got)
		}
		if got := heldLog.count("in_progress"); got != 5 {
			t.Errorf("held message: %d heartbeats, want 5 (ticks at 1..5s, none beyond MaxHold)", got)
		}
		if got := testutil.ToFloat64(m.inProgress); got != 7 {
			t.Errorf("in_progress_total = %v, want 7", got)
		}
	})
}

// TestObserveStranded checks the sweeper's candidate rules on fixed times.
func TestObserveStranded(t *testing.T) {
	c := &Consumer{cfg: Config{StrandedAfter: time.Minute}, candidates: map[msgKey]candidate{}}
	t0 := time.Now()
	a1, b1, a2 := msgKey{0, 1}, msgKey{1, 1}, msgKey{0, 2}
	if c.observe(a1, true, 1, t0) {
		t.Fatal("a definite candidate is due on its first sighting")
	}
	if !c.observe(a1, true, 2, t0.Add(time.Second)) {
		t.Fatal("a definite candidate is not due on its second sighting")
	}
	// Sequences are per partition stream: seq 1 of partition 1 is another message.
	if c.observe(b1, true, 2, t0.Add(time.Second)) {
		t.Fatal("partition 1's seq 1 is due on its first sighting: it shared partition 0's")
	}
	if c.observe(a2, false, 1, t0) || c.observe(a2, false, 2, t0.Add(59*time.Second)) {
		t.Fatal("a busy-consumer candidate is due before StrandedAfter")
	}
	c.forget(a2) // delivered again: the clock restarts
	if c.observe(a2, false, 3, t0.Add(61*time.Second)) {
		t.Fatal("a candidate is due right after a delivery reset it")
	}
	if !c.observe(a2, false, 4, t0.Add(122*time.Second)) {
		t.Fatal("a busy-consumer candidate is not due after StrandedAfter")
	}
}

// TestHeartbeatOnlyWhenDue checks, on a fake clock, that InProgress goes
// only to messages whose AckWait clock is at least beatAfter old, that a
// message settled before then gets none, and that a message held for a
// long time never goes AckWait without one (the gap from its pull and
// between its beats stays below AckWait − HeartbeatInterval).
func TestHeartbeatOnlyWhenDue(t *testing.T) {
	for _, tc := range []struct {
		name              string
		ackWait, interval time.Duration
		wantAfter         time.Duration
	}{
		{"defaults", 60 * time.Second, 0, 30 * time.Second},
		{"AckWait/3", 60 * time.Second, 20 * time.Second, 20 * time.Second},
		{"short interval", 60 * time.Second, 5 * time.Second, 30 * time.Second},
		{"long interval", 10 * time.Second, 6 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{AckWait: tc.ackWait, HeartbeatInterval: tc.interval, MaxHold: time.Hour}.withDefaults()
				if got := cfg.beatAfter(); got != tc.wantAfter {
					t.Fatalf("beatAfter = %s, want %s", got, tc.wantAfter)
				}
				m := NewMetrics(prometheus.NewRegistry())
				c := &Consumer{cfg: cfg, log: slog.New(slog.DiscardHandler), m: m, parts: map[int]*partition{}}
				c.settler = &settler{cfg: cfg, log: c.log, m: m, now: time.Now, rand: func() float64 { return 0.5 }}
				pt := &partition{held: map[uint64]*held{}}
				c.parts[0] = pt

				ctx, cancel := context.WithCancel(t.Context())
				var wg sync.WaitGroup
				wg.Go(func() { c.every(ctx, cfg.HeartbeatInterval, c.heartbeat) })

				// Messages arrive at odd offsets from the ticks; "quick"
				// ones are settled well within beatAfter, "slow" ones are
				// held for ten AckWaits.
				type tracked struct {
					h      *held
					log    *beatLog
					pulled time.Time
				}
				var slow []tracked
				var quick []*callLog
				start := time.Now()
				for i := range 7 {
					time.Sleep(cfg.HeartbeatInterval/7 + time.Duration(i)*time.Millisecond)
					for _, kind := range []string{"slow", "quick"} {
						bl := &beatLog{}
						h := newHeld(&bl.callLog, 1)
						h.msg = &beatMsg{fakeMsg: h.msg.(*fakeMsg), log: bl}
						h.meta.Seq = uint64(2*i + len(kind))
						pulled := time.Now().Add(-time.Millisecond) // the pull was sent just before
						h.received, h.beat, h.release = time.Now(), pulled, pt.release
						pt.hold(h)
						if kind == "slow" {
							slow = append(slow, tracked{h, bl, pulled})
						} else {
							quick = append(quick, &bl.callLog)
							go func() {
								time.Sleep(cfg.beatAfter()/2 + time.Millisecond)
								c.settler.settle(h, jobs.Outcome{Kind: jobs.Applied}, false)
							}()
						}
					}
				}
				time.Sleep(10*tc.ackWait - time.Since(start))
				synctest.Wait()
				cancel()
				wg.Wait()

				for i, l := range quick {
					if tc.wantAfter > 0 && l.count("in_progress") != 0 {
						t.Errorf("quick message %d: %d heartbeats, want none (settled within beatAfter)", i, l.count("in_progress"))
					}
					if l.count("ack") != 1 {
						t.Errorf("quick message %d: %d acks, want 1", i, l.count("ack"))
					}
				}
				// With beatAfter 0 every tick beats (gap one interval);
				// otherwise the gap stays one interval below AckWait.
				limit := cfg.HeartbeatInterval
				if tc.wantAfter > 0 {
					limit = cfg.AckWait - cfg.HeartbeatInterval
				}
				if limit >= cfg.AckWait {
					t.Fatalf("limit %s not below AckWait %s", limit, cfg.AckWait)
				}
				for i, s := range slow {
					last := s.pulled
					beats := s.log.times()
					for _, at := range beats {
						if gap := at.Sub(last); gap > limit {
							t.Errorf("slow message %d: %s without InProgress, want at most %s", i, gap, limit)
						}
						last = at
					}
					if gap := time.Now().Sub(last); gap > limit {
						t.Errorf("slow message %d: %s without InProgress at the end, want at most %s", i, gap, limit)
					}
					// Fewer beats than ticks when beatAfter exceeds an
					// interval; one per tick when it is 0.
					ticks := int(time.Now().Sub(s.pulled) / cfg.HeartbeatInterval)
					if tc.wantAfter > cfg.HeartbeatInterval && len(beats) > ticks/2+1 {
						t.Errorf("slow message %d: %d heartbeats in %d ticks, want at most every other tick", i, len(beats), ticks)
					}
					if tc.wantAfter == 0 && (len(beats) < ticks-1 || len(beats) > ticks+1) {
						t.Errorf("slow message %d: %d heartbeats in %d ticks, want one per tick", i, len(beats), ticks)
					}
				}
			})
		})
	}
}

// beatLog records when InProgress was called.
type beatLog struct {
	callLog
	at []time.Time
}

func (l *beatLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// beatMsg is a fakeMsg whose InProgress calls are timed.
type beatMsg struct {
	*fakeMsg
	log *beatLog
}

func (m *beatMsg) InProgress() error {
	m.log.mu.Lock()
	m.log.at = append(m.log.at, time.Now())
	m.log.mu.Unlock()
	return m.fakeMsg.InProgress()
}
