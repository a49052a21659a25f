package vendorsim

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Tencent UserSig v2 (VENDORS.md A.4), verified the way the official
// VerifyUserSig does: decode, match sdkappid and identifier, recompute the
// HMAC, check expiry.

// maxUserSigJSON bounds the inflated UserSig document (a real one is about
// 200 bytes); it stops zlib bombs.
const maxUserSigJSON = 16 << 10

var tencentB64 = strings.NewReplacer("*", "+", "-", "/", "_", "=")

// userSigDoc is the decoded UserSig JSON document.
type userSigDoc struct {
	Ver        string
	Identifier string
	SDKAppID   uint64
	Expire     int64
	Time       int64
	UserBuf    string
	hasUserBuf bool
	Sig        string
}

// decodeUserSig reverses base64url_tencent(zlib(json)).
func decodeUserSig(usersig string) (userSigDoc, bool) {
	var d userSigDoc
	z, err := base64.StdEncoding.DecodeString(tencentB64.Replace(usersig))
	if err != nil {
		return d, false
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return d, false
	}
	defer zr.Close()
	js, err := io.ReadAll(io.LimitReader(zr, maxUserSigJSON+1))
	if err != nil || len(js) > maxUserSigJSON {
		return d, false
	}
	doc, ok := parseJSON(js)
	if !ok {
		return d, false
	}
	o, ok := asObject(doc)
	if !ok {
		return d, false
	}
	if d.Ver, ok = asString(o["TLS.ver"]); !ok {
		return d, false
	}
	if d.Identifier, ok = asString(o["TLS.identifier"]); !ok {
		return d, false
	}
	if d.Sig, ok = asString(o["TLS.sig"]); !ok {
		return d, false
	}
	app, ok := asInt(o["TLS.sdkappid"])
	if !ok || app < 0 {
		return d, false
	}
	d.SDKAppID = uint64(app)
	if d.Expire, ok = asInt(o["TLS.expire"]); !ok {
		return d, false
	}
	if d.Time, ok = asInt(o["TLS.time"]); !ok {
		return d, false
	}
	if raw := o["TLS.userbuf"]; !absent(raw) {
		if d.UserBuf, ok = asString(raw); !ok {
			return d, false
		}
		d.hasUserBuf = true
	}
	return d, true
}

// userSigHMAC computes TLS.sig: std_base64(HMAC-SHA256(key, content)).
func userSigHMAC(key, identifier string, sdkappid uint64, t, expire int64, userbuf *string) string {
	var b strings.Builder
	b.WriteString("TLS.identifier:" + identifier + "\n")
	b.WriteString("TLS.sdkappid:" + strconv.FormatUint(sdkappid, 10) + "\n")
	b.WriteString("TLS.time:" + strconv.FormatInt(t, 10) + "\n")
	b.WriteString("TLS.expire:" + strconv.FormatInt(expire, 10) + "\n")
	if userbuf != nil {
		b.WriteString("TLS.userbuf:" + *userbuf + "\n")
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// verifyUserSig checks usersig for (sdkappid, identifier) under key at now
// and returns 0 or the Tencent error code with a description (never the
// signature itself):
//
//	70003 undecodable (not base64url/zlib/JSON, or TLS.ver not "2.0")
//	70014 TLS.sdkappid differs from the URL's sdkappid
//	70013 TLS.identifier differs from the URL's identifier
//	70009 HMAC mismatch (wrong key)
//	70001 expired: now > TLS.time + TLS.expire
//
// The HMAC is checked before expiry, so a forged signature is never
// reported as merely expired.
func verifyUserSig(usersig, key string, sdkappid uint64, identifier string, now time.Time) (int, string) {
	d, ok := decodeUserSig(usersig)
	if !ok || d.Ver != "2.0" {
		return 70003, "UserSig cannot be decoded (base64url, zlib, JSON, TLS.ver 2.0)"
	}
	if d.SDKAppID != sdkappid {
		return 70014, "UserSig sdkappid does not match the request's sdkappid"
	}
	if d.Identifier != identifier {
		return 70013, "UserSig identifier does not match the request's identifier"
	}
	var ub *string
	if d.hasUserBuf {
		ub = &d.UserBuf
	}
	want := userSigHMAC(key, d.Identifier, d.SDKAppID, d.Time, d.Expire, ub)
	if !hmac.Equal([]byte(want), []byte(d.Sig)) {
		return 70009, "UserSig verification failed (key or sdkappid)"
	}
	if d.Expire <= 0 || now.Unix() > satAdd(d.Time, d.Expire) {
		return 70001, "UserSig expired"
	}
	return 0, ""
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
