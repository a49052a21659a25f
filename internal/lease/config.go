package lease

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Defaults. They satisfy TTL > 2 × (VendorTimeout + RenewEvery) + Failover:
// 30 s > 2 × (5 s + 5 s) + 5 s = 25 s. A worker calls a vendor for a
// partition until 24 s after its last confirmed renew, which leaves a
// write outage of up to 19 s beyond the normal 5-s renew rhythm before a
// partition is dropped.
const (
	DefaultTTL            = 30 * time.Second
	DefaultVendorTimeout  = 5 * time.Second
	DefaultMargin         = time.Second
	DefaultFailover       = 5 * time.Second
	DefaultReleaseTimeout = 30 * time.Second
	DefaultReplicas       = 1
	// maxOpTimeout bounds one KV request (renew, create, get).
	maxOpTimeout = 2 * time.Second
)

var workerIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Config tunes a Manager. Zero values take the documented defaults.
type Config struct {
	// Layout names the lease bucket (jobs.LeaseBucket). Zero: production.
	Layout event.Layout
	// WorkerID identifies this worker in heartbeats and lease values;
	// required, 1–128 of [A-Za-z0-9_-], unique among live workers.
	WorkerID string
	// Partitions is P, the number of partitions (required, ≥ 1).
	Partitions int
	// TTL is the lease lifetime and the bucket's TTL (MaxAge). Default 30 s.
	// Every worker sharing a bucket must use the same TTL: Run refuses a
	// bucket whose TTL differs.
	TTL time.Duration
	// RenewEvery is the renew (and heartbeat) interval. Default TTL/6.
	RenewEvery time.Duration
	// VendorTimeout is the longest a vendor call may take (the HTTP client's
	// timeout). Default 5 s.
	VendorTimeout time.Duration
	// Margin is extra safety for clock-rate drift and scheduling delays.
	// Default 1 s. Vendor calls for p are allowed only while
	// now < renewSentAt + TTL − (VendorTimeout + Margin).
	Margin time.Duration
	// Failover is the write outage (a NATS node failover) that must not
	// drop partitions; it only enters validation. Default 5 s.
	Failover time.Duration
	// PollEvery is how often the bucket is read to count members and probe
	// free partitions with Create (a Watch does not see keys expire).
	// Default TTL/6.
	PollEvery time.Duration
	// ReleaseTimeout bounds a graceful hand-back (the Release callback).
	// Default 30 s.
	ReleaseTimeout time.Duration
	// Replicas of the bucket. Default 1 (use 3 on clusters).
	Replicas int
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.TTL / 6
	}
	if c.VendorTimeout == 0 {
		c.VendorTimeout = DefaultVendorTimeout
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.Failover == 0 {
		c.Failover = DefaultFailover
	}
	if c.PollEvery == 0 {
		c.PollEvery = c.TTL / 6
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = DefaultReleaseTimeout
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	return c
}

// Validate reports every problem of c (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !workerIDRe.MatchString(c.WorkerID) {
		errs = append(errs, fmt.Errorf("worker id %q must be 1-128 of [A-Za-z0-9_-]", c.WorkerID))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions must be >= 1, got %d", c.Partitions))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ttl", c.TTL}, {"renew every", c.RenewEvery}, {"vendor timeout", c.VendorTimeout},
		{"margin", c.Margin}, {"failover", c.Failover}, {"poll every", c.PollEvery},
		{"release timeout", c.ReleaseTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.name, d.v))
		}
	}
	if c.TTL > 0 && c.TTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("ttl must be >= 100ms, got %s", c.TTL))
	}
	if c.RenewEvery > 0 && c.RenewEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("renew every must be >= 10ms, got %s", c.RenewEvery))
	}
	if c.PollEvery > 0 && c.PollEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("poll every must be >= 10ms, got %s", c.PollEvery))
	}
	if need := 2*(c.VendorTimeout+c.RenewEvery) + c.Failover; c.TTL <= need {
		errs = append(errs, fmt.Errorf("ttl %s must exceed 2 × (vendor timeout %s + renew every %s) + failover %s = %s",
			c.TTL, c.VendorTimeout, c.RenewEvery, c.Failover, need))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1..5, got %d", c.Replicas))
	}
	if len(errs) > 0 {
		return fmt.Errorf("lease: config: %w", errors.Join(errs...))
	}
	return nil
}

// fence is how long after a renew was sent vendor calls stay allowed.
func (c Config) fence() time.Duration { return c.TTL - c.VendorTimeout - c.Margin }

// opTimeout bounds one KV request.
func (c Config) opTimeout() time.Duration { return min(c.RenewEvery, maxOpTimeout) }
