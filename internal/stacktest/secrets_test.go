package stacktest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/enqueue"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/producer"
)

// The configured secrets of TestNoSecretLeaks: distinctive values, the
// passwords with characters a URL must escape. The Volcengine access key
// is not among them: it is an identifier sent in clear in every request's
// Authorization header (the secret key signs).
const (
	leakTencentKey   = "leakcheck-TENCENT-key-7f3a9c1e5b2d4f6a8c0e"
	leakWrongKey     = "leakcheck-WRONG-tencent-key-c4d2e8f1a3b5"
	leakVolcSK       = "leakcheck-VOLC-secret-9e8d7c6b5a4f3e2d1c0b"
	leakZegoSecret   = "leakZEGOsecret0123456789abcdefAB" // 32 bytes, the ZEGO format
	leakRedisPass    = "leak/Redis+pass@word:9f8e7d6c"
	leakNATSPass     = "leak/NATS+pass@word:1a2b3c4d"
	leakNATSBadPass  = "leak/NATS+mistyped@pw:5e6f7a8b"
	leakNATSUser     = "fsworker"
	leakTencentApp   = 1400000301
	leakTencentBad   = 1400000302
	leakTencentAdmin = "administrator"
	leakVolcAK       = "AKLTleakcheckAccessKey"
	leakVolcAppID    = 616161
	leakZegoAppID    = 51515
)

// leakDump keeps what TestNoSecretLeaks scanned, for a look at it:
// go test ./internal/stacktest -run TestNoSecretLeaks -args -leak.dump=/tmp/leak
var leakDump = flag.String("leak.dump", "", "write every text TestNoSecretLeaks scans to files in this directory")

