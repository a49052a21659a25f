package tencent

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultBaseURL  = "https://console.tim.qq.com"
	DefaultSigTTL   = 24 * time.Hour
	DefaultMaxBatch = 1000 // friend_update: at most 1000 UpdateItem entries per request
	DefaultTimeout  = 10 * time.Second

	// MaxBatchLimit is the documented cap of UpdateItem per request.
	MaxBatchLimit = 1000
	// MinSigTTL keeps the admin UserSig from being regenerated on every call.
	MinSigTTL = time.Minute
	// maxIdentifierBytes is Tencent's UserID limit, which the admin obeys too.
	maxIdentifierBytes = 32
)

// Config is one Tencent Cloud Chat app (one SDKAppID). A zero field takes
// the default named in its comment.
//
// BaseURL is the REST domain of the data center the SDKAppID lives in
// (VENDORS.md §A.2; "backup" domains serve the same API):
//
//	China           https://console.tim.qq.com         backup https://adminapi.my-imcloud.com
//	Singapore       https://adminapisgp.im.qcloud.com  backup https://adminapisgp.my-imcloud.com
//	Seoul           https://adminapikr.im.qcloud.com   backup https://adminapikr.my-imcloud.com
//	Tokyo           https://adminapijpn.im.qcloud.com  backup https://adminapijpn.my-imcloud.com
//	Frankfurt       https://adminapiger.im.qcloud.com  backup https://adminapiger.my-imcloud.com
//	Mumbai          https://adminapiind.im.qcloud.com  backup https://adminapiind.my-imcloud.com
//	Silicon Valley  https://adminapiusa.im.qcloud.com  backup https://adminapiusa.my-imcloud.com
//	Jakarta         https://adminapiidn.im.qcloud.com  backup https://adminapiidn.my-imcloud.com
//
// A wrong region answers 70016/70020 (key or SDKAppID not found), which
// classify as Permanent.
type Config struct {
	// BaseURL is scheme://host[:port][/prefix]; the client appends
	// "/v4/sns/friend_update". A path prefix is kept, so a simulator
	// mounted at "http://127.0.0.1:8090/tencent" works. Default
	// DefaultBaseURL (China).
	BaseURL string
	// SDKAppID is the app's id from the Chat console. Required.
	SDKAppID uint64
	// Identifier is an App admin account (≤ 32 bytes); the client signs as
	// it. Required.
	Identifier string
	// Key is the app's secret key from the console, used as raw bytes.
	// Required. Never printed: String masks it.
	Key string
	// SigTTL is the lifetime of the admin UserSig the client generates;
	// it is regenerated once less than half of it remains. Default 24h,
	// at least MinSigTTL.
	SigTTL time.Duration
	// MaxBatch caps the friends in one call. Default 1000, must be 1..1000.
	MaxBatch int
	// Timeout bounds one Send (one HTTP attempt, body included).
	// Default 10s.
	Timeout time.Duration
}

// withDefaults returns c with every zero field set to its default and the
// BaseURL's trailing slashes removed.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.SigTTL == 0 {
		c.SigTTL = DefaultSigTTL
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem of the config, with defaults applied to
// zero fields. Its messages never include the key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("tencent: config: "+format, args...))
	}
	if u, err := url.Parse(c.BaseURL); err != nil {
		bad("BaseURL does not parse")
	} else {
		if u.Scheme != "https" && u.Scheme != "http" {
			bad("BaseURL scheme must be https or http, got %q", u.Scheme)
		}
		if u.Host == "" {
			bad("BaseURL has no host")
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad("BaseURL must not carry a query, fragment or user info")
		}
	}
	if c.SDKAppID == 0 {
		bad("SDKAppID is required")
	}
	switch {
	case c.Identifier == "":
		bad("Identifier (the App admin account) is required")
	case len(c.Identifier) > maxIdentifierBytes:
		bad("Identifier is %d bytes, limit %d", len(c.Identifier), maxIdentifierBytes)
	}
	if c.Key == "" {
		bad("Key is required")
	}
	if c.SigTTL < MinSigTTL {
		bad("SigTTL %s is below %s", c.SigTTL, MinSigTTL)
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxBatchLimit {
		bad("MaxBatch %d must be 1..%d", c.MaxBatch, MaxBatchLimit)
	}
	if c.Timeout < 0 {
		bad("Timeout %s is negative", c.Timeout)
	}
	return errors.Join(errs...)
}

// String prints the config with the key masked.
func (c Config) String() string {
	key := `""`
	if c.Key != "" {
		key = "[redacted]"
	}
	return fmt.Sprintf("tencent.Config{BaseURL:%q SDKAppID:%d Identifier:%q Key:%s SigTTL:%s MaxBatch:%d Timeout:%s}",
		c.BaseURL, c.SDKAppID, c.Identifier, key, c.SigTTL, c.MaxBatch, c.Timeout)
}

// GoString masks the key under %#v too.
func (c Config) GoString() string { return c.String() }
