package enqueue

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

// benchPending is the in-flight bound of both benchmarks.
const benchPending = 1024

// BenchmarkEnqueuePublish runs the whole command (both passes, validation,
// checkpoints, every ack checked) on a b.N-line file. Compare with
// BenchmarkRawAsyncPublish, e.g.:
//
//	go test -run '^$' -bench 'EnqueuePublish|RawAsyncPublish' -benchtime=100000x -count 3 ./internal/enqueue/
func BenchmarkEnqueuePublish(b *testing.B) {
	_, l := setupStream(b, nil)
	in, _ := bigInput(b, b.N)
	args := append(natsArgs(l), "-profiles", profilesFile(b), "-progress", "off",
		"-max-pending", strconv.Itoa(benchPending), in)
	phases := map[string]time.Duration{}
	cpu := map[string]time.Duration{}
	h := hooks{phase: func(name string, d time.Duration) { phases[name], cpu[name] = d, cpuTime() }}
	c0 := cpuTime()
	b.ResetTimer()
	res := invoke(b, context.Background(), h, "", nil, args...)
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpu["publish"]-cpu["validate"])/float64(b.N), "publish-cpu-ns/op")
	if res.code != ExitOK {
		b.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// The passes apart: validation (parse, check, encode) and publishing.
	b.ReportMetric(phases["validate"].Seconds()*1e9/float64(b.N), "validate-ns/op")
	b.ReportMetric(float64(b.N)/phases["publish"].Seconds(), "publish-events/s")
}

// BenchmarkRawAsyncPublish publishes the same payloads (encoded in
// advance) with the same Msg-Ids, subjects and Expected-Stream headers
// through plain jetstream PublishMsgAsync with the same MaxPending, then
// waits for all acks.
func BenchmarkRawAsyncPublish(b *testing.B) {
	_, l := setupStream(b, nil)
	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		line := i + 1
		ev := event.Event{App: "demo", From: "u" + strconv.Itoa(line%997), To: "f" + strconv.Itoa(line),
			Remark: event.Ptr("r" + strconv.Itoa(line)), TS: time.Now().UnixNano()}
		ev.ID = fmt.Sprintf("enqueue/0123456789abcdef/%d", line)
		data, err := event.Encode(&ev)
		if err != nil {
			b.Fatal(err)
		}
		part := event.Partition(ev.App, ev.From, testPartitions)
		m := nats.NewMsg(l.Subject(event.LaneBulk, part))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		m.Header.Set(jetstream.ExpectedStreamHeader, l.PartitionStream(part))
		msgs[i] = m
	}
	nc := testenv.NATS(b)
	failed := 0
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(benchPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed++ }))
	if err != nil {
		b.Fatal(err)
	}
	c0 := cpuTime()
	b.ResetTimer()
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("acks missing")
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
	if failed > 0 {
		b.Fatalf("%d publishes failed", failed)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDryRun measures the validation pass alone (no NATS).
func BenchmarkDryRun(b *testing.B) {
	in, _ := bigInput(b, 100_000)
	args := []string{"-vendor", "demo=tencent", "-dry-run", "-progress", "off", in}
	b.ResetTimer()
	for range b.N {
		if res := invoke(b, context.Background(), hooks{}, "", nil, args...); res.code != ExitOK {
			b.Fatalf("exit %d: %s", res.code, res.stderr)
		}
	}
	b.ReportMetric(float64(b.N*100_000)/b.Elapsed().Seconds(), "lines/s")
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