// TestNoSecretLeaks runs a full system with credentials everywhere and
// scans every text it produced for any configured secret, raw or encoded
// (see leakForms): the worker (cmd/worker as a subprocess, debug logs, its
// masked configuration print at start) with vendor profiles for the three
// vendors, a Redis with a password and a NATS server with a user and
// password; the simulator (its own log); and the enqueue command (publish
// with a reject file, dlq list, a mistyped NATS password). The run goes
// through the error paths that log the most: a wrong Tencent key (signature
// rejected, re-signed, then dead-lettered), 5xx answers, timeouts and
// transient codes (retries), ZEGO throttling, poison messages (dead
// letters), a NATS restart (disconnect, reconnect) and a Redis restart.
// Scanned: every line of the worker's stdout and stderr, /metrics,
// /healthz, /readyz, /ui/ and /ui/api/stats, every DLQ entry (subject,
// headers, data), enqueue's output, its reject and checkpoint files, and
// the simulator's log.
func TestNoSecretLeaks(t *testing.T) {
	secrets := []secret{
		{"tencent key", leakTencentKey},
		{"tencent key of app tbad (wrong)", leakWrongKey},
		{"volc secret key", leakVolcSK},
		{"zego server secret", leakZegoSecret},
		{"redis password", leakRedisPass},
		{"nats password", leakNATSPass},
		{"nats password (mistyped)", leakNATSBadPass},
	}
	forms := leakForms(secrets)
	out := newCollector()
	name := strings.ToLower(testenv.Unique("leak"))
	layout := event.Layout{Base: name}
	dir := t.TempDir()

	// NATS with a user and password; Redis with a password.
	natsOpts := &server.Options{JetStream: true, Username: leakNATSUser, Password: leakNATSPass}
	srv := testenv.StartNATSServerWith(t, natsOpts)
	natsAt := func(pass string) string {
		return (&url.URL{Scheme: "nats", User: url.UserPassword(leakNATSUser, pass), Host: "127.0.0.1:" + strconv.Itoa(natsOpts.Port)}).String()
	}
	natsURL := natsAt(leakNATSPass)
	rs := testenv.StartRedisServerWithPassword(t, leakRedisPass)

	// The simulator: the right keys (app tbad's profile has a wrong one),
	// 5xx and hangs at Volcengine, transient codes at Tencent, a ZEGO QPS
	// far below the worker's budget.
	sim, err := vendorsim.New(vendorsim.Config{
		Tencent: map[uint64]vendorsim.TencentApp{
			leakTencentApp: {Key: leakTencentKey, Admin: leakTencentAdmin},
			leakTencentBad: {Key: leakTencentKey, Admin: leakTencentAdmin},
		},
		Volc:    map[string]vendorsim.VolcAccount{leakVolcAK: {SecretKey: leakVolcSK, AppIDs: []int64{leakVolcAppID}}},
		Zego:    map[uint32]string{leakZegoAppID: leakZegoSecret},
		ZegoQPS: 3,
		Faults: map[event.Vendor]vendorsim.FaultSpec{
			event.Volc:    {HTTP5xxRate: 0.15, TimeoutRate: 0.05, Seed: 5},
			event.Tencent: {ErrorRates: map[string]float64{"30006": 0.1}, Seed: 6},
		},
		Logger: slog.New(slog.NewJSONHandler(out.writer("simulator log"), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	// The profiles: secrets from the environment, a file and inline.
	zegoFile := filepath.Join(dir, "zego.secret")
	writeTestFile(t, zegoFile, leakZegoSecret+"\n")
	profiles := filepath.Join(dir, "profiles.yaml")
	writeTestFile(t, profiles, fmt.Sprintf(`apps:
  tx:
    vendor: tencent
    timeout: 1s
    tencent: {base_url: "%[1]s/tencent", sdkappid: %[2]d, identifier: %[4]s, key: {env: LEAK_TENCENT_KEY}}
  tbad:
    vendor: tencent
    timeout: 1s
    tencent: {base_url: "%[1]s/tencent", sdkappid: %[3]d, identifier: %[4]s, key: {value: %[5]q}}
  vc:
    vendor: volc
    timeout: 1s
    volc: {base_url: "%[1]s/volc", access_key: %[6]s, app_id: %[7]d, send_alias: true, secret_key: {env: LEAK_VOLC_SECRET}}
    budget: {rate: 50, burst: 5}
  zg:
    vendor: zego
    timeout: 1s
    zego: {base_url: "%[1]s/zego", app_id: %[8]d, server_secret: {file: %[9]q}}
`, simSrv.URL, leakTencentApp, leakTencentBad, leakTencentAdmin, leakWrongKey, leakVolcAK, leakVolcAppID, leakZegoAppID, zegoFile))

	// The worker, as deployed: cmd/worker configured by environment.
	bin := buildWorker(t, dir)
	httpAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"FRIENDSYNC_WORKER_ID=leak-w1",
		"FRIENDSYNC_NAME=" + name,
		"FRIENDSYNC_NATS_URL=" + natsURL,
		"FRIENDSYNC_REDIS_URL=" + rs.URL(),
		"FRIENDSYNC_REDIS_PREFIX=" + name + ":",
		"FRIENDSYNC_PROFILES=" + profiles,
		"FRIENDSYNC_DEMO=false",
		"FRIENDSYNC_HTTP_ADDR=" + httpAddr,
		"FRIENDSYNC_PARTITIONS=4",
		"FRIENDSYNC_ACK_WAIT=6s",
		"FRIENDSYNC_MAX_DELIVER=3",
		"FRIENDSYNC_GRACE=20ms",
		"FRIENDSYNC_MAX_DELAY=200ms",
		"FRIENDSYNC_RETRY_BUDGET=2s",
		"FRIENDSYNC_LEASE_TTL=6s",
		"FRIENDSYNC_LEASE_FAILOVER=900ms",
		"FRIENDSYNC_SHUTDOWN_TIMEOUT=5s",
		"FRIENDSYNC_LOG_LEVEL=debug",
		"FRIENDSYNC_LOG_FORMAT=json",
		"LEAK_TENCENT_KEY=" + leakTencentKey,
		"LEAK_VOLC_SECRET=" + leakVolcSK,
	}
	cmd.Stdout, cmd.Stderr = out.writer("worker stdout"), out.writer("worker stderr")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopWorker := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("worker exited after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("worker did not stop 30s after SIGTERM")
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
		}
	})
	eventually(t, 60*time.Second, "worker ready", func() error {
		select {
		case err := <-exited:
			t.Fatalf("worker exited at start (%v):\n%s", err, prooftest.LastLines(out.text("worker stderr"), 30))
		default:
		}
		return httpOK("http://" + httpAddr + "/readyz")
	})

	// Traffic: events for every app, poison messages, and a backfill
	// through enqueue with invalid lines.
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]event.Rules{"tx": {Vendor: event.Tencent}, "tbad": {Vendor: event.Tencent},
		"vc": {Vendor: event.Volc, VolcAlias: true}, "zg": {Vendor: event.Zego}}
	publish := func(round int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := producer.New(ctx, nc, producer.Config{Layout: layout, Apps: rules})
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		for a := range 20 {
			r := "r" + strconv.Itoa(round) + "_" + strconv.Itoa(a)
			evs = append(evs,
				event.Event{App: "tx", From: "u" + strconv.Itoa(a), To: "f" + strconv.Itoa(a), Remark: &r, Attrs: map[string]string{"Level": r}},
				event.Event{App: "vc", From: strconv.Itoa(10_000_000 + a), To: strconv.Itoa(20_000_000 + a), Remark: &r})
			if a < 3 {
				evs = append(evs, event.Event{App: "tbad", From: "b" + strconv.Itoa(a), To: "f" + strconv.Itoa(a), Remark: &r})
			}
			if a < 8 {
				evs = append(evs, event.Event{App: "zg", From: "z" + strconv.Itoa(a), To: "zf" + strconv.Itoa(a), Remark: &r,
					Attrs: map[string]string{"k0": r}})
			}
		}
		for i := range evs {
			if _, err := p.PublishAsync(&evs[i]); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatalf("publish: %v", err)
		}
		long := strings.Repeat("x", event.TencentMaxRemarkBytes+10)
		for id, data := range map[string][]byte{
			"poison-garbage-" + strconv.Itoa(round): []byte(`{"app": "tx", "from": "u1", "to": `),
			"poison-remark-" + strconv.Itoa(round): []byte(`{"id":"poison-remark-` + strconv.Itoa(round) +
				`","app":"tx","from":"u2","to":"f2","remark":"` + long + `"}`),
		} {
			m := nats.NewMsg(layout.SubjectFor(&event.Event{App: "tx", From: "u1"}, event.LaneLive, 4))
			m.Data = data
			m.Header.Set(jetstream.MsgIDHeader, id)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatalf("publish poison: %v", err)
			}
		}
	}
	publish(1)

	runEnqueue := func(label string, env map[string]string, args ...string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var stdout, stderr bytes.Buffer
		code := enqueue.Run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		out.add("enqueue "+label+" stdout", stdout.String())
		out.add("enqueue "+label+" stderr", stderr.String())
		return code
	}
	enqEnv := map[string]string{"FRIENDSYNC_NATS_URL": natsURL, "FRIENDSYNC_PROFILES": profiles, "FRIENDSYNC_NAME": name}
	backfill := filepath.Join(dir, "backfill.ndjson")
	var lines []string
	for a := range 30 {
		lines = append(lines, fmt.Sprintf(`{"id":"bf-%d","app":"vc","from":"%d","to":"%d","remark":"bf%d"}`, a, 10_000_100+a, 20_000_100+a, a))
	}
	lines = append(lines, `{"id":"bad-1","app":"nosuchapp","from":"u1","to":"f1","remark":"x"}`, `{not json`,
		`{"id":"bad-3","app":"tx","from":"u1","remark":"no to"}`)
	writeTestFile(t, backfill, strings.Join(lines, "\n")+"\n")
	rejects := filepath.Join(dir, "backfill.rejects")
	if code := runEnqueue("publish", enqEnv, "publish", "--skip-invalid", "--reject-file", rejects, "--progress", "off", backfill); code != enqueue.ExitOK {
		t.Errorf("enqueue publish: exit %d:\n%s", code, out.text("enqueue publish stderr"))
	}
	badEnv := map[string]string{"FRIENDSYNC_NATS_URL": natsAt(leakNATSBadPass), "FRIENDSYNC_NAME": name}
	if code := runEnqueue("wrong password", badEnv, "dlq", "list", "--timeout", "2s"); code != enqueue.ExitNATS {
		t.Errorf("enqueue with a wrong NATS password: exit %d, want %d", code, enqueue.ExitNATS)
	}

	// NATS restarts (disconnect, reconnect), then Redis is down for a
	// while with traffic.
	time.Sleep(time.Second)
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(time.Second)
	testenv.StartNATSServerWith(t, natsOpts) // same port and store
	eventually(t, 30*time.Second, "worker reconnected to NATS", func() error {
		if !strings.Contains(out.text("worker stderr"), "nats reconnected") {
			return errors.New("no reconnect logged")
		}
		return nil
	})
	rs.Stop() // traffic while Redis is down: limiter and version store errors
	publish(2)
	time.Sleep(2 * time.Second)
	rs.Start()

	// Let every path run: the signature rejection dead-lettered, throttles,
	// faults, poison; then nothing pending.
	dlqReasons := func() map[string]int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got := map[string]int{}
		for _, m := range dlqMessages(ctx, js, layout) {
			got[m.Header.Get(jobs.HdrReason)]++
		}
		return got
	}
	eventually(t, 120*time.Second, "every error path taken and the stream drained", func() error {
		cs := sim.Counters()
		reasons := dlqReasons()
		switch {
		case cs.Tencent.SigFailures == 0:
			return errors.New("no signature rejected yet")
		case cs.Zego.Throttles == 0:
			return errors.New("no ZEGO throttle yet")
		case cs.Volc.Faults == 0:
			return errors.New("no Volcengine fault yet")
		case reasons[jobs.ReasonVendor] < 3 || reasons[jobs.ReasonInvalid] < 4:
			return fmt.Errorf("dead letters so far: %v", reasons)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if n := prooftest.Pending(ctx, js, layout, 4); n != 0 {
			return fmt.Errorf("%d messages pending", n)
		}
		return nil
	})
	cs := sim.Counters()
	t.Logf("simulator: tencent calls %d (signature failures %d, answers %v), volc calls %d (faults %d, answers %v), zego calls %d (throttles %d)",
		cs.Tencent.Calls, cs.Tencent.SigFailures, cs.Tencent.Codes, cs.Volc.Calls, cs.Volc.Faults, cs.Volc.Codes, cs.Zego.Calls, cs.Zego.Throttles)
	t.Logf("dead letters by reason: %v", dlqReasons())

	// Every output a user or a scraper sees.
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/ui/", "/ui/api/stats"} {
		body, err := httpGet("http://" + httpAddr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
		}
		out.add("GET "+path, body)
	}
	if code := runEnqueue("dlq list", enqEnv, "dlq", "list", "--limit", "0"); code != enqueue.ExitOK {
		t.Errorf("enqueue dlq list: exit %d", code)
	}
	if code := runEnqueue("dlq list --json", enqEnv, "dlq", "list", "--limit", "0", "--json"); code != enqueue.ExitOK {
		t.Errorf("enqueue dlq list --json: exit %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	for _, m := range dlqMessages(ctx, js, layout) {
		var b strings.Builder
		fmt.Fprintf(&b, "subject %s\n", m.Subject)
		for _, k := range slices.Sorted(maps.Keys(m.Header)) {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(m.Header.Values(k), ", "))
		}
		b.Write(m.Data)
		out.add("dlq entries", b.String())
	}
	cancel()
	for _, f := range []string{rejects, backfill + ".enqueue-state"} {
		if b, err := os.ReadFile(f); err == nil {
			out.add("file "+filepath.Base(f), string(b))
		} else if f == rejects {
			t.Errorf("reject file: %v", err)
		}
	}
	stopWorker()
	stopped = true

	// The run must have produced what the scan is about.
	stderr := out.text("worker stderr")
	for _, want := range []string{"# effective configuration (secrets masked)", `"level":"DEBUG"`, "nats disconnected",
		"nats reconnected", "worker stopped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("worker output lacks %q: the run did not take that path", want)
		}
	}
	if rej := out.text("file " + filepath.Base(rejects)); strings.Count(rej, "\n") < 3 {
		t.Errorf("reject file holds %q, want the 3 invalid lines", rej)
	}
	if !strings.Contains(out.text("enqueue wrong password stderr"), "cannot reach NATS") {
		t.Errorf("enqueue with a wrong password printed %q", out.text("enqueue wrong password stderr"))
	}

	if *leakDump != "" {
		out.dump(t, *leakDump)
	}
	leaks, sizes := out.scan(forms)
	var summary []string
	for _, s := range slices.Sorted(maps.Keys(sizes)) {
		summary = append(summary, fmt.Sprintf("%s %d B", s, sizes[s]))
	}
	t.Logf("scanned %d forms of %d secrets in: %s; worker log lines %d", len(forms), len(secrets),
		strings.Join(summary, ", "), strings.Count(stderr, "\n"))
	for _, l := range leaks {
		t.Errorf("secret leaked: %s", l)
	}
}

