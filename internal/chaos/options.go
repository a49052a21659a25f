package chaos

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Options configure one run. A zero field takes its value from
// Defaults(Short).
type Options struct {
	// Duration is the publishing window; the kills and fault phases happen
	// inside it (a phase longer than the window may end after it).
	Duration time.Duration
	// Workers is the number of cmd/worker subprocesses.
	Workers int
	// Kills is the number of kill -9s; the kills are spread over the
	// window and continue after it until this many were made.
	Kills int
	// Accounts is the number of (app, from) accounts in the workload.
	Accounts int
	// Partitions is the partition count P (one stream per partition).
	Partitions int
	// NATSDown is how long the NATS server stays down in its restart.
	NATSDown time.Duration
	// RedisOutage is how long Redis is unreachable.
	RedisOutage time.Duration
	// VendorOutage is how long OutageVendor answers every call with 503.
	VendorOutage time.Duration
	OutageVendor event.Vendor
	// FaultRate is the share of calls to every vendor answered 5xx or hung
	// until the client's timeout (half each) during a phase of FaultFor.
	FaultRate float64
	FaultFor  time.Duration
	// StormFor is how long the write-conflict and throttle storm lasts.
	StormFor time.Duration
	// DrainTimeout bounds the wait, after the window, the kills and the
	// faults, for every consumer to be drained and the state to settle.
	DrainTimeout time.Duration
	// Poison is the number of poison events of each kind.
	Poison int
	// Burst is the number of events published at once (asynchronously,
	// with an explicit ts a minute or two old) late in the window, enough
	// to fill every vendor budget for several seconds.
	Burst int
	// Seed seeds the workload, the kill schedule and the fault draws.
	Seed uint64
	// Short selects the CI-sized defaults.
	Short bool
	// WorkerBin is a built cmd/worker; "" builds it with go build (the run
	// must then start inside this module).
	WorkerBin string
	// WorkDir holds the NATS store, the Redis files, the profiles file and
	// the worker logs; "" creates a temporary directory, removed after a
	// passing run unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// WorkerLogLevel is the workers' log level (default info: leases and
	// partitions moving, which the evidence of a violation quotes).
	WorkerLogLevel string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Defaults are the full run (short false: ≥100 kills, 30 s Redis
// outage, 60 s vendor outage, 20 % 5xx and timeouts) or the CI-sized run
// (short true: about a minute on a loaded 2-core machine).
func Defaults(short bool) Options {
	if short {
		return Options{
			Duration: 40 * time.Second, Workers: 3, Kills: 10, Accounts: 400, Partitions: 8,
			NATSDown: 2 * time.Second, RedisOutage: 5 * time.Second,
			VendorOutage: 5 * time.Second, OutageVendor: event.Volc,
			FaultRate: 0.2, FaultFor: 8 * time.Second, StormFor: 5 * time.Second,
			DrainTimeout: 2 * time.Minute, Poison: 1, Burst: 800, Seed: 1, Short: true,
			WorkerLogLevel: "info",
		}
	}
	return Options{
		Duration: 5 * time.Minute, Workers: 5, Kills: 110, Accounts: 3000, Partitions: 16,
		NATSDown: 3 * time.Second, RedisOutage: 30 * time.Second,
		VendorOutage: 60 * time.Second, OutageVendor: event.Volc,
		FaultRate: 0.2, FaultFor: time.Minute, StormFor: 30 * time.Second,
		DrainTimeout: 10 * time.Minute, Poison: 3, Burst: 6000, Seed: 1,
		WorkerLogLevel: "info",
	}
}

// withDefaults fills every zero field from Defaults(o.Short).
func (o Options) withDefaults() Options {
	d := Defaults(o.Short)
	dur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	num := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	dur(&o.Duration, d.Duration)
	num(&o.Workers, d.Workers)
	num(&o.Kills, d.Kills)
	num(&o.Accounts, d.Accounts)
	num(&o.Partitions, d.Partitions)
	dur(&o.NATSDown, d.NATSDown)
	dur(&o.RedisOutage, d.RedisOutage)
	dur(&o.VendorOutage, d.VendorOutage)
	if o.OutageVendor == "" {
		o.OutageVendor = d.OutageVendor
	}
	if o.FaultRate == 0 {
		o.FaultRate = d.FaultRate
	}
	dur(&o.FaultFor, d.FaultFor)
	dur(&o.StormFor, d.StormFor)
	dur(&o.DrainTimeout, d.DrainTimeout)
	num(&o.Poison, d.Poison)
	num(&o.Burst, d.Burst)
	if o.WorkerLogLevel == "" {
		o.WorkerLogLevel = d.WorkerLogLevel
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// validate reports every unusable setting (after defaults).
func (o Options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Duration < 10*time.Second {
		bad("duration %s: want at least 10s", o.Duration)
	}
	if o.Workers < 2 {
		bad("workers %d: want at least 2 (a killed worker's partitions need a survivor)", o.Workers)
	}
	if o.Kills < 0 {
		bad("kills %d: want ≥ 0", o.Kills)
	}
	if o.Accounts < 10 {
		bad("accounts %d: want at least 10", o.Accounts)
	}
	if o.Partitions < o.Workers {
		bad("partitions %d: want at least one per worker (%d)", o.Partitions, o.Workers)
	}
	for name, d := range map[string]time.Duration{"nats down": o.NATSDown, "redis outage": o.RedisOutage,
		"vendor outage": o.VendorOutage, "fault phase": o.FaultFor, "storm": o.StormFor, "drain timeout": o.DrainTimeout} {
		if d < 0 {
			bad("%s %s: negative", name, d)
		}
	}
	if !o.OutageVendor.Valid() {
		bad("outage vendor %q: want tencent, volc or zego", o.OutageVendor)
	}
	if o.FaultRate < 0 || o.FaultRate > 1 {
		bad("fault rate %v: want 0..1", o.FaultRate)
	}
	if o.Poison < 0 || o.Burst < 0 {
		bad("poison %d, burst %d: want ≥ 0", o.Poison, o.Burst)
	}
	switch o.WorkerLogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("worker log level %q: want debug, info, warn or error", o.WorkerLogLevel)
	}
	if len(errs) > 0 {
		return fmt.Errorf("chaos: options: %w", errors.Join(errs...))
	}
	return nil
}
