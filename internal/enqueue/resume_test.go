package enqueue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/nats-io/nats.go/jetstream"
)

const bigLines = 100_000

// bigInput writes n valid NDJSON lines.
func bigInput(t testing.TB, n int) (path, content string) {
	t.Helper()
	var b strings.Builder
	b.Grow(n * 64)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"app":"demo","from":"u%d","to":"f%d","remark":"r%d"}`+"\n", i%997, i, i)
	}
	content = b.String()
	return writeFile(t, t.TempDir(), "big.ndjson", content), content
}

// checkExactlyOnce asserts the stream holds one message per line, each
// with the line's Msg-Id and payload.
func checkExactlyOnce(t *testing.T, js jetstream.JetStream, l event.Layout, content string, n int) {
	t.Helper()
	msgs := readAll(t, js, l)
	if len(msgs) != n {
		t.Fatalf("the stream holds %d messages, want exactly %d", len(msgs), n)
	}
	prefix := "enqueue/" + identityOf(content) + "/"
	seen := make([]bool, n+1)
	for _, m := range msgs {
		line, err := strconv.Atoi(strings.TrimPrefix(m.msgID, prefix))
		if err != nil || !strings.HasPrefix(m.msgID, prefix) || line < 1 || line > n {
			t.Fatalf("unexpected Msg-Id %q", m.msgID)
		}
		if seen[line] {
			t.Fatalf("line %d stored twice", line)
		}
		seen[line] = true
		if m.ev.To != "f"+strconv.Itoa(line) || m.ev.ID != m.msgID {
			t.Fatalf("line %d: payload %+v does not match its Msg-Id", line, m.ev)
		}
	}
}

// TestResumeAfterInterruptPublishesExactlyOnce cancels a run (Ctrl-C)
// mid-way, then resumes it: every line is stored exactly once.
func TestResumeAfterInterruptPublishesExactlyOnce(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	in, content := bigInput(t, bigLines)
	args := append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", in)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := hooks{afterAck: func(n int64) bool {
		if n == 30_000 {
			cancel()
		}
		return false
	}}
	res := invoke(t, ctx, h, "", nil, args...)
	if res.code != ExitInterrupted || !strings.Contains(res.stderr, "interrupted; checkpoint "+in+".enqueue-state at line") {
		t.Fatalf("first run: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	cp, err := loadCheckpoint(in + ".enqueue-state")
	if err != nil || cp == nil || cp.Done || cp.Line < 30_000 || cp.Line >= bigLines {
		t.Fatalf("checkpoint after the interrupt: %+v %v", cp, err)
	}
	// The interrupt flushed every outstanding ack before writing the
	// checkpoint, so it covers all that is stored.
	if n := eventMsgs(t, js, l); n != uint64(cp.Line) {
		t.Errorf("after the interrupt the stream holds %d messages, the checkpoint says %d", n, cp.Line)
	}

	res = invoke(t, context.Background(), hooks{}, "", nil, append(args, "-resume")...)
	if res.code != ExitOK {
		t.Fatalf("resume: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	want := fmt.Sprintf("published %d, duplicates 0, rejected 0, skipped by resume %d", bigLines-cp.Line, cp.Line)
	if !strings.Contains(res.stdout, want) {
		t.Errorf("resume summary %q, want %q", res.stdout, want)
	}
	checkExactlyOnce(t, js, l, content, bigLines)
}

// TestResumeAfterHardKillPublishesExactlyOnce abandons a run the way
// SIGKILL does (no drain, no final checkpoint): the resume re-sends the
// lines after the last periodic checkpoint and the stream drops the ones it
// already holds.
func TestResumeAfterHardKillPublishesExactlyOnce(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	in, content := bigInput(t, bigLines)
	args := append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-checkpoint-every", "5000", in)

	// A small cache makes the publish pass read most lines again (the path
	// of inputs larger than memory).
	h := hooks{afterAck: func(n int64) bool { return n == 42_345 }, cacheBytes: 2 << 20}
	res := invoke(t, context.Background(), h, "", nil, args...)
	if res.code != 137 {
		t.Fatalf("killed run: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	cp, err := loadCheckpoint(in + ".enqueue-state")
	if err != nil || cp == nil || cp.Done || cp.Line > 42_345 {
		t.Fatalf("checkpoint after the kill: %+v %v", cp, err)
	}
	if stored := eventMsgs(t, js, l); stored < 42_345 {
		t.Fatalf("stored %d after 42345 acks", stored)
	}

	res = invoke(t, context.Background(), hooks{cacheBytes: 2 << 20}, "", nil, append(args, "-resume")...)
	if res.code != ExitOK || !strings.Contains(res.stderr, "are read and encoded again") {
		t.Fatalf("resume: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	// The lines between the checkpoint and what the killed run stored come
	// back as duplicates.
	var pub, dup, rej, skipped int
	if _, err := fmt.Sscanf(res.stdout, "published %d, duplicates %d, rejected %d, skipped by resume %d", &pub, &dup, &rej, &skipped); err != nil {
		t.Fatalf("summary %q: %v", res.stdout, err)
	}
	if skipped != cp.Line || pub+dup != bigLines-cp.Line || dup < 42_345-cp.Line {
		t.Errorf("resume: published %d, duplicates %d, skipped %d; checkpoint at %d, killed after 42345 acks", pub, dup, skipped, cp.Line)
	}
	checkExactlyOnce(t, js, l, content, bigLines)
}
