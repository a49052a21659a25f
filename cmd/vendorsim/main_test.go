package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/vendorsim"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServesAndShutsDown starts the command on a free port with faults
// and custom credentials, checks the admin API answers and the logs hold
// no secret, then cancels and expects a clean exit.
func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds.json")
	const secret = "s3cr3t-zego-server-secret"
	if err := os.WriteFile(creds, []byte(`{"zego":{"777":"`+secret+`"},"tencent":{"1400000001":{"key":"tencent-secret-key","admin":"root"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-credentials", creds, "-seed", "9",
			"-faults", `{"zego":{"error_rates":{"660000001":0.5}}}`}, &logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	resp, err := http.Get("http://" + addr + "/admin/faults?vendor=zego")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var spec vendorsim.FaultSpec
	if err := json.Unmarshal(b, &spec); err != nil || spec.Seed != 9 || spec.ErrorRates["660000001"] != 0.5 {
		t.Fatalf("faults %s (%v)", b, err)
	}
	resp, err = http.Get("http://" + addr + "/admin/counters")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var c vendorsim.Counters
	if err := json.Unmarshal(b, &c); err != nil || c.Zego.Budgets["zego:777:UpdateFriendsAlias"].Limit != 20 {
		t.Fatalf("counters %s (%v)", b, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown after 10s")
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"vendorsim: serving"`) || !strings.Contains(out, `"demo_credentials":false`) {
		t.Fatalf("logs: %s", out)
	}
	for _, s := range []string{secret, "tencent-secret-key"} {
		if strings.Contains(out, s) {
			t.Fatalf("logs leak a secret: %s", out)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad faults JSON", []string{"-faults", "{"}, "-faults"},
		{"unknown fault field", []string{"-faults", `{"tencent":{"eror_rates":{}}}`}, "eror_rates"},
		{"invalid fault spec", []string{"-faults", `{"tencent":{"timeout_rate":2}}`}, "timeout_rate"},
		{"missing credentials file", []string{"-credentials", "/nonexistent/creds.json"}, "credentials"},
		{"bad log level", []string{"-log-level", "loud"}, "log-level"},
		{"stray argument", []string{"serve"}, "unexpected arguments"},
		{"unknown flag", []string{"-port", "1"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0"}, tc.args...), &stderr, nil)
			if err == nil || !(strings.Contains(err.Error(), tc.want) || strings.Contains(stderr.String(), tc.want)) {
				t.Fatalf("err = %v, stderr %q; want %q", err, stderr.String(), tc.want)
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Fatal("ErrHelp")
			}
		})
	}
}
