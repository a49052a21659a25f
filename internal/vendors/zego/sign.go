package zego

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"strconv"
)

// SignatureVersion is the value of the SignatureVersion query parameter.
const SignatureVersion = "2.0"

// Signature returns the ZIM server API signature: the lowercase hex MD5 of
// decimal(appID) + nonce + serverSecret + decimal(timestamp). The nonce and
// timestamp must be the ones sent in the same request's query.
func Signature(appID uint32, nonce, serverSecret string, timestamp int64) string {
	h := md5.New()
	h.Write(strconv.AppendUint(nil, uint64(appID), 10))
	h.Write([]byte(nonce))
	h.Write([]byte(serverSecret))
	h.Write(strconv.AppendInt(nil, timestamp, 10))
	return hex.EncodeToString(h.Sum(nil))
}

// NewNonce returns a SignatureNonce: 16 lowercase hex characters encoding 8
// bytes from crypto/rand.
func NewNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b[:])
}
