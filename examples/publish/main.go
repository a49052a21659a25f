// Command publish is a small app server that publishes live friend updates
// to friendsync with the producer library: the way a Go service reports
// "alice renamed bob to Bobby".
//
//	go run ./cmd/worker                  # in one terminal: embedded NATS on 127.0.0.1:4223
//	go run ./examples/publish -count 100 # in another
//
// Services in other languages publish the same JSON to the same subjects:
// docs/CONTRACT.md is the contract (fields, limits per vendor, subjects,
// the partition function with test vectors, Nats-Msg-Id).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/producer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		log.Fatal(err) // fine for an example; a service would report and exit
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	url := fs.String("nats-url", envOr("FRIENDSYNC_NATS_URL", "nats://127.0.0.1:4223"), "NATS URL")
	name := fs.String("name", envOr("FRIENDSYNC_NAME", "friendsync"), "layout base name (streams FRIENDSYNC_P<p>, subjects friendsync.ev.*)")
	app := fs.String("app", "demo", "the app: a vendor profile configured on the workers")
	vendor := fs.String("vendor", "tencent", "the app's vendor, for validation before publishing: tencent, volc or zego")
	rate := fs.Float64("rate", 10, "events per second")
	count := fs.Int("count", 50, "events to publish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *count < 1 {
		return errors.New("-rate and -count must be positive")
	}

	nc, err := nats.Connect(*url, nats.Name("friendsync-example-publish"))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Drain()

	// The producer reads the partition count from the layout's meta bucket
	// (a worker creates it and the partition streams) and validates every event for its app's
	// vendor before anything is sent.
	p, err := producer.New(ctx, nc, producer.Config{
		Layout: event.Layout{Base: *name},
		Apps:   map[string]event.Rules{*app: {Vendor: event.Vendor(*vendor)}},
	})
	if err != nil {
		return err
	}

	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	for i := range *count {
		select {
		case <-ctx.Done():
			return flush(p, i)
		case <-tick.C:
		}
		// One event per change. No id: the producer generates a UUIDv7, so
		// setting A, then B, then A again is never deduplicated. No ts: the
		// version is the publish time, so a later event wins.
		ev := &event.Event{
			App:    *app,
			From:   "user" + strconv.Itoa(i%10),
			To:     "friend" + strconv.Itoa(i),
			Remark: event.Ptr("Friend #" + strconv.Itoa(i)),
		}
		// PublishAsync returns once the message is sent; its ack arrives
		// later. Validation errors come back here, before sending.
		if _, err := p.PublishAsync(ev); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return flush(p, *count)
}

// flush waits for the outstanding acks: an event is only safe once its
// partition's stream acknowledged it. A failed ack should be retried with the same id.
func flush(p *producer.Producer, sent int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		return err
	}
	fmt.Printf("published %d events (live lane, %d partitions)\n", sent, p.Partitions())
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
