package enqueue

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/internal/testenv"
)

// TestCurrentServer runs a publish, a resume and the DLQ commands against
// an in-process current nats-server too (the machine's is 2.9).
func TestCurrentServer(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATSServer(t, testenv.ServerOptions{})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	js, l := setupStreamOn(t, js, nil)
	setupDLQ(t, js, l)
	conn := []string{"-nats-url", srv.ClientURL(), "-name", l.Base}

	in := writeFile(t, t.TempDir(), "in.ndjson", badLines)
	args := append(conn, "-profiles", profilesFile(t), "-progress", "off", "-skip-invalid", in)
	if res := invoke(t, context.Background(), hooks{}, "", nil, args...); res.code != ExitOK || !strings.Contains(res.stdout, "published 3,") {
		t.Fatalf("publish: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if res := invoke(t, context.Background(), hooks{}, "", nil, append(args, "-resume")...); res.code != ExitOK || !strings.Contains(res.stdout, "skipped by resume 3") {
		t.Fatalf("resume: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	res := invoke(t, context.Background(), hooks{}, "", nil, append([]string{"dlq", "list", "-reason", "vendor"}, conn...)...)
	if res.code != ExitOK || strings.Count(res.stdout, "\n") != 3 {
		t.Fatalf("dlq list: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	res = invoke(t, context.Background(), hooks{}, "", nil, append([]string{"dlq", "replay", "-seq", "1", "-delete"}, conn...)...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "deleted from the DLQ") {
		t.Fatalf("dlq replay: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if n := len(readAll(t, js, l)); n != 4 {
		t.Fatalf("%d messages, want 3 published and 1 replayed", n)
	}
}
