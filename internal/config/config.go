package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/friendsync/friendsync/event"
)

// Duration is a time.Duration that reads "10s"-style strings from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML prints the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the worker's whole configuration. Every field has a flag and a
// FRIENDSYNC_* environment variable (listed in docs/CONFIG.md); a flag
// overrides the variable, which overrides the default.
type Config struct {
	// WorkerID names this worker in leases and dead letters. Default:
	// hostname-pid.
	WorkerID string `yaml:"worker_id"`
	// Name is the layout base: streams FRIENDSYNC_P<p>, subjects friendsync.ev.*,
	// buckets friendsync-*. Default "friendsync".
	Name string `yaml:"name"`

	// NATSURL of the cluster. Empty: an in-process nats-server with
	// JetStream, listening on EmbeddedNATSAddr and storing in DataDir.
	NATSURL string `yaml:"nats_url"`
	// NATSCreds is a .creds file (JWT + NKey) for NATS; optional.
	NATSCreds string `yaml:"nats_creds,omitempty"`
	// NATSCA, NATSCert, NATSKey enable TLS to NATS; optional.
	NATSCA   string `yaml:"nats_ca,omitempty"`
	NATSCert string `yaml:"nats_cert,omitempty"`
	NATSKey  string `yaml:"nats_key,omitempty"`
	// EmbeddedNATSAddr is where the in-process server listens (so enqueue
	// can publish to it). Default 127.0.0.1:4223.
	EmbeddedNATSAddr string `yaml:"embedded_nats_addr"`
	// DataDir holds the in-process server's JetStream files. Default
	// ./data/nats.
	DataDir string `yaml:"data_dir"`

	// RedisURL (redis:// or rediss://, with user and password if any).
	// Empty: an in-process limiter and version store (one worker only).
	RedisURL Secret `yaml:"redis_url"`

	// ProfilesFile is the vendor profiles YAML (see docs/CONFIG.md). Empty:
	// simulated vendors in process with demo profiles.
	ProfilesFile string `yaml:"profiles_file"`
	// Demo feeds generated traffic at DemoRate events/s. Default: on when
	// the vendors are simulated.
	Demo     bool    `yaml:"demo"`
	DemoRate float64 `yaml:"demo_rate"`

	// HTTPAddr serves /metrics, /healthz, /readyz and the status page.
	// Default 127.0.0.1:9464.
	HTTPAddr string `yaml:"http_addr"`

	// Partitions is P when this worker creates the streams (default 32),
	// one per partition; existing streams keep their own P.
	Partitions int `yaml:"partitions"`
	// Replicas of streams and buckets (3 on a cluster). Default 1.
	Replicas int `yaml:"replicas"`

	AckWait    Duration `yaml:"ack_wait"`    // default 60s
	MaxDeliver int      `yaml:"max_deliver"` // default 10

	Grace       Duration `yaml:"grace"`        // coalescing grace, default 50ms
	MaxDelay    Duration `yaml:"max_delay"`    // coalescing max delay, default 1s
	MaxBuffered int      `yaml:"max_buffered"` // default 100000
	RetryBudget Duration `yaml:"retry_budget"` // in-process retry time per batch, default 20s

	LeaseTTL Duration `yaml:"lease_ttl"` // default 30s (see internal/lease)
	// LeaseFailover is the NATS write outage (a node failover) that must
	// not drop partitions; the lease manager refuses to start unless
	// LeaseTTL > 2 × (vendor timeout + LeaseTTL/6) + LeaseFailover.
	// Default 5s.
	LeaseFailover Duration `yaml:"lease_failover"`

	// RedisPrefix starts every Redis key: rate-limit buckets under
	// RedisPrefix + "rl:", field versions under RedisPrefix + "v:". Workers
	// that share vendor quotas must share it. Default "friendsync:".
	RedisPrefix string `yaml:"redis_prefix"`

	// ShutdownTimeout bounds the drain on SIGTERM. Default 25s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	LogLevel  string `yaml:"log_level"`  // debug, info, warn, error; default info
	LogFormat string `yaml:"log_format"` // json or text; default json

	// Profiles is the loaded profiles file, or the demo profiles.
	Profiles Profiles `yaml:"-"`
	// Simulated is true when Profiles are the in-process demo vendors.
	Simulated bool `yaml:"simulated"`
}

// Defaults returns the documented defaults.
func Defaults() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	return Config{
		WorkerID:         sanitizeID(host) + "-" + strconv.Itoa(os.Getpid()),
		Name:             event.DefaultLayout.Base,
		EmbeddedNATSAddr: "127.0.0.1:4223",
		DataDir:          "data/nats",
		DemoRate:         200,
		HTTPAddr:         "127.0.0.1:9464",
		Partitions:       event.DefaultPartitions,
		Replicas:         1,
		AckWait:          Duration(60 * time.Second),
		MaxDeliver:       10,
		Grace:            Duration(50 * time.Millisecond),
		MaxDelay:         Duration(time.Second),
		MaxBuffered:      100_000,
		RetryBudget:      Duration(20 * time.Second),
		LeaseTTL:         Duration(30 * time.Second),
		LeaseFailover:    Duration(5 * time.Second),
		RedisPrefix:      "friendsync:",
		ShutdownTimeout:  Duration(25 * time.Second),
		LogLevel:         "info",
		LogFormat:        "json",
	}
}