// TestLeakScanner checks the scanner itself: each form of a secret hidden
// in a longer text is found, and a text without it is clean.
func TestLeakScanner(t *testing.T) {
	const pw = "leak/NATS+pass@word:1a2b3c4d"
	forms := leakForms([]secret{{"pw", pw}})
	cases := []struct {
		name, text string
		found      bool
	}{
		{"raw in a log line", `{"level":"INFO","msg":"connect","url":"nats://u:` + pw + `@h:4222"}`, true},
		{"url userinfo escape", "nats_url: nats://fsworker:" + url.UserPassword("u", pw).String()[2:] + "@127.0.0.1:4222", true},
		{"query escape", "dsn=redis%3A%2F%2F?password=" + url.QueryEscape(pw), true},
		{"path escape", "/v1/" + url.PathEscape(pw) + "/x", true},
		{"hex", "key=" + fmt.Sprintf("%x", pw), true},
		{"HEX", "KEY=" + fmt.Sprintf("%X", pw), true},
		{"base64 alone", base64.StdEncoding.EncodeToString([]byte(pw)), true},
		{"base64 inside a basic-auth header, offset 2", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+pw)), true},
		{"base64 after 3 bytes (offset 0)", base64.StdEncoding.EncodeToString([]byte("ab:" + pw + "tail")), true},
		{"base64url, offset 1", base64.URLEncoding.EncodeToString([]byte("x" + pw)), true},
		{"a truncated echo", "secret starts " + pw[:17] + "…", true},
		{"clean", `{"level":"INFO","msg":"nats reconnected","url":"nats://127.0.0.1:4222","redis":"redis://:xxxxx@127.0.0.1:6379/0"}`, false},
		{"a shorter fragment is not a match", "leak/NATS+pa", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaks := scanText("test", tc.text, forms)
			if got := len(leaks) > 0; got != tc.found {
				t.Errorf("found %t (%v), want %t", got, leaks, tc.found)
			}
			for _, l := range leaks {
				if strings.Contains(l.context, pw) {
					t.Errorf("the report repeats the secret: %s", l)
				}
			}
		})
	}
}

