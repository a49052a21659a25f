package tencent

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// UserSigDoc is the JSON document inside a UserSig (TLSSigAPIv2). The field
// order is the official Go library's (ver, identifier, sdkappid, expire,
// time, userbuf, sig).
type UserSigDoc struct {
	Ver        string `json:"TLS.ver"`
	Identifier string `json:"TLS.identifier"`
	SDKAppID   uint64 `json:"TLS.sdkappid"`
	Expire     int64  `json:"TLS.expire"` // seconds
	Time       int64  `json:"TLS.time"`   // Unix seconds of issue
	// UserBuf is the std-base64 user buffer of the PrivateMapKey variants;
	// "" for a plain UserSig.
	UserBuf string `json:"TLS.userbuf,omitempty"`
	Sig     string `json:"TLS.sig"` // std-base64 HMAC-SHA256, see SigOf
}

// ExpiresAt is the instant after which the official verifier calls the sig
// expired (it is expired iff now > TLS.time + TLS.expire).
func (d UserSigDoc) ExpiresAt() time.Time {
	return time.Unix(d.Time, 0).Add(time.Duration(d.Expire) * time.Second)
}

// sigEncoding is Tencent's base64url variant: the standard alphabet with
// '+' → '*', '/' → '-' and padding '=' → '_'.
var sigEncoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// maxSigJSON bounds the inflated document DecodeUserSig reads, so a
// crafted zlib stream cannot expand without limit.
const maxSigJSON = 64 << 10

// SigOf returns the TLS.sig of doc under key: std_base64(HMAC_SHA256(key,
// content)) where content lists identifier, sdkappid, time and expire (and
// userbuf when set), one "TLS.<name>:<value>\n" line each. The key is the
// console secret used as raw bytes, not hex-decoded. doc.Sig is ignored.
func SigOf(key string, doc UserSigDoc) string {
	var b bytes.Buffer
	b.WriteString("TLS.identifier:" + doc.Identifier + "\n")
	b.WriteString("TLS.sdkappid:" + strconv.FormatUint(doc.SDKAppID, 10) + "\n")
	b.WriteString("TLS.time:" + strconv.FormatInt(doc.Time, 10) + "\n")
	b.WriteString("TLS.expire:" + strconv.FormatInt(doc.Expire, 10) + "\n")
	if doc.UserBuf != "" {
		b.WriteString("TLS.userbuf:" + doc.UserBuf + "\n")
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(b.Bytes())
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// GenUserSig returns the UserSig of identifier for sdkAppID, issued at now
// (truncated to whole seconds) and valid for expire (whole seconds, at
// least one). The output matches the official Go library: the document in
// field order written by a json.Encoder, zlib at NoCompression, then
// Tencent's base64url.
func GenUserSig(sdkAppID uint64, key, identifier string, expire time.Duration, now time.Time) (string, error) {
	switch {
	case key == "":
		return "", errors.New("tencent: usersig: empty key")
	case identifier == "":
		return "", errors.New("tencent: usersig: empty identifier")
	case expire < time.Second:
		return "", fmt.Errorf("tencent: usersig: expire %s is below 1s", expire)
	}
	doc := UserSigDoc{
		Ver:        "2.0",
		Identifier: identifier,
		SDKAppID:   sdkAppID,
		Expire:     int64(expire / time.Second),
		Time:       now.Unix(),
	}
	doc.Sig = SigOf(key, doc)

	var js bytes.Buffer
	if err := json.NewEncoder(&js).Encode(doc); err != nil {
		return "", fmt.Errorf("tencent: usersig: encode: %w", err)
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.NoCompression)
	if err != nil {
		return "", fmt.Errorf("tencent: usersig: compress: %w", err)
	}
	if _, err := zw.Write(js.Bytes()); err != nil {
		return "", fmt.Errorf("tencent: usersig: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("tencent: usersig: compress: %w", err)
	}
	return sigEncoding.EncodeToString(z.Bytes()), nil
}

// DecodeUserSig reverses GenUserSig (or any official port): Tencent's
// base64url, zlib, JSON. It does not check the HMAC (compare SigOf with
// the returned doc's Sig for that) and never panics on malformed input.
// Errors never quote the input.
func DecodeUserSig(sig string) (UserSigDoc, error) {
	var doc UserSigDoc
	raw, err := sigEncoding.DecodeString(sig)
	if err != nil {
		return doc, errors.New("tencent: decode usersig: not tencent base64url")
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return doc, errors.New("tencent: decode usersig: not a zlib stream")
	}
	defer zr.Close()
	js, err := io.ReadAll(io.LimitReader(zr, maxSigJSON+1))
	if err != nil {
		return doc, errors.New("tencent: decode usersig: corrupt zlib stream")
	}
	if len(js) > maxSigJSON {
		return doc, fmt.Errorf("tencent: decode usersig: document exceeds %d bytes", maxSigJSON)
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return UserSigDoc{}, errors.New("tencent: decode usersig: document is not the expected JSON")
	}
	switch {
	case doc.Ver != "2.0":
		return UserSigDoc{}, errors.New("tencent: decode usersig: TLS.ver is not 2.0")
	case doc.Sig == "":
		return UserSigDoc{}, errors.New("tencent: decode usersig: missing TLS.sig")
	}
	return doc, nil
}
