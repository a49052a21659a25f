package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/queue"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// memTargetMB is the target peak RSS of a worker holding a large backlog.
const memTargetMB = 200

// memSimQPS and memRate keep the backlog in the streams: the simulator
// allows 10 calls/s, the worker's limiter 5 + 2.
const (
	memSimQPS = 10
	memRate   = 5
	memBurst  = 2
)

// tencentKeyEnv carries the simulated app's key to the subprocess.
const tencentKeyEnv = "FSBENCH_TENCENT_KEY"

func runMemory(ctx context.Context, e *env, s *Section) error {
	n, accounts := e.sc.memEvents, e.sc.memAccounts
	scaleNote := ""
	if e.opts.Quick {
		scaleNote = " (-quick: 100k events instead of 1M)"
	}
	s.Intro = fmt.Sprintf(`A backlog of %d events%s over %d Tencent accounts (uniform, remark updates) is published to the
partition streams first; then a cmd/worker subprocess (configured through FRIENDSYNC_* variables, Redis limiter,
default queue settings: 32 partitions, MaxAckPending 1000 per live consumer) consumes it against the simulator served
over HTTP (httptest) with %d calls/s and a limiter budget of %d + %d, so nearly all of the backlog stays in the streams. VmRSS
and VmHWM are read from /proc/<pid>/status every 500 ms from when the worker is ready until it holds what its
consumers allow and at least %s has passed.`,
		n, scaleNote, accounts, memSimQPS, memRate, memBurst, e.sc.memSample)

	bin := e.opts.WorkerBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "fsbench-worker-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "worker")
		if err := buildWorker(ctx, e.opts.ModuleDir, bin); err != nil {
			return err
		}
	}

	d, err := e.deploy("mem", deployOpts{sim: func(c *vendorsim.Config) { c.TencentQPS = memSimQPS }})
	if err != nil {
		return err
	}
	defer d.cleanup()
	srv := httptest.NewServer(d.sim.Handler())
	defer srv.Close()
	if err := d.ensure(ctx); err != nil {
		return err
	}

	// Publish the backlog in chunks, so this process holds one chunk.
	p, err := d.producer(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	const chunk = 20_000
	rngSeed := uint64(51)
	for off := 0; off < n; off += chunk {
		size := min(chunk, n-off)
		evs, _ := backlog(event.Tencent, distUniform, size, accounts, rngSeed+uint64(off))
		msgs := make([]*nats.Msg, size)
		for i := range evs {
			evs[i].To = friendID(event.Tencent, off+i)
			if msgs[i], err = p.Prepare(&evs[i]); err != nil {
				return err
			}
		}
		if err := publishAsync(ctx, e.nc, msgs); err != nil {
			return err
		}
	}
	pubTook := time.Since(t0)
	e.log.Info("memory: backlog published", "events", n, "took", pubTook.Round(time.Millisecond))

	// The worker subprocess.
	dir, err := os.MkdirTemp("", "fsbench-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pf := filepath.Join(dir, "profiles.yaml")
	profiles := fmt.Sprintf(`apps:
  %s:
    vendor: tencent
    tencent: {base_url: "%s/tencent", sdkappid: %d, identifier: %s, key: {env: %s}}
    budget: {rate: %d, burst: %d}
`, appTencent, srv.URL, tencentSDKAppID, tencentAdmin, tencentKeyEnv, memRate, memBurst)
	if err := os.WriteFile(pf, []byte(profiles), 0o600); err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "worker.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"FRIENDSYNC_WORKER_ID=mem1",
		"FRIENDSYNC_NAME=" + d.name,
		"FRIENDSYNC_NATS_URL=" + e.opts.NATSURL,
		"FRIENDSYNC_REDIS_URL=" + e.redis,
		"FRIENDSYNC_REDIS_PREFIX=" + d.prefix,
		"FRIENDSYNC_PROFILES=" + pf,
		"FRIENDSYNC_DEMO=false",
		"FRIENDSYNC_HTTP_ADDR=" + httpAddr,
		"FRIENDSYNC_LOG_LEVEL=warn",
		"FRIENDSYNC_SHUTDOWN_TIMEOUT=5s",
		"FRIENDSYNC_LOG_FORMAT=text",
		tencentKeyEnv + "=" + tencentKey,
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start worker: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	var stopTook time.Duration
	// The full run stops the worker with SIGTERM and reports how long its
	// graceful shutdown took; -quick kills it to save that time.
	sig := syscall.SIGTERM
	if e.opts.Quick {
		sig = syscall.SIGKILL
	}
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		t := time.Now()
		_ = cmd.Process.Signal(sig)
		select {
		case <-exited:
			stopTook = time.Since(t)
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			stopTook = -1
		}
	}
	defer stop()
	pid := cmd.Process.Pid
	if err := waitReady(ctx, httpAddr, exited, 60*time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, tailFile(logPath, 20))
	}
	readyAt := time.Now()
	e.log.Info("memory: worker ready", "pid", pid)

	// Sample until the worker holds what its consumers allow (95% of the
	// live lane's MaxAckPending over all partitions) and at least
	// memSample has passed; give up on the fill after two minutes.
	full := 0.95 * float64(queue.DefaultMaxAckPendingLive*d.partitions)
	var samples [][]string
	var peakRSS, hwm int64
	var filledAt time.Duration = -1
	next := readyAt
	for i := 0; ; i++ {
		el := time.Since(readyAt)
		rss, err1 := procStatusKB(pid, "VmRSS")
		h, err2 := procStatusKB(pid, "VmHWM")
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%w\n%s", err, tailFile(logPath, 20))
		}
		peakRSS, hwm = max(peakRSS, rss), max(hwm, h)
		if i%4 == 0 { // every 2 s
			held, err := scrape(ctx, httpAddr, "friendsync_coalesce_buffered_events")
			if err != nil {
				return err
			}
			samples = append(samples, []string{secs(el), f1(held[0]), mib(float64(rss) * 1024), mib(float64(h) * 1024)})
			if filledAt < 0 && held[0] >= full {
				filledAt = el
			}
		}
		if (filledAt >= 0 && el >= max(e.sc.memSample, filledAt+e.sc.memSample/2)) || el >= 2*time.Minute {
			break
		}
		next = next.Add(500 * time.Millisecond)
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
	}
	if len(samples) > 12 { // keep the table short: every k-th row and the last
		k := (len(samples) + 11) / 12
		var short [][]string
		for i := range samples {
			if i%k == 0 || i == len(samples)-1 {
				short = append(short, samples[i])
			}
		}
		samples = short
	}
	metrics, err := scrape(ctx, httpAddr, "friendsync_coalesce_buffered_events", "friendsync_coalesce_keys",
		"go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		return err
	}
	stop()
	left := d.undelivered(ctx)
	switch {
	case sig == syscall.SIGKILL:
	case stopTook < 0:
		s.Notes = append(s.Notes, "The worker did not exit within 40 s of SIGTERM (shutdown timeout 5 s) and was killed.")
	default:
		s.Notes = append(s.Notes, fmt.Sprintf("After SIGTERM the worker exited in %s (FRIENDSYNC_SHUTDOWN_TIMEOUT=5s), holding %.0f buffered events.", secs(stopTook), metrics[0]))
	}
	if filledAt < 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("The worker had not filled its consumers' MaxAckPending (%.0f events) after two minutes; the peak may be higher.", full))
	} else {
		s.Notes = append(s.Notes, fmt.Sprintf("The worker held 95%% of its consumers' MaxAckPending %s after it was ready; sampling went on for at least %s after that.",
			secs(filledAt), e.sc.memSample/2))
	}

	s.Tables = append(s.Tables,
		Table{Caption: "After the worker was ready:", Header: []string{"time", "events buffered in coalescers", "VmRSS (MiB)", "VmHWM (MiB)"}, Rows: samples},
		Table{Header: []string{"backlog", "published in", "left in the streams (undelivered)", "buffered in coalescers", "accounts held",
			"heap in use", "goroutines", "peak VmRSS", "VmHWM"},
			Rows: [][]string{{itoa(n), secs(pubTook), itoa(left), f1(metrics[0]), f1(metrics[1]), mib(metrics[2]) + " MiB", f1(metrics[3]),
				mib(float64(peakRSS)*1024) + " MiB", mib(float64(hwm)*1024) + " MiB"}}})
	s.check("worker VmHWM with the backlog", mib(float64(hwm)*1024)+" MiB", fmt.Sprintf("≤ %d MB", memTargetMB), float64(hwm)*1024 <= memTargetMB*1e6, false)
	s.Notes = append(s.Notes,
		fmt.Sprintf("What a worker holds is bounded by its consumers' MaxAckPending (%d per live and %d per bulk consumer, 32 partitions each), not by the streams' depth.",
			queue.DefaultMaxAckPendingLive, queue.DefaultMaxAckPendingBulk))
	return nil
}

// buildWorker builds cmd/worker into out.
func buildWorker(ctx context.Context, moduleDir, out string) error {
	if moduleDir == "" {
		var err error
		if moduleDir, err = findModuleDir(); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/worker")
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build ./cmd/worker: %w\n%s", err, b)
	}
	return nil
}

// findModuleDir walks up from the working directory to the friendsync
// go.mod.
func findModuleDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/friendsync/friendsync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench: not inside the friendsync module: run from it or set Options.ModuleDir")
		}
		dir = parent
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, addr string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("bench: worker exited at start: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("bench: worker not ready after %s", timeout)
}

// scrape sums the series of each named metric on the worker's /metrics.
func scrape(ctx context.Context, addr string, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape: %w", err)
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for i, n := range names {
			rest, ok := strings.CutPrefix(line, n)
			if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(f) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[i] += v
			}
		}
	}
	return out, sc.Err()
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
