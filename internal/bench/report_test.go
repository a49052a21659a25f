//go:build bench

package bench

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/testenv"
)

// TestQuickReport runs the reduced report (every measurement but the Go
// micro-benchmarks, which would run go test inside go test) on the real
// NATS and Redis and asserts that the report is complete and that the
// invariants held: no 1-second window over a vendor budget, no
// overlapping writes for one account, no write conflicts, nothing lost.
// It asserts no speed: the machine is shared. It takes minutes (more
// under -race), so it is in the bench tier, outside the default test run:
//
//	go test -tags bench ./internal/bench -run TestQuickReport
//
// The same invariants are asserted in the default run by the worker proofs
// (internal/worker), and `go run ./cmd/fsbench` exits 1 when one breaks.
func TestQuickReport(t *testing.T) {
	testenv.NATS(t) // fail with the start command when a service is down
	testenv.Redis(t, "fsbench-probe:")
	only := slices.DeleteFunc(slices.Clone(Measurements), func(m string) bool { return m == MMicro })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		Quick:    true,
		Only:     only,
		NATSURL:  testenv.NATSURL(),
		RedisURL: "redis://" + testenv.RedisAddr(),
		Logger:   slog.New(slog.NewTextHandler(tlogWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.Command = "go test ./internal/bench -run TestQuickReport"
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", md.String())

	for _, f := range rep.Failures() {
		t.Errorf("invariant or measurement: %s", f)
	}
	var names []string
	for _, s := range rep.Sections {
		names = append(names, s.Name)
		if len(s.Tables) == 0 {
			t.Errorf("section %s has no figures", s.Name)
		}
		if len(s.Checks) == 0 {
			t.Errorf("section %s checks nothing against a target", s.Name)
		}
		if !strings.Contains(md.String(), "## "+s.Title) {
			t.Errorf("markdown lacks the section %q", s.Title)
		}
	}
	if !slices.Equal(names, only) {
		t.Errorf("sections %v, want %v", names, only)
	}
	for _, want := range []string{"## Machine", "## Summary", "load average"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// tlogWriter sends progress records to the test log.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
