// Command fsbench measures friendsync's speed and vendor-budget use and
// prints a Markdown report (docs/BENCHMARKS.md explains it):
//
//	go run ./cmd/fsbench            # full run, several minutes
//	go run ./cmd/fsbench -quick     # reduced run, about two minutes
//	go run ./cmd/fsbench -only budget,latency
//	go run ./cmd/fsbench -only throughput -cpuprofile tput.pprof
//
// It needs NATS with JetStream and Redis (default: the machine's, on
// 127.0.0.1) and, for the memory and micro-benchmark measurements, the Go
// toolchain and this module's source (run it from the module). It creates
// uniquely named streams, buckets and Redis keys and deletes them after
// each measurement. Progress goes to stderr, the report to stdout (or -o).
// The exit status is 1 when an invariant broke or a measurement failed,
// never because a speed target was missed.
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

	"github.com/friendsync/friendsync/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fsbench:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("fsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts      bench.Options
		only, out string
		workerLog string
		cpuProf   string
		verbose   bool
	)
	fs.BoolVar(&opts.Quick, "quick", false, "reduced run (about two minutes; memory backlog 100k events)")
	fs.StringVar(&only, "only", "", "comma-separated measurements: "+strings.Join(bench.Measurements, ","))
	fs.StringVar(&opts.NATSURL, "nats", bench.DefaultNATSURL, "NATS URL (JetStream)")
	fs.StringVar(&opts.RedisURL, "redis", bench.DefaultRedisURL, "Redis URL")
	fs.StringVar(&opts.WorkerBin, "worker-bin", "", "built cmd/worker for the memory measurement (default: go build)")
	fs.StringVar(&out, "o", "", "write the report to this file instead of stdout")
	fs.StringVar(&workerLog, "worker-log", "", "append the in-process workers' warnings to this file")
	fs.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the friendsync phase of the throughput measurement to this file")
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
	if only != "" {
		for _, m := range strings.Split(only, ",") {
			opts.Only = append(opts.Only, strings.TrimSpace(m))
		}
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if workerLog != "" {
		f, err := os.OpenFile(workerLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 2, err
		}
		defer f.Close()
		opts.WorkerLogs = f
	}
	if cpuProf != "" {
		f, err := os.Create(cpuProf)
		if err != nil {
			return 2, err
		}
		defer f.Close()
		opts.CPUProfile = f
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return 2, err
	}
	rep.Command = "go run ./cmd/fsbench " + strings.Join(args, " ")
	rep.Command = strings.TrimSpace(rep.Command)
	w := stdout
	if out != "" {
		f, err := os.Create(out)
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
			fmt.Fprintln(stderr, "fsbench: FAIL:", s)
		}
		return 1, nil
	}
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	return 0, nil
}
