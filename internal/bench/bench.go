package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Measurement names, in report order.
const (
	MBudget     = "budget"
	MBatching   = "batching"
	MThroughput = "throughput"
	MLatency    = "latency"
	MMemory     = "memory"
	MNaive      = "naive"
	MMicro      = "micro"
)

// Measurements lists every measurement name in report order.
var Measurements = []string{MBudget, MBatching, MThroughput, MLatency, MMemory, MNaive, MMicro}

// Defaults of Options.
const (
	DefaultNATSURL  = "nats://127.0.0.1:4222"
	DefaultRedisURL = "redis://127.0.0.1:6379"
)

// Options configure a run. Zero values take the defaults named in the
// comments.
type Options struct {
	// Quick makes a reduced run (about a minute or two): shorter windows,
	// smaller workloads, a 100k-event backlog for the memory measurement.
	Quick bool
	// Only selects measurements by name (see Measurements); empty runs all.
	Only []string
	// NATSURL is the JetStream server. Default DefaultNATSURL.
	NATSURL string
	// RedisURL is the Redis of the shared limiter and version store.
	// Default DefaultRedisURL.
	RedisURL string
	// ModuleDir is the friendsync module root, where cmd/worker is built and
	// the micro-benchmarks run. Default: found from the working directory.
	ModuleDir string
	// WorkerBin is a built cmd/worker for the memory measurement. Empty:
	// built with go build into a temporary directory.
	WorkerBin string
	// Logger receives progress records; nil discards.
	Logger *slog.Logger
	// WorkerLogs receives the in-process workers' logs at warn level and
	// above; nil discards.
	WorkerLogs io.Writer
	// CPUProfile, if set, receives a CPU profile (runtime/pprof) of this
	// process during the friendsync phase of the throughput measurement:
	// the worker and the publisher, without the raw baselines.
	CPUProfile io.Writer
}

func (o Options) withDefaults() Options {
	if o.NATSURL == "" {
		o.NATSURL = DefaultNATSURL
	}
	if o.RedisURL == "" {
		o.RedisURL = DefaultRedisURL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WorkerLogs == nil {
		o.WorkerLogs = io.Discard
	}
	return o
}

// Validate checks the measurement names.
func (o Options) Validate() error {
	for _, m := range o.Only {
		if !slices.Contains(Measurements, m) {
			return fmt.Errorf("bench: unknown measurement %q (want one of %s)", m, strings.Join(Measurements, ", "))
		}
	}
	if !strings.HasPrefix(o.RedisURL, "redis://") && !strings.HasPrefix(o.RedisURL, "rediss://") && o.RedisURL != "" {
		return errors.New("bench: redis url must start with redis:// or rediss://")
	}
	return nil
}

func (o Options) selected(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }

// Report is the result of a run.
type Report struct {
	Quick    bool
	Command  string // the command line, for the report header
	Machine  Machine
	Started  time.Time
	Finished time.Time
	LoadEnd  Load
	Sections []*Section
}

// Section is one measurement's result.
type Section struct {
	Name    string
	Title   string
	Intro   string   // what was measured and how (Markdown)
	Tables  []Table  // the figures
	Notes   []string // caveats, one bullet each
	Checks  []Check  // figures with a target, invariants
	Raw     string   // verbatim output (micro-benchmarks)
	Err     error    // the measurement failed (its figures may be partial)
	LoadBeg Load
	LoadEnd Load
	Elapsed time.Duration
	CPU     time.Duration // CPU time of this process during the measurement
}

// Table is a Markdown table.
type Table struct {
	Caption string
	Header  []string
	Rows    [][]string
}

// Check is a figure held against a target.
type Check struct {
	Measurement string
	What        string
	Got         string
	Target      string
	Pass        bool
	// Invariant marks a correctness property (no window over a budget, no
	// overlapping writes for one account, no conflict, nothing lost), as
	// opposed to a speed or efficiency target, which a noisy shared machine
	// may miss.
	Invariant bool
}

func (s *Section) check(what, got, target string, pass, invariant bool) {
	s.Checks = append(s.Checks, Check{Measurement: s.Name, What: what, Got: got, Target: target, Pass: pass, Invariant: invariant})
}

// Checks returns every check of every section, in order.
func (r *Report) Checks() []Check {
	var out []Check
	for _, s := range r.Sections {
		out = append(out, s.Checks...)
	}
	return out
}

// Failures describes every broken invariant and every measurement error;
// empty when the run proved what it measured. Missed speed targets are not
// failures (see Check.Invariant).
func (r *Report) Failures() []string {
	var out []string
	for _, s := range r.Sections {
		if s.Err != nil {
			out = append(out, fmt.Sprintf("%s: %v", s.Name, s.Err))
		}
		for _, c := range s.Checks {
			if c.Invariant && !c.Pass {
				out = append(out, fmt.Sprintf("%s: %s: got %s, want %s", s.Name, c.What, c.Got, c.Target))
			}
		}
	}
	return out
}

type measurement struct {
	name, title string
	run         func(ctx context.Context, e *env, s *Section) error
}

var measurements = []measurement{
	{MBudget, "1. Vendor budget use under saturation", runBudget},
	{MBatching, "2. Batch efficiency", runBatching},
	{MThroughput, "3. End-to-end throughput", runThroughput},
	{MLatency, "4. Latency below saturation", runLatency},
	{MMemory, "5. Worker memory with a large backlog", runMemory},
	{MNaive, "6. Naive baseline: one call per event", runNaive},
	{MMicro, "7. Go micro-benchmarks", runMicro},
}

// Run performs the selected measurements one after the other and returns
// the report. A measurement that fails records its error in its Section
// and the run goes on; Run itself fails only when it cannot start (bad
// options, NATS or Redis unreachable). Cancelling ctx stops the run after
// cleaning up what the current measurement created.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	e, err := newEnv(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r := &Report{Quick: opts.Quick, Machine: readMachine(ctx, e), Started: time.Now()}
	for _, m := range measurements {
		if !opts.selected(m.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		s := &Section{Name: m.name, Title: m.title, LoadBeg: readLoad()}
		opts.Logger.Info("measurement start", slog.String("name", m.name), slog.String("load", s.LoadBeg.String()))
		cpu0, t0 := cpuTime(), time.Now()
		s.Err = m.run(ctx, e, s)
		s.Elapsed, s.CPU, s.LoadEnd = time.Since(t0), cpuTime()-cpu0, readLoad()
		if s.Err != nil {
			opts.Logger.Error("measurement failed", slog.String("name", m.name), slog.Any("error", s.Err))
		}
		opts.Logger.Info("measurement done", slog.String("name", m.name), slog.Duration("elapsed", s.Elapsed.Round(time.Millisecond)))
		r.Sections = append(r.Sections, s)
	}
	r.Finished, r.LoadEnd = time.Now(), readLoad()
	return r, nil
}
