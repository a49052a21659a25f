package config

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

const tencentYAML = `
apps:
  chat:
    vendor: tencent
    tencent:
      sdkappid: 1400000000
      identifier: administrator
      key: {env: TENCENT_KEY}
  zim:
    vendor: zego
    zego:
      app_id: 12345
      server_secret: {value: "zego-secret-value"}
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedenceFlagOverEnvOverDefault(t *testing.T) {
	profiles := writeFile(t, "p.yaml", tencentYAML)
	vars := map[string]string{
		"FRIENDSYNC_PROFILES":  profiles,
		"TENCENT_KEY":          "tencent-secret-value",
		"FRIENDSYNC_GRACE":     "80ms",
		"FRIENDSYNC_HTTP_ADDR": "127.0.0.1:1",
	}
	c, err := Load([]string{"-http-addr", "127.0.0.1:2"}, env(vars), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:2" {
		t.Errorf("flag did not win: %s", c.HTTPAddr)
	}
	if time.Duration(c.Grace) != 80*time.Millisecond {
		t.Errorf("env did not win over default: %s", time.Duration(c.Grace))
	}
	if time.Duration(c.MaxDelay) != time.Second {
		t.Errorf("default max delay: %s", time.Duration(c.MaxDelay))
	}
	if c.Simulated || c.Demo {
		t.Errorf("real profiles must not be simulated or demo")
	}
	if got := c.Profiles["chat"].TencentKey.Reveal(); got != "tencent-secret-value" {
		t.Errorf("tencent key from env: %q", got)
	}
	if !c.Embedded() {
		t.Error("no NATS URL means embedded")
	}
}

func TestLoadDemoProfiles(t *testing.T) {
	demo := func() Profiles {
		ps, err := ParseProfiles([]byte(tencentYAML), env(map[string]string{"TENCENT_KEY": "k"}))
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	c, err := Load(nil, env(nil), io.Discard, demo)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Simulated || !c.Demo {
		t.Errorf("no profiles file: want simulated demo, got simulated=%v demo=%v", c.Simulated, c.Demo)
	}
	c, err = Load([]string{"-demo=false"}, env(nil), io.Discard, demo)
	if err != nil || c.Demo {
		t.Errorf("-demo=false: demo=%v err=%v", c.Demo, err)
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := Defaults()
		c.Profiles = Profiles{"a": {Name: "a", Vendor: event.Zego, Zego: &ZegoProfile{AppID: 1}}}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"retry budget too close to ack wait", func(c *Config) { c.RetryBudget = Duration(40 * time.Second) }, "half of ack wait"},
		{"grace above max delay", func(c *Config) { c.Grace = Duration(2 * time.Second) }, "grace"},
		{"bad worker id", func(c *Config) { c.WorkerID = "a b" }, "worker id"},
		{"uppercase name", func(c *Config) { c.Name = "Friendsync" }, "name"},
		{"redis scheme", func(c *Config) { c.RedisURL = "http://x" }, "redis url"},
		{"partitions", func(c *Config) { c.Partitions = 0 }, "partitions"},
		{"max deliver", func(c *Config) { c.MaxDeliver = 1 }, "max deliver"},
		{"short lease", func(c *Config) { c.LeaseTTL = Duration(time.Second) }, "lease ttl"},
		{"failover not below lease ttl", func(c *Config) { c.LeaseFailover = c.LeaseTTL }, "lease failover"},
		{"zero failover", func(c *Config) { c.LeaseFailover = 0 }, "lease failover"},
		{"empty redis prefix", func(c *Config) { c.RedisPrefix = "" }, "redis prefix"},
		{"redis prefix with space", func(c *Config) { c.RedisPrefix = "a b:" }, "redis prefix"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
		{"no profiles", func(c *Config) { c.Profiles = nil }, "no vendor profiles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadLeaseFailoverAndRedisPrefix(t *testing.T) {
	profiles := writeFile(t, "p.yaml", tencentYAML)
	vars := map[string]string{
		"FRIENDSYNC_PROFILES":       profiles,
		"TENCENT_KEY":               "k",
		"FRIENDSYNC_LEASE_FAILOVER": "2s",
		"FRIENDSYNC_REDIS_PREFIX":   "env:",
	}
	c, err := Load([]string{"-redis-prefix", "flag:"}, env(vars), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.LeaseFailover) != 2*time.Second {
		t.Errorf("lease failover from env: %s", time.Duration(c.LeaseFailover))
	}
	if c.RedisPrefix != "flag:" {
		t.Errorf("redis prefix: flag did not win: %q", c.RedisPrefix)
	}
	d := Defaults()
	if time.Duration(d.LeaseFailover) != 5*time.Second || d.RedisPrefix != "friendsync:" {
		t.Errorf("defaults: failover %s, prefix %q", time.Duration(d.LeaseFailover), d.RedisPrefix)
	}
}

func TestParseProfilesErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {value: s}}\n    colour: red\n", "colour"},
		{"unknown vendor", "apps:\n  a:\n    vendor: wechat\n", "wechat"},
		{"missing section", "apps:\n  a:\n    vendor: tencent\n", "tencent:"},
		{"missing secret", "apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1}\n", "server_secret"},
		{"two secret sources", "apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {value: s, env: X}}\n", "only one"},
		{"volc needs a rate", "apps:\n  a:\n    vendor: volc\n    volc: {access_key: AK, app_id: 1, secret_key: {value: s}}\n", "budget.rate is required"},
		{"rate over tencent qps", "apps:\n  a:\n    vendor: tencent\n    tencent: {sdkappid: 1, identifier: admin, key: {value: k}}\n    budget: {rate: 250}\n", "200"},
		{"shared quota disagrees", "apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {value: s}}\n    budget: {rate: 10}\n  b:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {value: s}}\n    budget: {rate: 15}\n", "shares vendor quota"},
		{"bad app name", "apps:\n  a.b:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {value: s}}\n", "app name"},
		{"no apps", "apps: {}\n", "no apps"},
		{"bad timeout", "apps:\n  a:\n    vendor: zego\n    timeout: soon\n    zego: {app_id: 1, server_secret: {value: s}}\n", `line 4: time: invalid duration "soon"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProfiles([]byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSecretFromFile(t *testing.T) {
	p := writeFile(t, "key", "file-secret\n")
	ps, err := ParseProfiles([]byte("apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {file: "+p+"}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := ps["a"].ZegoSecret.Reveal(); got != "file-secret" {
		t.Errorf("secret from file = %q", got)
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	profiles := writeFile(t, "p.yaml", tencentYAML)
	vars := map[string]string{
		"FRIENDSYNC_PROFILES":  profiles,
		"TENCENT_KEY":          "tencent-secret-value",
		"FRIENDSYNC_REDIS_URL": "redis://user:redis-password@127.0.0.1:6379/0",
	}
	c, err := Load(nil, env(vars), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"tencent-secret-value", "zego-secret-value", "redis-password"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed config leaks %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"127.0.0.1:6379", "sdkappid: 1400000000", "worker_id:"} {
		if !strings.Contains(out, want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadRulesReadsNoSecret(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-secret")
	p := writeFile(t, "p.yaml", "apps:\n  a:\n    vendor: zego\n    zego: {app_id: 1, server_secret: {file: "+missing+"}}\n"+
		"  b:\n    vendor: volc\n    volc: {access_key: AK, app_id: 1, send_alias: true, secret_key: {env: UNSET_VAR}}\n    budget: {rate: 5}\n")
	rules, err := LoadRules(p)
	if err != nil {
		t.Fatal(err)
	}
	if rules["a"].Vendor != event.Zego || rules["b"].Vendor != event.Volc || !rules["b"].VolcAlias {
		t.Errorf("rules %+v", rules)
	}
	if _, err := LoadProfiles(p, env(nil)); err == nil {
		t.Error("LoadProfiles resolved a missing secret")
	}
	bad := writeFile(t, "bad.yaml", "apps:\n  a:\n    vendor: tencent\n")
	if _, err := LoadRules(bad); err == nil || !strings.Contains(err.Error(), "tencent:") {
		t.Errorf("missing section: %v", err)
	}
}
