// Command worker consumes friend-update events from NATS JetStream,
// coalesces them per account and applies them at the vendors. With no
// configuration it runs the whole system on one machine: an in-process
// JetStream, an in-process limiter and simulated vendors with demo traffic.
//
// Configuration: flags or FRIENDSYNC_* variables (worker -h, docs/CONFIG.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load(os.Args[1:], os.Getenv, os.Stderr, worker.DemoProfiles)
	if err != nil {
		return err
	}
	logger := worker.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	fmt.Fprintln(os.Stderr, "# effective configuration (secrets masked)")
	if err := cfg.Print(os.Stderr); err != nil {
		return err
	}
	return worker.Run(ctx, cfg, worker.Deps{Logger: logger})
}
