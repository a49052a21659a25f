package versions

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config.
const (
	DefaultPrefix        = "friendsync:v:"
	DefaultTTL           = 30 * 24 * time.Hour
	DefaultCacheSize     = 200_000
	DefaultMaxPending    = 100_000
	DefaultTimeout       = 2 * time.Second
	DefaultProbeInterval = time.Second
)

// ErrUnavailable is matched (errors.Is) by Load when Redis cannot be reached
// and the versions asked for are not all cached, and by Raise when an
// outage has filled the pending buffer. Callers fail closed and retry.
var ErrUnavailable = errors.New("versions: redis unavailable")

// ErrPending is returned (wrapped) by Raise when Redis could not be reached
// and the raise is kept in memory until it answers: the versions are not
// durable yet, so the caller must not treat the values as settled (a
// worker killed meanwhile forgets them). The raise still takes effect when
// the buffer is flushed.
var ErrPending = errors.New("versions: raise kept in memory until redis answers")

// Config configures a Redis Store.
type Config struct {
	// Prefix starts every key: Prefix + app + ":" + from. If empty,
	// DefaultPrefix ("friendsync:v:").
	Prefix string
	// TTL is set on an account's hash at every raise. If zero, DefaultTTL
	// (30 days).
	TTL time.Duration
	// CacheSize bounds the write-through cache, in fields (about 150 bytes
	// each); least recently used accounts are evicted first. If zero,
	// DefaultCacheSize (200 000).
	CacheSize int
	// MaxPending bounds the raises, in fields, held in memory during an
	// outage; beyond it Raise fails with ErrUnavailable. If zero,
	// DefaultMaxPending (100 000).
	MaxPending int
	// Timeout bounds each Redis call. If zero, DefaultTimeout (2 s).
	Timeout time.Duration
	// ProbeInterval is how often, at most, an unavailable store checks
	// whether Redis answers again. If zero, DefaultProbeInterval (1 s).
	ProbeInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	return c
}

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.TTL < time.Millisecond:
		return fmt.Errorf("versions: config: ttl %v must be at least 1ms", c.TTL)
	case c.CacheSize < 0:
		return errors.New("versions: config: cache size must be ≥ 0")
	case c.MaxPending < 0:
		return errors.New("versions: config: max pending must be ≥ 0")
	case c.Timeout < 0:
		return errors.New("versions: config: timeout must be > 0")
	case c.ProbeInterval < 0:
		return errors.New("versions: config: probe interval must be > 0")
	}
	return nil
}
