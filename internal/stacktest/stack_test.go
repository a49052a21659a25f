package stacktest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLocalStack runs scripts/local-stack.sh (NATS, Redis, the simulator,
// two workers, Prometheus as local processes), checks through Prometheus's
// HTTP API that every target is up and the key series exist, then stops
// the script with SIGINT (Ctrl-C) and checks that every process is gone.
func TestLocalStack(t *testing.T) {
	tool(t, "nats-server", "apt-get update && apt-get install -y nats-server")
	tool(t, "redis-server", "apt-get update && apt-get install -y redis-server")
	tool(t, "prometheus", prometheusInstall)
	tool(t, "curl", "apt-get update && apt-get install -y curl")

	script, err := filepath.Abs(filepath.Join(root, "scripts", "local-stack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, "-t", "300") // bounded even if the test dies
	cmd.Env = append(os.Environ(), "DEMO_RATE=100")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &logBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	readyc := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "LOCAL_STACK_READY "); ok {
				m := map[string]string{}
				for _, f := range strings.Fields(rest) {
					k, v, _ := strings.Cut(f, "=")
					m[k] = v
				}
				readyc <- m
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			return err
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("local-stack.sh did not stop within 60s after SIGINT")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !isSignalExit(err) {
			t.Errorf("local-stack.sh: %v", err)
		}
		if t.Failed() {
			t.Logf("local-stack.sh stderr:\n%s", stderr.String())
		}
	})

	var addrs map[string]string
	select {
	case addrs = <-readyc:
	case err := <-exited:
		stopped = true
		t.Fatalf("local-stack.sh exited before ready: %v\n%s", err, stderr.String())
	case <-time.After(180 * time.Second): // includes go build on a cold cache
		t.Fatalf("local-stack.sh not ready within 180s\n%s", stderr.String())
	}
	prom := addrs["prometheus"]
	for _, k := range []string{"prometheus", "worker-1", "worker-2", "vendorsim", "nats", "redis", "dir"} {
		if addrs[k] == "" {
			t.Fatalf("ready line lacks %s: %v", k, addrs)
		}
	}

	// Every target up: both workers and Prometheus itself.
	eventually(t, 30*time.Second, "all targets up", func() error {
		var res struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
				Labels    struct {
					Job string `json:"job"`
				} `json:"labels"`
			} `json:"activeTargets"`
		}
		if err := promAPI(prom, "/api/v1/targets", nil, &res); err != nil {
			return err
		}
		up, workers := 0, 0
		for _, tg := range res.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
			if tg.Labels.Job == "friendsync-worker" {
				workers++
			}
		}
		if len(res.ActiveTargets) != 3 || workers != 2 || up != 3 {
			return fmt.Errorf("targets %+v", res.ActiveTargets)
		}
		return nil
	})

	// The key series, cluster-wide.
	for _, q := range []struct{ name, query string }{
		{"events flow", `sum(friendsync_queue_received_total) > 0`},
		{"acked", `sum(friendsync_queue_settled_total{action="ack"}) > 0`},
		{"vendor calls of the three vendors", `count(count by (vendor) (friendsync_deliver_calls_total{class="ok"} > 0)) == 3`},
		{"all partitions owned by the two workers", `sum(friendsync_lease_owned_partitions) == 32 and max(friendsync_lease_members) == 2`},
		{"no partition unowned", `max(friendsync_lease_unowned_partitions) == 0`},
		{"shared Redis limiter, not the fallback", `max(friendsync_ratelimit_fallback) == 0 and count(friendsync_ratelimit_budget_rate) == 8`},
		{"end-to-end latency histogram", `sum(friendsync_queue_e2e_latency_seconds_count) > 0`},
		{"items per call and events per item", `sum(friendsync_deliver_call_items_count) > 0 and sum(friendsync_deliver_item_events_count) > 0`},
		{"backlog gauges of both workers", `count(friendsync_queue_consumer_pending) == 4 and count(friendsync_coalesce_buffered_events) == 2`},
		{"recorded budget use", `count(friendsync:budget_use:ratio) == 4`},
		{"recorded backlog", `count(friendsync:backlog_messages:sum) == 1`},
	} {
		eventually(t, 45*time.Second, q.name, func() error {
			var res struct {
				Result []json.RawMessage `json:"result"`
			}
			if err := promAPI(prom, "/api/v1/query", url.Values{"query": {q.query}}, &res); err != nil {
				return err
			}
			if len(res.Result) == 0 {
				return fmt.Errorf("%s: no result", q.query)
			}
			return nil
		})
	}

	// The alert rules are loaded and none fires on a healthy stack.
	var rules struct {
		Groups []struct {
			Rules []struct {
				Name   string `json:"name"`
				Type   string `json:"type"`
				State  string `json:"state"`
				Health string `json:"health"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := promAPI(prom, "/api/v1/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Health == "err" {
				t.Errorf("rule %s: health %s", r.Name, r.Health)
			}
			if r.Type == "alerting" {
				alerts++
				if r.State == "firing" {
					t.Errorf("alert %s fires on a healthy stack", r.Name)
				}
			}
		}
	}
	if alerts < 5 {
		t.Errorf("%d alert rules loaded", alerts)
	}

	// Ctrl-C stops everything: every port is closed and the temp dir gone.
	if err := stop(); err != nil && !isSignalExit(err) {
		t.Fatalf("local-stack.sh after SIGINT: %v", err)
	}
	for _, k := range []string{"prometheus", "worker-1", "worker-2", "vendorsim", "nats", "redis"} {
		u, err := url.Parse(addrs[k])
		if err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s (%s) still listens after the script stopped", k, u.Host)
		}
	}
	if _, err := os.Stat(addrs["dir"]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s: %v, want removed", addrs["dir"], err)
	}
}

// isSignalExit reports an exit status of 130 (SIGINT handled by the script).
func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && ee.ExitCode() == 130
}

func promAPI(base, path string, q url.Values, data any) error {
	u := base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s %s", path, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// eventually retries f every 100 ms until it succeeds or within passes,
// failing the test with f's last error.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logBuffer collects the script's stderr (exec copies it from a
// goroutine while the test may read it).
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