// Layout is the stream layout named by Name.
func (c *Config) Layout() event.Layout { return event.Layout{Base: c.Name} }

// Embedded reports whether the worker runs its own nats-server.
func (c *Config) Embedded() bool { return c.NATSURL == "" }

// Load builds the worker configuration from args (flags), getenv
// (FRIENDSYNC_* variables) and the profiles file, then validates it.
// demoProfiles supplies the simulated vendors when no file is given.
func Load(args []string, getenv func(string) string, stderr io.Writer, demoProfiles func() Profiles) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, env, usage string) {
		if v := getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (env "+env+")")
	}
	var envErr error
	num := func(p *int, name, env, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s: %w", env, err))
			}
			*p = n
		}
		fs.IntVar(p, name, *p, usage+" (env "+env+")")
	}
	dur := func(p *Duration, name, env, usage string) {
		d := time.Duration(*p)
		if v := getenv(env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s: %w", env, err))
			}
			d = x
		}
		*p = Duration(d)
		fs.Func(name, usage+" (env "+env+", default "+d.String()+")", func(s string) error {
			x, err := time.ParseDuration(s)
			*p = Duration(x)
			return err
		})
	}
	str(&c.WorkerID, "worker-id", "FRIENDSYNC_WORKER_ID", "worker id in leases and dead letters")
	str(&c.Name, "name", "FRIENDSYNC_NAME", "layout base name (stream, subjects, buckets)")
	str(&c.NATSURL, "nats-url", "FRIENDSYNC_NATS_URL", "NATS URL; empty runs an in-process JetStream server")
	str(&c.NATSCreds, "nats-creds", "FRIENDSYNC_NATS_CREDS", "NATS .creds file")
	str(&c.NATSCA, "nats-ca", "FRIENDSYNC_NATS_CA", "CA file for NATS TLS")
	str(&c.NATSCert, "nats-cert", "FRIENDSYNC_NATS_CERT", "client certificate for NATS TLS")
	str(&c.NATSKey, "nats-key", "FRIENDSYNC_NATS_KEY", "client key for NATS TLS")
	str(&c.EmbeddedNATSAddr, "embedded-nats-addr", "FRIENDSYNC_EMBEDDED_NATS_ADDR", "listen address of the in-process NATS server")
	str(&c.DataDir, "data-dir", "FRIENDSYNC_DATA_DIR", "JetStream directory of the in-process NATS server")
	redisURL := string(c.RedisURL)
	str(&redisURL, "redis-url", "FRIENDSYNC_REDIS_URL", "Redis URL; empty uses an in-process limiter and version store")
	str(&c.ProfilesFile, "profiles", "FRIENDSYNC_PROFILES", "vendor profiles YAML; empty simulates vendors in process")
	demo := ""
	str(&demo, "demo", "FRIENDSYNC_DEMO", "feed generated demo traffic (true/false; default: on with simulated vendors)")
	demoRate := strconv.FormatFloat(c.DemoRate, 'f', -1, 64)
	str(&demoRate, "demo-rate", "FRIENDSYNC_DEMO_RATE", "demo events per second")
	str(&c.HTTPAddr, "http-addr", "FRIENDSYNC_HTTP_ADDR", "address of /metrics, /healthz, /readyz and /ui")
	num(&c.Partitions, "partitions", "FRIENDSYNC_PARTITIONS", "partition count P when creating the streams")
	num(&c.Replicas, "replicas", "FRIENDSYNC_REPLICAS", "stream and bucket replicas")
	dur(&c.AckWait, "ack-wait", "FRIENDSYNC_ACK_WAIT", "JetStream AckWait")
	num(&c.MaxDeliver, "max-deliver", "FRIENDSYNC_MAX_DELIVER", "JetStream MaxDeliver")
	dur(&c.Grace, "grace", "FRIENDSYNC_GRACE", "coalescing grace period")
	dur(&c.MaxDelay, "max-delay", "FRIENDSYNC_MAX_DELAY", "coalescing max delay")
	num(&c.MaxBuffered, "max-buffered", "FRIENDSYNC_MAX_BUFFERED", "bound on buffered events")
	dur(&c.RetryBudget, "retry-budget", "FRIENDSYNC_RETRY_BUDGET", "in-process retry time per batch")
	dur(&c.LeaseTTL, "lease-ttl", "FRIENDSYNC_LEASE_TTL", "partition lease TTL")
	dur(&c.LeaseFailover, "lease-failover", "FRIENDSYNC_LEASE_FAILOVER", "NATS write outage that must not drop partitions")
	str(&c.RedisPrefix, "redis-prefix", "FRIENDSYNC_REDIS_PREFIX", "prefix of every Redis key (rate limits, versions)")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "FRIENDSYNC_SHUTDOWN_TIMEOUT", "drain deadline on SIGTERM")
	str(&c.LogLevel, "log-level", "FRIENDSYNC_LOG_LEVEL", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "FRIENDSYNC_LOG_FORMAT", "json or text")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if envErr != nil {
		return Config{}, fmt.Errorf("config: %w", envErr)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	c.RedisURL = Secret(redisURL)
	var err error
	if c.DemoRate, err = strconv.ParseFloat(demoRate, 64); err != nil {
		return Config{}, fmt.Errorf("config: demo rate: %w", err)
	}
	if c.ProfilesFile != "" {
		if c.Profiles, err = LoadProfiles(c.ProfilesFile, getenv); err != nil {
			return Config{}, err
		}
	} else if demoProfiles != nil {
		c.Profiles = demoProfiles()
		c.Simulated = true
	}
	c.Demo = c.Simulated
	if demo != "" {
		if c.Demo, err = strconv.ParseBool(demo); err != nil {
			return Config{}, fmt.Errorf("config: FRIENDSYNC_DEMO / -demo: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and the cross-field budgets: the in-process
// retry budget plus the coalescing delay must fit well inside AckWait.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.WorkerID == "" || sanitizeID(c.WorkerID) != c.WorkerID {
		bad("worker id %q: use letters, digits, '-' and '_'", c.WorkerID)
	}
	if c.Name == "" || strings.ToLower(c.Name) != c.Name || sanitizeID(c.Name) != c.Name {
		bad("name %q: use lowercase letters, digits, '-' and '_'", c.Name)
	}
	if c.NATSURL != "" {
		if _, err := url.Parse(c.NATSURL); err != nil {
			bad("nats url: %v", err)
		}
	}
	if r := c.RedisURL.Reveal(); r != "" && !strings.HasPrefix(r, "redis://") && !strings.HasPrefix(r, "rediss://") && !strings.HasPrefix(r, "unix://") {
		bad("redis url must start with redis://, rediss:// or unix://")
	}
	if c.Partitions < 1 || c.Partitions > event.MaxPartitions {
		bad("partitions %d: want 1..%d", c.Partitions, event.MaxPartitions)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas %d: want 1..5", c.Replicas)
	}
	if c.MaxDeliver < 2 {
		bad("max deliver %d: want at least 2", c.MaxDeliver)
	}
	if c.Grace <= 0 || c.MaxDelay < c.Grace {
		bad("coalescing: want 0 < grace (%s) ≤ max delay (%s)", time.Duration(c.Grace), time.Duration(c.MaxDelay))
	}
	if c.MaxBuffered < 1 {
		bad("max buffered must be ≥ 1")
	}
	if c.RetryBudget <= 0 {
		bad("retry budget must be > 0")
	}
	// Held messages get InProgress heartbeats, but a batch's retry loop must
	// still end well before AckWait so a stuck call cannot outlive its lease.
	if c.MaxDelay+c.RetryBudget >= c.AckWait/2 {
		bad("max delay (%s) + retry budget (%s) must be under half of ack wait (%s)",
			time.Duration(c.MaxDelay), time.Duration(c.RetryBudget), time.Duration(c.AckWait))
	}
	if time.Duration(c.LeaseTTL) < 3*time.Second {
		bad("lease ttl %s: want at least 3s", time.Duration(c.LeaseTTL))
	}
	if c.LeaseFailover <= 0 || c.LeaseFailover >= c.LeaseTTL {
		bad("lease failover %s: want > 0 and below the lease ttl %s", time.Duration(c.LeaseFailover), time.Duration(c.LeaseTTL))
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, " \t\r\n") {
		bad("redis prefix %q: want a non-empty prefix without white space", c.RedisPrefix)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown timeout must be > 0")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log format %q: want json or text", c.LogFormat)
	}
	if c.Demo && c.DemoRate <= 0 {
		bad("demo rate must be > 0")
	}
	if len(c.Profiles) == 0 {
		bad("no vendor profiles: set -profiles / FRIENDSYNC_PROFILES")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// Print writes the effective configuration as YAML with secrets masked.
func (c *Config) Print(w io.Writer) error {
	type printed struct {
		Config   `yaml:",inline"`
		Redis    string   `yaml:"redis"`
		Profiles Profiles `yaml:"profiles"`
	}
	redis := "in-process"
	if r := c.RedisURL.Reveal(); r != "" {
		redis = "******"
		if u, err := url.Parse(r); err == nil {
			redis = u.Redacted()
		}
	}
	shown := *c
	shown.NATSURL = redactURLs(c.NATSURL) // nats://user:password@… or nats://token@…
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(printed{Config: shown, Redis: redis, Profiles: c.Profiles}); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return enc.Close()
}

// redactURLs masks the whole user information of every URL in a
// comma-separated list (a user name alone may be a token).
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		switch {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "(unparsable URL with credentials)"
		case err == nil && u.User != nil:
			u.User = nil
			scheme, rest, ok := strings.Cut(u.String(), "://")
			if ok {
				parts[i] = scheme + "://***@" + rest
			} else {
				parts[i] = "***@" + u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

func sanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			b[i] = '-'
		}
	}
	return string(b)
}
