package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults for Config and Budget.
const (
	DefaultKeyPrefix        = "friendsync:rl:"
	DefaultReserve          = 0.2
	DefaultDecrease         = 0.7
	DefaultMinFactor        = 0.1
	DefaultRecoverPerSecond = 0.05
	DefaultMaxPause         = 60 * time.Second
	DefaultTimeout          = 500 * time.Millisecond
	DefaultProbeInterval    = time.Second
	// DefaultRateShare is the share of a documented QPS a budget uses when
	// its Rate is zero.
	DefaultRateShare = 0.9
	// DefaultHeadroom is the share of a documented QPS that default budgets
	// leave unused (Rate + Burst ≤ (1 − DefaultHeadroom) × Limit): calls
	// granted in one second can reach the vendor a little bunched (network
	// and scheduling jitter), and the vendor counts arrivals, not grants.
	DefaultHeadroom = 0.05
)

// ErrUnknownBudget is matched (errors.Is) by Wait for a budget name that was
// not configured.
var ErrUnknownBudget = errors.New("unknown budget")

// Budget is one vendor quota shared by every worker: one token per vendor
// call.
type Budget struct {
	// Name identifies the quota, e.g. "tencent:1400000000:friend_update".
	// The Redis key is KeyPrefix + Name. It is a metric label, so it must
	// hold app ids only, never user ids.
	Name string
	// Rate is the number of calls per second granted cluster-wide. If zero
	// and Limit > 0: DefaultRateShare × Limit, lowered if needed so that the
	// default Burst fits under the headroom (ZEGO 20/s → 17). Required when
	// Limit is 0.
	Rate float64
	// Burst is the bucket size in calls. If zero: (1 − DefaultHeadroom) ×
	// Limit − Rate rounded down when Limit > 0 (Tencent 200/s → 180 + 10),
	// else Rate/10 rounded up; at least 2 when the live reserve is on, else
	// at least 1.
	Burst int
	// Limit is the vendor's documented QPS (0 = undocumented). When set,
	// Rate + Burst must not exceed it: that sum bounds the calls in any
	// 1-second window.
	Limit float64
	// Reserve is the fraction of the bucket kept for live traffic: a bulk
	// call takes a token only if at least max(1, Reserve×Burst) tokens
	// remain afterwards. If zero, DefaultReserve; negative turns the reserve
	// off (bulk and live then compete equally).
	Reserve float64
}

// reserveTokens is the number of tokens bulk must leave in the bucket.
func (b Budget) reserveTokens() float64 {
	if b.Reserve <= 0 {
		return 0
	}
	return math.Max(1, b.Reserve*float64(b.Burst))
}

func (b Budget) withDefaults() Budget {
	if b.Reserve == 0 {
		b.Reserve = DefaultReserve
	}
	low := 1
	if b.Reserve > 0 {
		low = 2
	}
	ceiling := (1 - DefaultHeadroom) * b.Limit
	if b.Rate == 0 && b.Limit > 0 {
		b.Rate = DefaultRateShare * b.Limit
		if b.Burst == 0 && b.Rate+float64(low) > ceiling {
			b.Rate = math.Max(1, math.Floor(ceiling)-float64(low))
		}
	}
	if b.Burst == 0 {
		switch {
		case b.Limit > 0:
			b.Burst = int(math.Floor(ceiling - b.Rate + 1e-9))
		case b.Rate > 0:
			b.Burst = int(math.Ceil(b.Rate / 10))
		}
		if b.Burst < low && (b.Limit == 0 || b.Rate+float64(low) <= b.Limit) {
			b.Burst = low
		}
	}
	return b
}

