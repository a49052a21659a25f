package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/worker"
)

// TestWorkerWaitsForJetStream: a worker started before JetStream is up (a
// fresh cluster, or a server still starting) does not exit: it retries
// creating its streams and consumers and becomes ready once JetStream
// answers.
func TestWorkerWaitsForJetStream(t *testing.T) {
	port := testenv.FreePort(t)
	plain := testenv.StartNATSServerWith(t, &server.Options{Port: port}) // no JetStream yet
	c := newCluster(t, clusterOpts{natsURL: "nats://127.0.0.1:" + strconv.Itoa(port)})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, c.config("early"), worker.Deps{Logger: c.logs.logger("early"), Registry: prometheus.NewRegistry(),
			VendorTransport: c.sim.Transport(), Queue: c.queueOverrides(), Ready: ready})
	}()
	select {
	case err := <-done:
		t.Fatalf("worker exited while JetStream was not up: %v", err)
	case <-ready:
		t.Fatal("worker ready without JetStream")
	case <-time.After(1500 * time.Millisecond):
	}

	plain.Shutdown()
	plain.WaitForShutdown()
	testenv.StartNATSServer(t, testenv.ServerOptions{Port: port})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker exited after JetStream came up: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not ready 30s after JetStream came up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after a clean stop", err)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "jetstream not ready") {
		t.Errorf("no 'jetstream not ready' warning in the worker's logs:\n%s", lastLines(logs, 20))
	}
}

// TestWorkerWaitsForNATS: a worker started while its NATS server is down
// (restarted by a supervisor during an outage) keeps connecting instead of
// exiting, and becomes ready once the server is back.
func TestWorkerWaitsForNATS(t *testing.T) {
	port := testenv.FreePort(t)
	opts := testenv.ServerOptions{Port: port, StoreDir: t.TempDir()}
	first := testenv.StartNATSServer(t, opts)
	c := newCluster(t, clusterOpts{natsURL: "nats://127.0.0.1:" + strconv.Itoa(port)})
	first.Shutdown()
	first.WaitForShutdown()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, c.config("late"), worker.Deps{Logger: c.logs.Logger("late"), Registry: prometheus.NewRegistry(),
			VendorTransport: c.sim.Transport(), Queue: c.queueOverrides(), Ready: ready})
	}()
	select {
	case err := <-done:
		t.Fatalf("worker exited while NATS was down: %v", err)
	case <-ready:
		t.Fatal("worker ready without NATS")
	case <-time.After(1500 * time.Millisecond):
	}

	testenv.StartNATSServer(t, opts)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker exited after NATS came back: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not ready 30s after NATS came back")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after a clean stop", err)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "nats not reachable yet") {
		t.Errorf("no 'nats not reachable yet' warning in the worker's logs:\n%s", c.logs.Tail(20))
	}
}
