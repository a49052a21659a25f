package lease

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsSatisfyTheFencingRule(t *testing.T) {
	c := Config{WorkerID: "w1", Partitions: 32}.withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if need := 2*(c.VendorTimeout+c.RenewEvery) + c.Failover; c.TTL <= need {
		t.Fatalf("default ttl %s <= 2 × (vendor timeout + renew every) + failover = %s", c.TTL, need)
	}
	// The fence must leave room for a failover after a missed renew.
	if c.fence() <= c.RenewEvery+c.Failover {
		t.Fatalf("fence %s leaves no room for renew every %s + failover %s", c.fence(), c.RenewEvery, c.Failover)
	}
	if c.PollEvery <= 0 || c.Replicas != 1 || c.ReleaseTimeout <= 0 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{WorkerID: "worker-1_a", Partitions: 12, TTL: 2 * time.Second, RenewEvery: 200 * time.Millisecond,
		VendorTimeout: 300 * time.Millisecond, Margin: 100 * time.Millisecond, Failover: 500 * time.Millisecond,
		PollEvery: 200 * time.Millisecond}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = valid
	}{
		{"valid short test timing", func(*Config) {}, ""},
		{"missing worker id", func(c *Config) { c.WorkerID = "" }, "worker id"},
		{"worker id with a dot", func(c *Config) { c.WorkerID = "a.b" }, "worker id"},
		{"worker id with a space", func(c *Config) { c.WorkerID = "a b" }, "worker id"},
		{"worker id too long", func(c *Config) { c.WorkerID = strings.Repeat("a", 129) }, "worker id"},
		{"no partitions", func(c *Config) { c.Partitions = 0 }, "partitions"},
		{"negative margin", func(c *Config) { c.Margin = -time.Second }, "margin must be positive"},
		{"ttl too short for the fencing rule", func(c *Config) { c.TTL = 1500 * time.Millisecond }, "must exceed 2 ×"},
		{"vendor timeout too long", func(c *Config) { c.VendorTimeout = time.Second }, "must exceed 2 ×"},
		{"default 5 s failover with a 2 s ttl", func(c *Config) { c.Failover = 0 }, "must exceed 2 ×"},
		{"ttl below 100ms", func(c *Config) { c.TTL = 50 * time.Millisecond }, "ttl must be >= 100ms"},
		{"too many replicas", func(c *Config) { c.Replicas = 7 }, "replicas"},
		{"15 s ttl with default renew and vendor timeout", func(c *Config) {
			*c = Config{WorkerID: "w", Partitions: 1, TTL: 15 * time.Second}
		}, "must exceed 2 ×"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "lease: config: ") {
				t.Fatalf("error %q lacks the lease: config: prefix", err)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(nil, Config{WorkerID: "w", Partitions: 1}, Callbacks{}, nil, nil); err == nil {
		t.Fatal("New(nil js) = nil error")
	}
}

func TestKeys(t *testing.T) {
	if got := PartitionKey(7); got != "p.7" {
		t.Fatalf("PartitionKey(7) = %q", got)
	}
	if got := MemberKey("w-1"); got != "w.w-1" {
		t.Fatalf("MemberKey = %q", got)
	}
}