// Validate reports the first problem with the budget (after defaults).
func (b Budget) Validate() error {
	switch {
	case b.Name == "":
		return errors.New("name is required")
	case strings.ContainsAny(b.Name, " \t\r\n"):
		return fmt.Errorf("budget %q: name must not contain white space", b.Name)
	case math.IsNaN(b.Rate) || math.IsInf(b.Rate, 0) || b.Rate <= 0:
		if b.Limit == 0 {
			return fmt.Errorf("budget %q: rate is required and must be > 0 (the vendor documents no QPS)", b.Name)
		}
		return fmt.Errorf("budget %q: rate must be > 0", b.Name)
	case math.IsNaN(b.Limit) || math.IsInf(b.Limit, 0) || b.Limit < 0:
		return fmt.Errorf("budget %q: limit must be ≥ 0", b.Name)
	case b.Burst < 1:
		return fmt.Errorf("budget %q: burst must be ≥ 1", b.Name)
	case b.Limit > 0 && b.Rate+float64(b.Burst) > b.Limit:
		return fmt.Errorf("budget %q: rate %g + burst %d exceeds the documented %g calls/s (a 1-second window may carry rate + burst calls)",
			b.Name, b.Rate, b.Burst, b.Limit)
	case math.IsNaN(b.Reserve) || b.Reserve >= 1:
		return fmt.Errorf("budget %q: reserve must be < 1", b.Name)
	case float64(b.Burst)-b.reserveTokens() < 1:
		return fmt.Errorf("budget %q: burst %d leaves no token for bulk after the live reserve of %g: use burst ≥ %d or a negative reserve",
			b.Name, b.Burst, b.reserveTokens(), int(math.Ceil(b.reserveTokens()))+1)
	}
	return nil
}

// Config configures a Limiter.
type Config struct {
	// KeyPrefix prefixes every Redis key. If empty, DefaultKeyPrefix.
	KeyPrefix string
	// Budgets are the quotas; names must be unique.
	Budgets []Budget
	// Members reports the number of live workers; the Redis-down fallback
	// grants Rate ÷ Members() per worker. If nil (or it returns < 1), 1.
	Members func() int
	// Decrease multiplies a budget's rate factor on each Throttled call.
	// If zero, DefaultDecrease (0.7).
	Decrease float64
	// MinFactor is the floor of the rate factor. If zero, DefaultMinFactor (0.1).
	MinFactor float64
	// RecoverPerSecond is added to the rate factor per second after a
	// throttle, up to 1. If zero, DefaultRecoverPerSecond (0.05).
	RecoverPerSecond float64
	// MaxPause caps the retry-after a Throttled call may impose on the
	// whole budget. If zero, DefaultMaxPause (60 s).
	MaxPause time.Duration
	// Timeout bounds each Redis call; a call that takes longer counts as
	// Redis being down. If zero, DefaultTimeout (500 ms).
	Timeout time.Duration
	// ProbeInterval is how often, at most, a limiter in fallback checks
	// whether Redis answers again. If zero, DefaultProbeInterval (1 s).
	ProbeInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	bs := make([]Budget, len(c.Budgets))
	for i, b := range c.Budgets {
		bs[i] = b.withDefaults()
	}
	c.Budgets = bs
	if c.Decrease == 0 {
		c.Decrease = DefaultDecrease
	}
	if c.MinFactor == 0 {
		c.MinFactor = DefaultMinFactor
	}
	if c.RecoverPerSecond == 0 {
		c.RecoverPerSecond = DefaultRecoverPerSecond
	}
	if c.MaxPause == 0 {
		c.MaxPause = DefaultMaxPause
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
	if len(c.Budgets) == 0 {
		return errors.New("ratelimit: config: at least one budget is required")
	}
	seen := make(map[string]bool, len(c.Budgets))
	for _, b := range c.Budgets {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("ratelimit: config: %w", err)
		}
		if seen[b.Name] {
			return fmt.Errorf("ratelimit: config: budget %q appears twice", b.Name)
		}
		seen[b.Name] = true
	}
	switch {
	case !(c.Decrease > 0 && c.Decrease < 1):
		return errors.New("ratelimit: config: decrease must be in (0, 1)")
	case !(c.MinFactor > 0 && c.MinFactor <= 1):
		return errors.New("ratelimit: config: min factor must be in (0, 1]")
	case !(c.RecoverPerSecond > 0) || math.IsInf(c.RecoverPerSecond, 0):
		return errors.New("ratelimit: config: recover per second must be > 0")
	case c.MaxPause < 0:
		return errors.New("ratelimit: config: max pause must be ≥ 0")
	case c.Timeout < 0:
		return errors.New("ratelimit: config: timeout must be > 0")
	case c.ProbeInterval < 0:
		return errors.New("ratelimit: config: probe interval must be > 0")
	}
	return nil
}
