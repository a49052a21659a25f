package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/friendsync/friendsync/event"
)

// Secret is a credential. Its String and YAML forms are masked, so it
// cannot leak through logs or the printed configuration.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "******"
}

// Reveal returns the secret's value for the one place that signs with it.
func (s Secret) Reveal() string { return string(s) }

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// SecretRef is how a profile names a secret: inline (discouraged), from a
// file (Docker/Kubernetes secrets) or from an environment variable.
type SecretRef struct {
	Value Secret `yaml:"value,omitempty"`
	File  string `yaml:"file,omitempty"`
	Env   string `yaml:"env,omitempty"`
}

func (r SecretRef) resolve(getenv func(string) string) (Secret, error) {
	n := 0
	for _, s := range []string{string(r.Value), r.File, r.Env} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return "", errors.New("missing: set value, file or env")
	case n > 1:
		return "", errors.New("set only one of value, file, env")
	case r.File != "":
		b, err := os.ReadFile(r.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return Secret(strings.TrimSpace(string(b))), nil
	case r.Env != "":
		v := getenv(r.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", r.Env)
		}
		return Secret(v), nil
	}
	return r.Value, nil
}

// BudgetConfig overrides a vendor quota's limiter settings.
type BudgetConfig struct {
	// Rate in calls/s shared by all workers. Default 0.9 x the documented
	// QPS (Tencent 200, ZEGO 20 per API); required for Volcengine, which
	// documents none.
	Rate float64 `yaml:"rate,omitempty"`
	// Burst is the bucket size. Default: up to 95% of the documented QPS
	// minus Rate (Tencent 180 + 10; ZEGO 17 + 2), so no 1-second window
	// can exceed the documented QPS even with jitter; Rate/10 for
	// Volcengine (at least 2). Package ratelimit applies the defaults and
	// checks that Rate + Burst stays within the documented QPS.
	Burst int `yaml:"burst,omitempty"`
	// Reserve is the bucket fraction kept for live traffic. Default 0.2.
	Reserve float64 `yaml:"reserve,omitempty"`
}

// TencentProfile holds Tencent Cloud Chat credentials.
type TencentProfile struct {
	// BaseURL defaults to https://console.tim.qq.com; regional domains such
	// as https://adminapisgp.im.qcloud.com are listed in docs/CONFIG.md.
	BaseURL    string    `yaml:"base_url,omitempty"`
	SDKAppID   uint64    `yaml:"sdkappid"`
	Identifier string    `yaml:"identifier"` // the App admin account
	Key        SecretRef `yaml:"key"`
	MaxBatch   int       `yaml:"max_batch,omitempty"` // default 1000
}

// VolcProfile holds Volcengine RTC IM credentials.
type VolcProfile struct {
	BaseURL   string    `yaml:"base_url,omitempty"` // default https://rtc.volcengineapi.com
	Region    string    `yaml:"region,omitempty"`   // default cn-north-1
	AccessKey string    `yaml:"access_key"`
	SecretKey SecretRef `yaml:"secret_key"`
	AppID     int64     `yaml:"app_id"`
	SendAlias bool      `yaml:"send_alias,omitempty"` // send remark as FriendInfo.Alias
	MaxBatch  int       `yaml:"max_batch,omitempty"`  // default 10
}

// ZegoProfile holds ZEGOCLOUD ZIM credentials.
type ZegoProfile struct {
	BaseURL       string    `yaml:"base_url,omitempty"` // default https://zim-api.zego.im
	AppID         uint32    `yaml:"app_id"`
	ServerSecret  SecretRef `yaml:"server_secret"`
	MaxAliasBatch int       `yaml:"max_alias_batch,omitempty"` // default 20 (50 on request to ZEGO)
}

// Profile is one app: its vendor, credentials and limits.
type Profile struct {
	Name    string          `yaml:"-"`
	Vendor  event.Vendor    `yaml:"vendor"`
	Tencent *TencentProfile `yaml:"tencent,omitempty"`
	Volc    *VolcProfile    `yaml:"volc,omitempty"`
	Zego    *ZegoProfile    `yaml:"zego,omitempty"`
	Budget  BudgetConfig    `yaml:"budget,omitempty"`
	// Timeout of one vendor call; default 10s.
	Timeout Duration `yaml:"timeout,omitempty"`

	// Resolved secrets, filled by LoadProfiles.
	TencentKey Secret `yaml:"-"`
	VolcSecret Secret `yaml:"-"`
	ZegoSecret Secret `yaml:"-"`
}

