package vendors

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the HTTP client the vendor clients use when the
// caller gives none: connections are reused (many idle per host, since
// every call goes to one vendor host), dials and TLS handshakes are
// bounded, and redirects are reported, not followed: a redirected POST
// would be replayed as a GET without its body. The per-call timeout is the
// client's own (its Config.Timeout through the request context).
func NewHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
