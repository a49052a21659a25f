package queue

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureCreatesAndIsIdempotent(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		ctx := t.Context()
		l := testLayout(t, js)
		cfg := testConfig(l)

		// Several workers at once: one P, no errors.
		var wg sync.WaitGroup
		topos := make([]Topology, 4)
		errs := make([]error, 4)
		for i := range topos {
			wg.Go(func() { topos[i], errs[i] = Ensure(ctx, js, cfg) })
		}
		wg.Wait()
		for i := range topos {
			if errs[i] != nil || topos[i].Partitions != cfg.Partitions {
				t.Fatalf("concurrent Ensure %d: %+v, %v; want %d partitions", i, topos[i], errs[i], cfg.Partitions)
			}
		}
		again := ensure(t, js, cfg)
		if again.Partitions != cfg.Partitions || len(again.Warnings) != 0 {
			t.Fatalf("second Ensure: %+v, want %d partitions and no warnings", again, cfg.Partitions)
		}

		// One stream per partition, each with 1/P of the queue's limits.
		for p := range cfg.Partitions {
			s, err := js.Stream(ctx, l.PartitionStream(p))
			if err != nil {
				t.Fatal(err)
			}
			sc := s.CachedInfo().Config
			if sc.Retention != jetstream.WorkQueuePolicy || sc.Discard != jetstream.DiscardNew ||
				len(sc.Subjects) != 1 || sc.Subjects[0] != l.PartitionSubjects(p) || sc.Duplicates != DefaultDuplicates ||
				sc.MaxMsgs != cfg.MaxMsgs/2 || sc.MaxBytes != cfg.MaxBytes/2 || sc.MaxAge != DefaultMaxAge {
				t.Fatalf("event stream %d config %+v", p, sc)
			}
		}
		if names := eventStreams(t, js, l); len(names) != cfg.Partitions {
			t.Fatalf("streams holding %s: %v, want the %d partition streams", l.Subjects(), names, cfg.Partitions)
		}
		d, err := js.Stream(ctx, jobs.DLQStream(l))
		if err != nil {
			t.Fatal(err)
		}
		dc := d.CachedInfo().Config
		if dc.Retention != jetstream.LimitsPolicy || dc.Subjects[0] != jobs.DLQPrefix(l)+".>" || dc.MaxAge != DefaultDLQMaxAge {
			t.Fatalf("DLQ stream config %+v", dc)
		}
		for p := range cfg.Partitions {
			for _, lane := range lanes {
				cons, err := js.Consumer(ctx, l.PartitionStream(p), jobs.ConsumerName(lane, p))
				if err != nil {
					t.Fatalf("consumer %s: %v", jobs.ConsumerName(lane, p), err)
				}
				cc := cons.CachedInfo().Config
				wantPending := cfg.MaxAckPendingLive
				if lane == event.LaneBulk {
					wantPending = cfg.MaxAckPendingBulk
				}
				if cc.FilterSubject != l.Subject(lane, p) || cc.AckPolicy != jetstream.AckExplicitPolicy ||
					cc.AckWait != cfg.AckWait || cc.MaxDeliver != cfg.MaxDeliver+1 || cc.MaxAckPending != wantPending ||
					len(cc.BackOff) != 0 {
					t.Fatalf("consumer %s config %+v", cc.Durable, cc)
				}
			}
		}
	})
}

func TestEnsureStoresPartitionsOnce(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		cfg.Partitions = 3
		if got := ensure(t, js, cfg).Partitions; got != 3 {
			t.Fatalf("first Ensure: %d partitions, want 3", got)
		}
		cfg.Partitions = 7
		topo := ensure(t, js, cfg)
		if topo.Partitions != 3 {
			t.Fatalf("second Ensure with P=7: %d partitions, want the stored 3", topo.Partitions)
		}
		if len(topo.Warnings) != 1 || !strings.Contains(topo.Warnings[0], "configured partitions 7 ignored") {
			t.Fatalf("warnings %q, want one about the ignored partition count", topo.Warnings)
		}
		kv, err := js.KeyValue(t.Context(), l.MetaBucket())
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(t.Context(), event.PartitionsKey)
		if err != nil || string(e.Value()) != "3" || e.Revision() != 1 {
			t.Fatalf("partitions key: %v, %v; want \"3\" written once", e, err)
		}
		if _, err := js.Stream(t.Context(), l.PartitionStream(6)); err == nil {
			t.Fatal("a stream for partition 6 exists: the configured P was used")
		}
		if names := eventStreams(t, js, l); len(names) != 3 {
			t.Fatalf("event streams %v, want 3", names)
		}
	})
}

func TestEnsureRefusesConflicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		alter func(sc *jetstream.StreamConfig)
		want  []string
	}{
		{"retention", func(sc *jetstream.StreamConfig) { sc.Retention = jetstream.LimitsPolicy }, []string{"retention Limits"}},
		{"subjects and discard", func(sc *jetstream.StreamConfig) {
			sc.Subjects = []string{strings.Replace(sc.Subjects[0], "*", "live", 1)}
			sc.Discard = jetstream.DiscardOld
		}, []string{"subjects", "discard DiscardOld"}},
		{"storage", func(sc *jetstream.StreamConfig) { sc.Storage = jetstream.FileStorage }, []string{"storage File"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachServer(t, func(t *testing.T, js jetstream.JetStream) {
				l := testLayout(t, js)
				cfg := testConfig(l)
				sc := eventStreamConfig(cfg.withDefaults(), cfg.Partitions, 0)
				tc.alter(&sc)
				if _, err := js.CreateStream(t.Context(), sc); err != nil {
					t.Fatal(err)
				}
				_, err := Ensure(t.Context(), js, cfg)
				if err == nil {
					t.Fatal("Ensure accepted a conflicting stream")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				if !strings.HasPrefix(err.Error(), "queue: ensure: stream "+l.PartitionStream(0)+" ") {
					t.Errorf("error %q lacks the prefix and stream name", err)
				}
			})
		})
	}
}

func TestEnsureLimitsOnlyRise(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		cfg.MaxMsgs = 1000 // 500 per partition stream (P = 2)
		ensure(t, js, cfg)

		cfg.MaxMsgs, cfg.Duplicates = 2000, 5*time.Minute
		if topo := ensure(t, js, cfg); len(topo.Warnings) != 0 {
			t.Fatalf("raising a limit warned: %q", topo.Warnings)
		}
		cfg.MaxMsgs = 501 // 251 per stream: rounded up
		topo := ensure(t, js, cfg)
		if len(topo.Warnings) != 1 || !strings.Contains(topo.Warnings[0], "keeps max msgs 1000: the configured 251 is lower") ||
			!strings.Contains(topo.Warnings[0], "and 1 more like it") {
			t.Fatalf("warnings %q, want one (collapsed) about keeping max msgs 1000", topo.Warnings)
		}
		for p := range cfg.Partitions {
			s, err := js.Stream(t.Context(), l.PartitionStream(p))
			if err != nil {
				t.Fatal(err)
			}
			if sc := s.CachedInfo().Config; sc.MaxMsgs != 1000 || sc.Duplicates != 5*time.Minute {
				t.Fatalf("stream %d max msgs %d, duplicates %v; want 1000 and 5m", p, sc.MaxMsgs, sc.Duplicates)
			}
		}
	})
}

func TestEnsureRefusesStreamWithoutPartitionsKey(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		ensure(t, js, cfg)
		publish(t, js, l, event.LaneLive, cfg.Partitions, newEvent(t, "e1", 0, cfg.Partitions))
		if err := js.DeleteKeyValue(t.Context(), l.MetaBucket()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := Ensure(ctx, js, cfg)
		if err == nil || !strings.Contains(err.Error(), "P cannot be guessed") {
			t.Fatalf("Ensure = %v, want a refusal naming the missing key", err)
		}
	})
}

func TestEnsureRefusesOneStreamLayout(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, js jetstream.JetStream) {
		l := testLayout(t, js)
		cfg := testConfig(l)
		// The layout of earlier builds: one stream for every partition.
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
			Name: l.StreamBase(), Subjects: []string{l.Subjects()}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.MemoryStorage,
		}); err != nil {
			t.Fatal(err)
		}
		_, err := Ensure(t.Context(), js, cfg)
		if err == nil {
			t.Fatal("Ensure accepted the one-stream layout")
		}
		for _, w := range []string{"stream " + l.StreamBase() + " (0 messages)", "one-stream layout", "nats stream rm " + l.StreamBase()} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if names := eventStreams(t, js, l); len(names) != 1 {
			t.Fatalf("event streams %v: Ensure created streams next to the old one", names)
		}
	})
}
