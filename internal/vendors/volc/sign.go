package volc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Signing constants of the Volcengine OpenAPI gateway (SDK base/sign.go).
const (
	// Algorithm names the scheme in StringToSign and Authorization.
	Algorithm = "HMAC-SHA256"
	// TimeFormat is the layout of X-Date: compact ISO 8601 in UTC.
	TimeFormat = "20060102T150405Z"
)

// Credentials are a Volcengine access key pair. SecretKey never appears in
// String or GoString output.
type Credentials struct {
	AccessKey string
	SecretKey string
}

// String shows the access key only as a short hash and masks the secret.
func (c Credentials) String() string {
	return "volc.Credentials{AccessKey:" + akID(c.AccessKey) + ", SecretKey:" + mask(c.SecretKey) + "}"
}

// GoString keeps %#v from printing the secret.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps slog handlers (JSON included) from printing the secret.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// akID is a stable, non-reversible name for an access key:
// "ak-" + the first 8 hex digits of sha256(AccessKey).
func akID(ak string) string {
	if ak == "" {
		return `""`
	}
	sum := sha256.Sum256([]byte(ak))
	return "ak-" + hex.EncodeToString(sum[:4])
}

func mask(secret string) string {
	if secret == "" {
		return `""`
	}
	return "***"
}

// HashHex is lowercase hex(SHA-256(b)), the form of X-Content-Sha256 and of
// the canonical-request hash.
func HashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// SigningKey derives kSigning: HMAC chains over date (YYYYMMDD), region,
// service and "request", keyed first by the raw secret key bytes (no
// prefix, unlike AWS).
func SigningKey(secretKey, date, region, service string) []byte {
	k := hmacSHA256([]byte(secretKey), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "request")
}

// Scope is the credential scope date/region/service/request.
func Scope(date, region, service string) string {
	return date + "/" + region + "/" + service + "/request"
}

// StringToSign is Algorithm, X-Date, scope and the canonical-request hash,
// one per line.
func StringToSign(xdate, scope, canonicalRequest string) string {
	return Algorithm + "\n" + xdate + "\n" + scope + "\n" + HashHex([]byte(canonicalRequest))
}

// Signature is lowercase hex(HMAC(signingKey, stringToSign)).
func Signature(signingKey []byte, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(signingKey, stringToSign))
}

// CanonicalRequest builds the canonical request of req over signedHeaders,
// used in the order given (pass them lower-cased and sorted, as they appear
// in the Authorization header). The "host" header is read from req.Host
// (req.URL.Host when empty) with a ":80" or ":443" port removed; other
// headers from req.Header, trimmed. bodyHash is HashHex of the body.
//
// It works on both sides: a client request before sending, and a request a
// server received (whose URL holds only path and query).
func CanonicalRequest(req *http.Request, signedHeaders []string, bodyHash string) string {
	var b strings.Builder
	b.WriteString(req.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(req.URL.Path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.URL.RawQuery))
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		h = strings.ToLower(h)
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(req, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(lowerAll(signedHeaders), ";"))
	b.WriteByte('\n')
	b.WriteString(bodyHash)
	return b.String()
}

func lowerAll(hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = strings.ToLower(h)
	}
	return out
}

func headerValue(req *http.Request, lower string) string {
	if lower != "host" {
		return strings.TrimSpace(req.Header.Get(lower))
	}
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	host = strings.TrimSpace(host)
	for _, port := range []string{":80", ":443"} {
		if strings.HasSuffix(host, port) {
			return strings.TrimSuffix(host, port)
		}
	}
	return host
}

// canonicalURI escapes each path segment keeping only RFC 3986 unreserved
// bytes; an empty path is "/".
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '/' || unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// canonicalQuery sorts the parameters by key (url.Values.Encode) and writes
// spaces as %20. An unparsable query keeps the pairs that parse, as
// url.ParseQuery does.
func canonicalQuery(raw string) string {
	v, _ := url.ParseQuery(raw)
	return strings.ReplaceAll(v.Encode(), "+", "%20")
}

// SDKSignedHeaders selects the headers the official Go SDK signs:
// Content-Type, Content-Md5, Host and every header whose canonical name
// starts with "X-", lower-cased and sorted. Host is always included.
func SDKSignedHeaders(h http.Header) []string {
	out := []string{"host"}
	for k := range h {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case ck == "Host":
			continue
		case ck == "Content-Type", ck == "Content-Md5", strings.HasPrefix(ck, "X-"):
			out = append(out, strings.ToLower(ck))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Sign signs req for the given credentials, region and service at time now,
// the way the official SDK does: it sets X-Date (now in UTC) and
// X-Content-Sha256 (of body, which must be the exact bytes req sends), puts
// the query in canonical order, and sets Authorization over Content-Type
// (when present), Host and every X-* header. Set Content-Type and any other
// X-* header before calling it. Every attempt must call Sign again.
func Sign(req *http.Request, body []byte, cred Credentials, region, service string, now time.Time) {
	SignHeaders(req, body, cred, region, service, now, nil)
}

// SignHeaders is Sign with an explicit list of signed headers (for example
// the documentation's minimal "host", "x-date"); nil selects the SDK set
// (SDKSignedHeaders). The list is lower-cased, sorted and de-duplicated.
func SignHeaders(req *http.Request, body []byte, cred Credentials, region, service string, now time.Time, signed []string) {
	xdate := now.UTC().Format(TimeFormat)
	bodyHash := HashHex(body)
	req.Header.Set("X-Date", xdate)
	req.Header.Set("X-Content-Sha256", bodyHash)
	req.Header.Del("Authorization")
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	req.URL.RawQuery = canonicalQuery(req.URL.RawQuery)

	if signed == nil {
		signed = SDKSignedHeaders(req.Header)
	} else {
		signed = lowerAll(signed)
		slices.Sort(signed)
		signed = slices.Compact(signed)
	}
	cr := CanonicalRequest(req, signed, bodyHash)
	date := xdate[:8]
	scope := Scope(date, region, service)
	sig := Signature(SigningKey(cred.SecretKey, date, region, service), StringToSign(xdate, scope, cr))
	req.Header.Set("Authorization", Algorithm+" Credential="+cred.AccessKey+"/"+scope+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
}
