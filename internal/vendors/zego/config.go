package zego

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Defaults and bounds of Config.
const (
	// DefaultBaseURL is ZEGO's unified ZIM server API host.
	DefaultBaseURL = "https://zim-api.zego.im"
	// DefaultMaxAliasBatch is the documented UpdateFriendsAlias cap.
	DefaultMaxAliasBatch = 20
	// MaxAliasBatchLimit is the highest cap ZEGO grants on request.
	MaxAliasBatchLimit = 50
	// DefaultTimeout bounds one Send (connect, request and response body).
	DefaultTimeout = 10 * time.Second
)

// Regional ZIM server API hosts (VENDORS.md C.1), for Config.BaseURL when
// an app should pin one region instead of the unified DefaultBaseURL. The
// names follow the hosts' airport codes; all are HTTPS only.
const (
	BaseURLShanghai   = "https://zim-api-sha.zego.im"
	BaseURLHongKong   = "https://zim-api-hkg.zego.im"
	BaseURLFrankfurt  = "https://zim-api-fra.zego.im"
	BaseURLLosAngeles = "https://zim-api-lax.zego.im"
	BaseURLMumbai     = "https://zim-api-bom.zego.im"
	BaseURLSingapore  = "https://zim-api-sgp.zego.im"
)

// Config configures a Client. The zero value of each field except AppID and
// ServerSecret means its default.
type Config struct {
	// BaseURL is the scheme and host of the ZIM server API, optionally with a
	// path prefix (e.g. "http://127.0.0.1:8090/zego" for a simulator).
	// Requests go to BaseURL + "/?Action=...&<common params>".
	// Default DefaultBaseURL; see the BaseURL* constants for regional hosts.
	BaseURL string
	// AppID is the ZEGO AppId (required).
	AppID uint32
	// ServerSecret is the app's server secret from the ZEGO console
	// (required). It is never printed: String masks it.
	ServerSecret string
	// MaxAliasBatch is the most friends per UpdateFriendsAlias call.
	// Default 20; 1..50, and above 20 only once ZEGO raised the app's limit.
	MaxAliasBatch int
	// Timeout bounds one Send. Default 10s.
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.MaxAliasBatch == 0 {
		c.MaxAliasBatch = DefaultMaxAliasBatch
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem with the configuration (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		errs = append(errs, errors.New("BaseURL is not a URL"))
	case u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, fmt.Errorf("BaseURL scheme must be https or http, got %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("BaseURL has no host"))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, errors.New("BaseURL may not carry a query, fragment or user info"))
	}
	if c.AppID == 0 {
		errs = append(errs, errors.New("AppID is required"))
	}
	if c.ServerSecret == "" {
		errs = append(errs, errors.New("ServerSecret is required"))
	} else if strings.TrimSpace(c.ServerSecret) != c.ServerSecret {
		errs = append(errs, errors.New("ServerSecret has leading or trailing white space"))
	}
	if c.MaxAliasBatch < 1 || c.MaxAliasBatch > MaxAliasBatchLimit {
		errs = append(errs, fmt.Errorf("MaxAliasBatch must be 1..%d, got %d", MaxAliasBatchLimit, c.MaxAliasBatch))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout must not be negative, got %s", c.Timeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("zego: config: %w", errors.Join(errs...))
	}
	return nil
}

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}

// String describes the configuration with ServerSecret masked.
func (c Config) String() string {
	return fmt.Sprintf("zego.Config{BaseURL:%q AppID:%d ServerSecret:%s MaxAliasBatch:%d Timeout:%s}",
		c.BaseURL, c.AppID, mask(c.ServerSecret), c.MaxAliasBatch, c.Timeout)
}

// GoString masks ServerSecret under %#v too.
func (c Config) GoString() string { return c.String() }

// LogValue masks ServerSecret when a Config is logged with log/slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.Uint64("app_id", uint64(c.AppID)),
		slog.String("server_secret", mask(c.ServerSecret)),
		slog.Int("max_alias_batch", c.MaxAliasBatch),
		slog.Duration("timeout", c.Timeout),
	)
}