// Rules returns the validation rules of the profile's events.
func (p *Profile) Rules() event.Rules {
	r := event.Rules{Vendor: p.Vendor}
	if p.Volc != nil {
		r.VolcAlias = p.Volc.SendAlias
	}
	return r
}

// Profiles maps app names to profiles.
type Profiles map[string]*Profile

// Names returns the app names, sorted.
func (ps Profiles) Names() []string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Rules returns the validation rules per app, for the producer library.
func (ps Profiles) Rules() map[string]event.Rules {
	m := make(map[string]event.Rules, len(ps))
	for n, p := range ps {
		m[n] = p.Rules()
	}
	return m
}

type profilesFile struct {
	Apps map[string]*Profile `yaml:"apps"`
}

// LoadProfiles reads and validates a profiles file, resolving secrets.
func LoadProfiles(path string, getenv func(string) string) (Profiles, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: profiles: %w", err)
	}
	return ParseProfiles(b, getenv)
}

// LoadRules reads a profiles file for its validation rules only: each
// app's vendor and switches. It never reads a secret (no file, no
// variable), so enqueue can validate a backfill on a host that holds no
// vendor credentials.
func LoadRules(path string) (map[string]event.Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: profiles: %w", err)
	}
	ps, err := parseProfiles(b, nil)
	if err != nil {
		return nil, err
	}
	return ps.Rules(), nil
}

// ParseProfiles parses and validates profiles YAML, resolving secrets.
func ParseProfiles(data []byte, getenv func(string) string) (Profiles, error) {
	return parseProfiles(data, getenv)
}

// parseProfiles resolves secrets with getenv, or not at all when getenv is
// nil (rules only).
func parseProfiles(data []byte, getenv func(string) string) (Profiles, error) {
	var f profilesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("config: profiles: %w", err)
	}
	if len(f.Apps) == 0 {
		return nil, errors.New("config: profiles: no apps defined (want a top-level 'apps:' map)")
	}
	ps := Profiles{}
	for name, p := range f.Apps {
		if p == nil {
			return nil, fmt.Errorf("config: profiles: app %q: empty profile", name)
		}
		p.Name = name
		if getenv == nil {
			if err := p.checkSection(); err != nil {
				return nil, fmt.Errorf("config: profiles: app %q: %w", name, err)
			}
		} else if err := p.resolve(getenv); err != nil {
			return nil, fmt.Errorf("config: profiles: app %q: %w", name, err)
		}
		ps[name] = p
	}
	if err := ps.Validate(); err != nil {
		return nil, err
	}
	return ps, nil
}

// checkSection checks that the vendor is known and its section present,
// without resolving secrets.
func (p *Profile) checkSection() error {
	switch {
	case p.Vendor == event.Tencent && p.Tencent == nil:
		return errors.New("vendor tencent needs a 'tencent:' section")
	case p.Vendor == event.Volc && p.Volc == nil:
		return errors.New("vendor volc needs a 'volc:' section")
	case p.Vendor == event.Zego && p.Zego == nil:
		return errors.New("vendor zego needs a 'zego:' section")
	case !p.Vendor.Valid():
		return fmt.Errorf("vendor %q: want tencent, volc or zego", p.Vendor)
	}
	return nil
}

func (p *Profile) resolve(getenv func(string) string) error {
	var err error
	switch p.Vendor {
	case event.Tencent:
		if p.Tencent == nil {
			return errors.New("vendor tencent needs a 'tencent:' section")
		}
		if p.TencentKey, err = p.Tencent.Key.resolve(getenv); err != nil {
			return fmt.Errorf("tencent.key: %w", err)
		}
	case event.Volc:
		if p.Volc == nil {
			return errors.New("vendor volc needs a 'volc:' section")
		}
		if p.VolcSecret, err = p.Volc.SecretKey.resolve(getenv); err != nil {
			return fmt.Errorf("volc.secret_key: %w", err)
		}
	case event.Zego:
		if p.Zego == nil {
			return errors.New("vendor zego needs a 'zego:' section")
		}
		if p.ZegoSecret, err = p.Zego.ServerSecret.resolve(getenv); err != nil {
			return fmt.Errorf("zego.server_secret: %w", err)
		}
	default:
		return fmt.Errorf("vendor %q: want tencent, volc or zego", p.Vendor)
	}
	return nil
}