// TestConfigPrintMasksNATSCredentials: the configuration the worker prints
// at start shows where NATS is but no credential in its URL, whether a
// password or a token (a user name alone), one URL or a list.
func TestConfigPrintMasksNATSCredentials(t *testing.T) {
	const token = "leakcheck-NATS-token-0a1b2c3d4e5f"
	forms := leakForms([]secret{{"nats password", leakNATSPass}, {"nats token", token}})
	userPass := url.UserPassword(leakNATSUser, leakNATSPass).String()
	cases := []struct{ url, shows string }{
		{"nats://" + userPass + "@127.0.0.1:4222", "nats://***@127.0.0.1:4222"},
		{"nats://" + token + "@n1:4222,nats://" + token + "@n2:4222", "nats://***@n1:4222,nats://***@n2:4222"},
		{"tls://" + userPass + "@nats.example:4222, nats://n3:4222", "tls://***@nats.example:4222, nats://n3:4222"},
	}
	for _, tc := range cases {
		cfg := config.Defaults()
		cfg.NATSURL = tc.url
		var b strings.Builder
		if err := cfg.Print(&b); err != nil {
			t.Fatal(err)
		}
		for _, l := range scanText("config print", b.String(), forms) {
			t.Errorf("secret leaked: %s", l)
		}
		if !strings.Contains(b.String(), "nats_url: "+tc.shows) {
			t.Errorf("config print lacks nats_url: %s:\n%s", tc.shows, b.String())
		}
	}
}

// ---- helpers of TestNoSecretLeaks ----

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildWorker builds cmd/worker into dir.
func buildWorker(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-o", bin, "github.com/friendsync/friendsync/cmd/worker")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/worker: %v\n%s", err, b)
	}
	return bin
}

func httpGet(u string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

func httpOK(u string) error {
	_, err := httpGet(u)
	return err
}

// dlqMessages reads the whole DLQ stream (what could be read when a read
// fails: nil when the stream cannot be).
func dlqMessages(ctx context.Context, js jetstream.JetStream, l event.Layout) []*jetstream.RawStreamMsg {
	ms, _ := prooftest.ReadDLQ(ctx, js, l)
	return ms
}
