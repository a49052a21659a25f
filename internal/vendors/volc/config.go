package volc

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Endpoints and defaults (VENDORS.md B.1; SDK service/im/config.go).
const (
	// DefaultBaseURL serves region cn-north-1.
	DefaultBaseURL = "https://rtc.volcengineapi.com"
	// SingaporeBaseURL serves region ap-southeast-1 (the SDK's name for it;
	// the RTC service config calls the same host ap-singapore-1). It is the
	// default BaseURL when Region is "ap-southeast-1".
	SingaporeBaseURL = "https://open-ap-singapore-1.volcengineapi.com"
	// SingaporeRegion is the region that selects SingaporeBaseURL.
	SingaporeRegion = "ap-southeast-1"

	DefaultRegion   = "cn-north-1"
	DefaultService  = "rtc"
	DefaultMaxBatch = 10 // "一次最多支持更新 10 个好友"
	DefaultTimeout  = 10 * time.Second

	// MaxBatchLimit is the documented cap of FriendInfos per call.
	MaxBatchLimit = 10
)

// Config is one Volcengine account and IM app. Zero values mean the
// documented default.
type Config struct {
	// BaseURL is scheme, host and an optional path prefix; the request goes
	// to BaseURL + "/?Action=UpdateFriend&Version=2020-12-01".
	// Default DefaultBaseURL, or SingaporeBaseURL when Region is
	// "ap-southeast-1". A test or simulator URL such as
	// "http://127.0.0.1:8090/volc" is fine.
	BaseURL string
	// Region of the signing scope. Default "cn-north-1".
	Region string
	// Service of the signing scope. Default "rtc".
	Service string
	// AccessKey and SecretKey of the Volcengine account (required). The
	// rate-limit quota belongs to this account and is shared by all its
	// AppIds. SecretKey never appears in String output or errors.
	AccessKey string
	SecretKey string
	// AppID is the RTC IM AppId (required, 1..2147483647: the SDK's int32).
	AppID int64
	// InboxType isolates data logically; default 0, which is not sent.
	InboxType int
	// SendAlias sends an item's Remark as FriendInfo.Alias. The current API
	// and SDK accept Alias; the original page lists only Ext. When false, an
	// item with a Remark is answered Permanent without being sent.
	SendAlias bool
	// MaxBatch is the most friends per call, 1..10. Default 10.
	MaxBatch int
	// Timeout bounds one Send (one HTTP attempt, body read included).
	// Default 10s.
	Timeout time.Duration
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
		if c.Region == SingaporeRegion {
			c.BaseURL = SingaporeBaseURL
		}
	}
	if c.Service == "" {
		c.Service = DefaultService
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every invalid field (zero values stand for defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(c.BaseURL); err != nil {
		bad("base url: not a URL")
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			bad("base url: scheme must be http or https")
		case u.Host == "":
			bad("base url: host required")
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.BaseURL, "?"):
			bad("base url: must not hold a query or fragment")
		case u.User != nil:
			bad("base url: must not hold user info")
		}
	}
	if strings.TrimSpace(c.Region) != c.Region || strings.ContainsAny(c.Region, "/ ") {
		bad("region: %q is not a region name", c.Region)
	}
	if strings.TrimSpace(c.Service) != c.Service || strings.ContainsAny(c.Service, "/ ") {
		bad("service: %q is not a service name", c.Service)
	}
	if c.AccessKey == "" {
		bad("access key: required")
	}
	if c.SecretKey == "" {
		bad("secret key: required")
	}
	if c.AppID <= 0 || c.AppID > math.MaxInt32 {
		bad("app id: %d out of range 1..%d", c.AppID, math.MaxInt32)
	}
	if c.InboxType < 0 || c.InboxType > math.MaxInt32 {
		bad("inbox type: %d out of range 0..%d", c.InboxType, math.MaxInt32)
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxBatchLimit {
		bad("max batch: %d out of range 1..%d", c.MaxBatch, MaxBatchLimit)
	}
	if c.Timeout < 0 {
		bad("timeout: %s is negative", c.Timeout)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("volc: config: %w", errors.Join(errs...))
}

// String prints the effective configuration with the access key as its
// short hash and the secret key masked.
func (c Config) String() string {
	return fmt.Sprintf("volc.Config{BaseURL:%s Region:%s Service:%s AccessKey:%s SecretKey:%s AppID:%d InboxType:%d SendAlias:%t MaxBatch:%d Timeout:%s}",
		redactURL(c.BaseURL), c.Region, c.Service, akID(c.AccessKey), mask(c.SecretKey), c.AppID, c.InboxType, c.SendAlias, c.MaxBatch, c.Timeout)
}

// GoString keeps %#v from printing the secret.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog handlers (JSON included) from printing the secret.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// redactURL hides a password in user info (which Validate rejects anyway).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(s, "@") {
			return "(unparsable url)"
		}
		return s
	}
	return u.Redacted()
}
