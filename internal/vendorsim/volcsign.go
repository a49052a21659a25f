package vendorsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// Volcengine request signing (VENDORS.md B.2), recomputed from what the
// request carries and the SignedHeaders it lists.

const volcAlgorithm = "HMAC-SHA256"

// volcAuth is a parsed Authorization header:
// "HMAC-SHA256 Credential=AK/date/region/service/request,
// SignedHeaders=a;b, Signature=hex".
type volcAuth struct {
	AccessKey     string
	Date          string
	Region        string
	Service       string
	Terminator    string
	SignedHeaders []string
	Signature     string
}

// parseVolcAuth parses h; code is "" on success, else the gateway code
// that describes the defect (MissingAuthenticationToken, MissingSignature,
// SignatureDoesNotMatch).
func parseVolcAuth(h string) (volcAuth, string) {
	var a volcAuth
	if strings.TrimSpace(h) == "" {
		return a, "MissingAuthenticationToken"
	}
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != volcAlgorithm {
		return a, "SignatureDoesNotMatch"
	}
	var cred, signed string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, "SignatureDoesNotMatch"
		}
		switch k {
		case "Credential":
			cred, haveCred = v, true
		case "SignedHeaders":
			signed, haveSigned = v, true
		case "Signature":
			a.Signature, haveSig = v, true
		}
	}
	if !haveSig || a.Signature == "" {
		return a, "MissingSignature"
	}
	if !haveCred || !haveSigned || signed == "" {
		return a, "SignatureDoesNotMatch"
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" {
		return a, "SignatureDoesNotMatch"
	}
	a.AccessKey, a.Date, a.Region, a.Service, a.Terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	a.SignedHeaders = strings.Split(signed, ";")
	for _, name := range a.SignedHeaders {
		if name == "" || name != strings.ToLower(name) {
			return a, "SignatureDoesNotMatch"
		}
	}
	return a, ""
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// volcCanonicalQuery sorts by key, URL-encodes (url.Values.Encode) and
// turns "+" into "%20".
func volcCanonicalQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// volcCanonicalURI RFC3986-encodes each segment of the decoded path.
func volcCanonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = rfc3986(s)
	}
	return strings.Join(segs, "/")
}

func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		const hexdig = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// volcHostValue strips a default port from a Host header value.
func volcHostValue(host string) string {
	if h, ok := strings.CutSuffix(host, ":80"); ok {
		return h
	}
	if h, ok := strings.CutSuffix(host, ":443"); ok {
		return h
	}
	return host
}

// volcCanonicalRequest builds the canonical request; header returns the
// request's (already trimmed) value of a lower-case header name.
func volcCanonicalRequest(method, path string, q url.Values, signed []string, header func(string) string, bodyHash string) string {
	var b strings.Builder
	b.WriteString(method + "\n")
	b.WriteString(volcCanonicalURI(path) + "\n")
	b.WriteString(volcCanonicalQuery(q) + "\n")
	for _, name := range signed {
		b.WriteString(name + ":" + strings.TrimSpace(header(name)) + "\n")
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(signed, ";") + "\n")
	b.WriteString(bodyHash)
	return b.String()
}

// volcSigningKey derives kSigning from the raw secret key (no prefix).
func volcSigningKey(sk, date, region, service string) []byte {
	k := hmacSHA256([]byte(sk), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "request")
}

// volcSignature returns the hex signature of canonicalRequest.
func volcSignature(sk, xdate, region, service, canonicalRequest string) string {
	date := xdate
	if len(date) > 8 {
		date = date[:8]
	}
	scope := date + "/" + region + "/" + service + "/request"
	sts := volcAlgorithm + "\n" + xdate + "\n" + scope + "\n" + sha256Hex([]byte(canonicalRequest))
	return hex.EncodeToString(hmacSHA256(volcSigningKey(sk, date, region, service), sts))
}