// Validate checks every profile and that profiles sharing a vendor quota
// agree on its budget.
func (ps Profiles) Validate() error {
	budgets := map[string]BudgetConfig{}
	for _, name := range ps.Names() {
		p := ps[name]
		if err := (&event.Event{App: name, From: "a", To: "b", Remark: event.Ptr("")}).Validate(); err != nil {
			return fmt.Errorf("config: profiles: app name %q: %w", name, err)
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("config: profiles: app %q: %w", name, err)
		}
		q := p.QuotaID()
		if prev, ok := budgets[q]; ok && prev != p.Budget {
			return fmt.Errorf("config: profiles: app %q shares vendor quota %s with another app but sets a different budget", name, q)
		}
		budgets[q] = p.Budget
	}
	return nil
}

func (p *Profile) validate() error {
	n := 0
	for _, set := range []bool{p.Tencent != nil, p.Volc != nil, p.Zego != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("exactly one vendor section must be set (have %d)", n)
	}
	if p.Budget.Rate < 0 || p.Budget.Burst < 0 || p.Budget.Reserve < 0 || p.Budget.Reserve >= 1 {
		return errors.New("budget: rate and burst must be ≥ 0 and reserve in [0, 1)")
	}
	if p.Timeout < 0 {
		return errors.New("timeout must be ≥ 0")
	}
	switch p.Vendor {
	case event.Tencent:
		t := p.Tencent
		if t.SDKAppID == 0 || t.Identifier == "" {
			return errors.New("tencent: sdkappid and identifier are required")
		}
		if t.MaxBatch < 0 || t.MaxBatch > 1000 {
			return errors.New("tencent: max_batch must be 1..1000")
		}
		if lim := float64(TencentQPS); p.Budget.Rate > lim {
			return fmt.Errorf("budget.rate %.0f exceeds tencent's documented %d calls/s", p.Budget.Rate, TencentQPS)
		}
	case event.Volc:
		v := p.Volc
		if v.AccessKey == "" || v.AppID == 0 {
			return errors.New("volc: access_key and app_id are required")
		}
		if v.MaxBatch < 0 || v.MaxBatch > 10 {
			return errors.New("volc: max_batch must be 1..10")
		}
		if p.Budget.Rate <= 0 {
			return errors.New("volc: budget.rate is required (Volcengine documents no QPS; ask your account manager)")
		}
	case event.Zego:
		z := p.Zego
		if z.AppID == 0 {
			return errors.New("zego: app_id is required")
		}
		if z.MaxAliasBatch < 0 || z.MaxAliasBatch > 50 {
			return errors.New("zego: max_alias_batch must be 1..50")
		}
		if p.Budget.Rate > ZegoQPS {
			return fmt.Errorf("budget.rate %.0f exceeds zego's documented %d calls/s per API", p.Budget.Rate, ZegoQPS)
		}
	}
	return nil
}

// Documented vendor QPS limits.
const (
	TencentQPS = 200 // friend_update, per SDKAppID
	ZegoQPS    = 20  // per API, per AppID
)

// QuotaID names the vendor quota the profile draws on; profiles with the
// same QuotaID share one budget (Tencent per SDKAppID, ZEGO per AppID,
// Volcengine per account access key). It never contains a secret.
func (p *Profile) QuotaID() string {
	switch {
	case p.Tencent != nil:
		return "tencent:" + strconv.FormatUint(p.Tencent.SDKAppID, 10)
	case p.Volc != nil:
		return "volc:" + p.Volc.AccessKey
	case p.Zego != nil:
		return "zego:" + strconv.FormatUint(uint64(p.Zego.AppID), 10)
	}
	return ""
}
