package worker_test

import (
	"syscall"
	"testing"
	"time"
)

// TestProofGracefulShutdown: SIGTERM to a worker subprocess in the middle
// of traffic. It exits 0 within its shutdown timeout; its partitions go to
// the survivor, which finishes the rest; nothing is dead-lettered or lost.
//
// Before the queue released a stopping partition's late deliveries with a
// delay, messages arriving through the stopping worker's still-open long
// poll were Nak'd straight back into that poll until MaxDeliver, and this
// test saw them dead-lettered ("released on delivery 10 of 10: partition
// stopping").
func TestProofGracefulShutdown(t *testing.T) {
	c := newCluster(t, clusterOpts{sim: simLatency})
	w := newWorkload(mix{accounts: 2000, t1: 0.3, t2: 0.3, volc: 0.37, zego: 0.03, seed: 5})
	want := w.Expected()
	victim, survivor := c.startProc("g1"), c.startProc("g2")
	c.waitOwned([]string{victim.id, survivor.id}, 30*time.Second)

	start := time.Now()
	published := c.publishInBackground(w, 15*time.Second)
	time.Sleep(4 * time.Second)
	owned, inflight := c.waitBusy(victim, 20*time.Second)
	sent := time.Now()
	victim.signal(syscall.SIGTERM)
	shutdownTimeout := time.Duration(c.config(victim.id).ShutdownTimeout)
	code, exited := victim.wait(shutdownTimeout + 10*time.Second)
	took := time.Since(sent)
	t.Logf("SIGTERM at +%s to %s holding partitions %v with %.0f accounts in flight: exited %t with code %d after %s (shutdown timeout %s)",
		sent.Sub(start).Round(time.Millisecond), victim.id, owned, inflight, exited, code, took.Round(time.Millisecond), shutdownTimeout)
	switch {
	case !exited:
		t.Fatalf("%s still running %s after SIGTERM", victim.id, took)
	case code != 0:
		t.Errorf("%s exited with code %d, want 0", victim.id, code)
	case took > shutdownTimeout+2*time.Second: // the drain deadline, plus process exit
		t.Errorf("%s took %s to exit, want about its shutdown timeout %s at most", victim.id, took, shutdownTimeout)
	}
	moved, owners := c.waitMoved(owned, victim.id, sent, time.Minute)
	t.Logf("survivor owned the partitions %s after SIGTERM: %v", moved.Round(time.Millisecond), owners)

	if err := <-published; err != nil {
		t.Fatalf("publishing: %v", err)
	}
	applied := c.waitApplied(want, 3*time.Minute)
	t.Logf("workload: %d events, %d accounts, %d friends; applied and drained %s after the first publish (%s after the last)",
		len(w.Events), w.Accounts(), len(want), time.Since(start).Round(time.Millisecond), applied.Round(time.Millisecond))
	c.checkVendorInvariants()
	if dls := c.deadLetters(); len(dls) > 0 {
		t.Errorf("%d dead letters, want none:\n%s", len(dls), describeDLQ(dls))
	}
}
