package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/producer"
)

// runDemo publishes generated live updates for the demo apps at
// cfg.DemoRate events/s until ctx ends, so a newcomer sees events flow. It
// mimics people editing several friends at once: each burst is 1-8 updates
// by one account (a skewed choice, so a few accounts are busy), which the
// worker coalesces into one batch call.
func runDemo(ctx context.Context, nc *nats.Conn, layout event.Layout, cfg config.Config, logger *slog.Logger) error {
	p, err := producer.New(ctx, nc, producer.Config{Layout: layout, Apps: cfg.Profiles.Rules()})
	if err != nil {
		return fmt.Errorf("worker: demo: %w", err)
	}
	apps := cfg.Profiles.Names()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	zipf := rand.NewZipf(rng, 1.3, 1, 499)
	const meanBurst = 4.5
	bursts := cfg.DemoRate / meanBurst // bursts per second
	tick := time.NewTicker(max(time.Duration(float64(time.Second)/bursts), time.Millisecond))
	defer tick.Stop()
	perTick := max(1, int(bursts/1000))
	logger.Info("demo traffic on", slog.Float64("events_per_second", cfg.DemoRate), slog.Any("apps", apps))
	var n uint64
	for {
		select {
		case <-ctx.Done():
			if err := p.Flush(context.Background()); err != nil {
				logger.Warn("demo flush", slog.Any("error", err))
			}
			return nil
		case <-tick.C:
		}
		for range perTick {
			app := apps[rng.IntN(len(apps))]
			account := zipf.Uint64()
			for range 1 + rng.IntN(8) {
				n++
				ev := demoEvent(cfg.Profiles[app], app, account, rng.IntN(100), n)
				if _, err := p.PublishAsync(ev); err != nil {
					logger.Warn("demo publish", slog.Any("error", err))
				}
			}
		}
	}
}

func demoEvent(p *config.Profile, app string, account uint64, friend int, n uint64) *event.Event {
	ev := &event.Event{App: app}
	switch p.Vendor {
	case event.Volc:
		ev.From = strconv.FormatUint(100000+account, 10)
		ev.To = strconv.Itoa(200000 + friend)
		ev.Attrs = map[string]string{"level": strconv.FormatUint(n%100, 10)}
		if n%3 == 0 {
			ev.Remark = event.Ptr("friend " + strconv.FormatUint(n, 10))
		}
	case event.Zego:
		ev.From = "user" + strconv.FormatUint(account, 10)
		ev.To = "friend" + strconv.Itoa(friend)
		ev.Remark = event.Ptr("nick " + strconv.FormatUint(n, 10))
		if n%8 == 0 { // attributes go one friend per call: keep them rare
			ev.Attrs = map[string]string{"k0": strconv.FormatUint(n, 10)}
		}
	default:
		ev.From = "user" + strconv.FormatUint(account, 10)
		ev.To = "friend" + strconv.Itoa(friend)
		ev.Remark = event.Ptr("nick " + strconv.FormatUint(n, 10))
		if n%5 == 0 {
			ev.Groups = &[]string{"demo", "g" + strconv.FormatUint(n%7, 10)}
		}
		if n%3 == 0 {
			ev.Attrs = map[string]string{"Level": strconv.FormatUint(n%100, 10)}
		}
	}
	return ev
}
