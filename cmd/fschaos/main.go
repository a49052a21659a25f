// Command fschaos runs the reliability suite (docs/RELIABILITY.md): a
// cluster of cmd/worker subprocesses on its own NATS, Redis and vendor
// simulator, under kill -9s, a NATS restart, a Redis outage, a vendor
// outage, 5xx and timeouts and a write-conflict and throttle storm, then
// checks that every event was applied as last written or dead-lettered
// with a reason, and that no budget's 1-second window was exceeded.
//
//	go run ./cmd/fschaos                 # the full run (≥100 kills, 30 s Redis, 60 s vendor outage), about 8 minutes
//	go run ./cmd/fschaos -short          # the CI-sized run, about a minute
//	go run ./cmd/fschaos -seed 7 -report chaos.md
//
// It needs the Go toolchain (it builds cmd/worker; run it from the module,
// or pass -worker-bin) and redis-server on the PATH. Progress goes to
// stderr, the Markdown report to stdout (or -report). Exit status: 0 when
// every invariant held, 1 when one broke, 2 when the run could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fschaos:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	full, short := chaos.Defaults(false), chaos.Defaults(true)
	def := func(what string, f, s any) string { return fmt.Sprintf("%s (default %v; -short %v)", what, f, s) }
	fs := flag.NewFlagSet("fschaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o            chaos.Options
		outageVendor string
		reportPath   string
		verbose      bool
	)
	fs.BoolVar(&o.Short, "short", false, "the CI-sized run (every default below switches to its -short value)")
	fs.DurationVar(&o.Duration, "duration", 0, def("publishing window; kills and faults happen inside it", full.Duration, short.Duration))
	fs.IntVar(&o.Workers, "workers", 0, def("worker subprocesses", full.Workers, short.Workers))
	fs.IntVar(&o.Kills, "kills", 0, def("kill -9s of a random worker (each restarted)", full.Kills, short.Kills))
	fs.IntVar(&o.Accounts, "accounts", 0, def("accounts in the workload", full.Accounts, short.Accounts))
	fs.IntVar(&o.Partitions, "partitions", 0, def("stream partitions", full.Partitions, short.Partitions))
	fs.DurationVar(&o.NATSDown, "nats-down", 0, def("how long NATS stays down in its restart", full.NATSDown, short.NATSDown))
	fs.DurationVar(&o.RedisOutage, "redis-outage", 0, def("how long Redis is unreachable", full.RedisOutage, short.RedisOutage))
	fs.DurationVar(&o.VendorOutage, "vendor-outage", 0, def("how long one vendor answers 503", full.VendorOutage, short.VendorOutage))
	fs.StringVar(&outageVendor, "outage-vendor", "", def("vendor of the outage: tencent, volc or zego", full.OutageVendor, short.OutageVendor))
	fs.Float64Var(&o.FaultRate, "fault-rate", 0, def("share of calls answered 502 or hung (half each) in the fault phase", full.FaultRate, short.FaultRate))
	fs.DurationVar(&o.FaultFor, "fault-for", 0, def("length of the 5xx and timeout phase", full.FaultFor, short.FaultFor))
	fs.DurationVar(&o.StormFor, "storm", 0, def("length of the 30008 and throttle storm", full.StormFor, short.StormFor))
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 0, def("how long to wait for the drain after the last fault", full.DrainTimeout, short.DrainTimeout))
	fs.IntVar(&o.Poison, "poison", 0, def("poison events of each kind", full.Poison, short.Poison))
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the workload, the kill schedule and the fault draws")
	fs.StringVar(&reportPath, "report", "", "write the Markdown report to this file instead of stdout")
	fs.StringVar(&o.WorkerBin, "worker-bin", "", "a built cmd/worker (default: go build it)")
	fs.StringVar(&o.WorkDir, "work-dir", "", "directory for the NATS store, Redis files and worker logs (default: a temporary one, removed after a passing run)")
	fs.BoolVar(&o.KeepWorkDir, "keep", false, "keep the temporary work directory after a passing run")
	fs.StringVar(&o.WorkerLogLevel, "worker-log-level", "", "workers' log level (default info)")
	fs.BoolVar(&verbose, "v", false, "debug progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, err
		}
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.OutageVendor = event.Vendor(outageVendor)
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	rep, err := chaos.Run(ctx, o)
	if err != nil {
		return 2, err
	}
	rep.Command = strings.TrimSpace("go run ./cmd/fschaos " + strings.Join(args, " "))
	w := stdout
	if reportPath != "" {
		f, err := os.Create(reportPath)
		if err != nil {
			return 2, err
		}
		defer f.Close()
		w = f
	}
	if err := rep.WriteMarkdown(w); err != nil {
		return 2, err
	}
	if f := rep.Failures(); len(f) > 0 {
		for _, s := range f {
			fmt.Fprintln(stderr, "fschaos: FAIL:", s)
		}
		return 1, nil
	}
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	return 0, nil
}
