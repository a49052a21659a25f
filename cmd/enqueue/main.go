// Command enqueue publishes friend-update events to friendsync in bulk
// (NDJSON or CSV backfills) and lists and replays dead letters.
//
//	enqueue --profiles profiles.yaml backfill.ndjson
//	enqueue --profiles profiles.yaml --resume backfill.csv
//	enqueue dlq list --reason vendor
//	enqueue dlq replay --seq 10-20 --delete
//
// Run "enqueue help", "enqueue publish -h" or "enqueue dlq -h" for the
// flags. The first Ctrl-C stops publishing, waits for the outstanding acks
// and writes the checkpoint (exit 130); a second one exits at once.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/friendsync/friendsync/internal/enqueue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so a second one
	// ends the process at once.
	context.AfterFunc(ctx, stop)
	code := enqueue.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
