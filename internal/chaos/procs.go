package chaos

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/friendsync/friendsync/internal/prooftest"
)

// buildWorker builds cmd/worker into dir (the run must be inside this
// module) and returns the binary's path.
func buildWorker(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/friendsync/friendsync/cmd/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/worker (run inside the friendsync module, or pass a built worker): %w\n%s", err, out)
	}
	return bin, nil
}

// proc is one cmd/worker subprocess slot: started, killed and restarted
// under one worker id.
type proc struct {
	id      string
	logPath string

	mu     sync.Mutex
	cur    *instance // nil before the first start
	starts int
}

// instance is one process of a worker slot.
type instance struct {
	cmd    *exec.Cmd
	addr   string // HTTP address
	exited chan struct{}
	killed atomic.Bool // by us
	ready  atomic.Bool
}

// exitRecord is a worker process that exited without being killed.
type exitRecord struct {
	Worker string
	At     time.Duration
	Code   int
	Panic  bool
	Tail   string
}

// fleet supervises the workers: it restarts one that exits on its own (as
// a process supervisor would) and records why it exited.
type fleet struct {
	bin   string
	env   func(id, httpAddr string) []string
	log   *slog.Logger
	since func() time.Duration // offset from the start of publishing
	procs []*proc

	mu       sync.Mutex
	exits    []exitRecord
	stopping bool
	wg       sync.WaitGroup
}

// launch starts p's process on a fresh HTTP port.
func (f *fleet) launch(p *proc) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: worker log: %w", err)
	}
	p.mu.Lock()
	p.starts++
	fmt.Fprintf(lf, "=== fschaos: start %d of %s at %s (+%s)\n", p.starts, p.id, time.Now().Format(time.RFC3339Nano), f.since().Round(time.Millisecond))
	cmd := exec.Command(f.bin)
	cmd.Env = f.env(p.id, addr)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		lf.Close()
		return fmt.Errorf("chaos: start worker %s: %w", p.id, err)
	}
	inst := &instance{cmd: cmd, addr: addr, exited: make(chan struct{})}
	p.cur = inst
	p.mu.Unlock()

	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		err := cmd.Wait()
		lf.Close()
		inst.ready.Store(false)
		close(inst.exited)
		f.exited(p, inst, err)
	}()
	go func() {
		defer f.wg.Done()
		f.pollReady(inst)
	}()
	return nil
}

// relaunch starts p again unless the fleet is stopping.
func (f *fleet) relaunch(p *proc) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return nil
	}
	return f.launch(p)
}

// exited records a process that ended on its own and restarts it.
func (f *fleet) exited(p *proc, inst *instance, err error) {
	f.mu.Lock()
	stopping := f.stopping
	f.mu.Unlock()
	if inst.killed.Load() || stopping {
		return
	}
	tail := prooftest.TailFile(p.logPath, 25)
	rec := exitRecord{Worker: p.id, At: f.since(), Code: inst.cmd.ProcessState.ExitCode(),
		Panic: strings.Contains(tail, "panic:") || strings.Contains(tail, "fatal error:"), Tail: tail}
	f.log.Warn("worker exited on its own; restarting", slog.String("worker", p.id), slog.Int("code", rec.Code), slog.Any("error", err))
	f.mu.Lock()
	f.exits = append(f.exits, rec)
	f.mu.Unlock()
	time.Sleep(time.Second)
	f.mu.Lock() // held while launching, so stopAll cannot miss the new process
	defer f.mu.Unlock()
	if f.stopping {
		return
	}
	if err := f.launch(p); err != nil {
		f.log.Error("restart worker", slog.String("worker", p.id), slog.Any("error", err))
	}
}

// pollReady marks inst ready once its /readyz answers 200.
func (f *fleet) pollReady(inst *instance) {
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-inst.exited:
			return
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get("http://" + inst.addr + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			select {
			case <-inst.exited:
			default:
				inst.ready.Store(true)
			}
			return
		}
	}
}

// current returns p's current process (nil before the first start).
func (p *proc) current() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// readyProcs returns the workers whose current process is ready.
func (f *fleet) readyProcs() []*proc {
	var out []*proc
	for _, p := range f.procs {
		if inst := p.current(); inst != nil && inst.ready.Load() && !inst.killed.Load() {
			out = append(out, p)
		}
	}
	return out
}

// waitReady waits until every worker is ready.
func (f *fleet) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(f.readyProcs()) < len(f.procs) {
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %d of %d workers ready after %s (logs in %s)", len(f.readyProcs()), len(f.procs), timeout, filepath.Dir(f.procs[0].logPath))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Gauges read from a worker just before it is killed.
const (
	metricInflight      = "friendsync_coalesce_inflight_accounts"
	metricPendingRaises = "friendsync_versions_pending_raises"
)

// kill sends SIGKILL to p's process, waits until it is gone and returns
// the gauges read just before (-1 when unknown).
func (f *fleet) kill(p *proc) (map[string]float64, error) {
	inst := p.current()
	if inst == nil {
		return nil, fmt.Errorf("chaos: kill %s: not started", p.id)
	}
	cmd := inst.cmd
	inflight := readMetrics(inst.addr, metricInflight, metricPendingRaises)
	inst.killed.Store(true)
	inst.ready.Store(false)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return inflight, fmt.Errorf("chaos: kill %s: %w", p.id, err)
	}
	select {
	case <-inst.exited:
	case <-time.After(10 * time.Second):
		return inflight, fmt.Errorf("chaos: worker %s still running 10s after SIGKILL", p.id)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return inflight, fmt.Errorf("chaos: worker %s did not die of SIGKILL: %s", p.id, cmd.ProcessState)
	}
	return inflight, nil
}

// stopAll sends SIGTERM to every worker and SIGKILL to those still
// running after timeout.
func (f *fleet) stopAll(timeout time.Duration) {
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	var insts []*instance
	for _, p := range f.procs {
		if inst := p.current(); inst != nil {
			_ = inst.cmd.Process.Signal(syscall.SIGTERM)
			insts = append(insts, inst)
		}
	}
	deadline := time.After(timeout)
	for _, inst := range insts {
		select {
		case <-inst.exited:
		case <-deadline:
		}
	}
	for _, inst := range insts {
		select {
		case <-inst.exited:
		default:
			_ = inst.cmd.Process.Kill()
		}
	}
	f.wg.Wait()
}

func (f *fleet) exitRecords() []exitRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]exitRecord(nil), f.exits...)
}

// readMetrics reads unlabelled series from a worker's /metrics; -1 for
// each it cannot read.
func readMetrics(addr string, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		out[n] = -1
	}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if _, want := out[name]; !ok || !want {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}
