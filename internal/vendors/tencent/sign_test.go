package tencent

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"
)

// Vectors copied from VENDORS.md §A.4 (computed by re-implementation,
// HMAC cross-checked with Python, full usersig accepted by the official Go
// VerifyUserSig).
const (
	vecKey      = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	vecSDKAppID = 1400000000
	vecRow2Sig  = "eAEArgBR-3siVExTLmV4cGlyZSI6ODY0MDAsIlRMUy5pZGVudGlmaWVyIjoiYWRtaW5pc3RyYXRvciIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLnNpZyI6InlMQWUrdzdXVWVVdXFiVjloL1RYNzh1MjFvVEdpK2k5WnAxdTNQcG5ZNjA9IiwiVExTLnRpbWUiOjE3MDAwMDAwMDAsIlRMUy52ZXIiOiIyLjAifQEAAP--Zyozkg__"
)

func TestSigOfVectors(t *testing.T) {
	tests := []struct {
		name       string
		identifier string
		time       int64
		expire     int64
		want       string
	}{
		{"row 1 xiaojun 180 days", "xiaojun", 1700000000, 15552000, "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="},
		{"row 2 administrator 1 day", "administrator", 1700000000, 86400, "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := UserSigDoc{Ver: "2.0", Identifier: tc.identifier, SDKAppID: vecSDKAppID, Time: tc.time, Expire: tc.expire}
			if got := SigOf(vecKey, doc); got != tc.want {
				t.Fatalf("SigOf = %q, want %q", got, tc.want)
			}
			// GenUserSig must embed the same HMAC for the same inputs.
			sig, err := GenUserSig(vecSDKAppID, vecKey, tc.identifier, time.Duration(tc.expire)*time.Second, time.Unix(tc.time, 0))
			if err != nil {
				t.Fatalf("GenUserSig: %v", err)
			}
			got, err := DecodeUserSig(sig)
			if err != nil {
				t.Fatalf("DecodeUserSig(GenUserSig): %v", err)
			}
			if got.Sig != tc.want {
				t.Fatalf("GenUserSig embeds TLS.sig %q, want %q", got.Sig, tc.want)
			}
		})
	}
}

func TestSigOfUserBufChangesContent(t *testing.T) {
	doc := UserSigDoc{Ver: "2.0", Identifier: "xiaojun", SDKAppID: vecSDKAppID, Time: 1700000000, Expire: 15552000}
	plain := SigOf(vecKey, doc)
	doc.UserBuf = base64.StdEncoding.EncodeToString([]byte{1, 2, 3})
	if withBuf := SigOf(vecKey, doc); withBuf == plain {
		t.Fatalf("SigOf ignores TLS.userbuf: %q", withBuf)
	}
}

func TestDecodeRow2UserSig(t *testing.T) {
	doc, err := DecodeUserSig(vecRow2Sig)
	if err != nil {
		t.Fatalf("DecodeUserSig: %v", err)
	}
	want := UserSigDoc{
		Ver: "2.0", Identifier: "administrator", SDKAppID: vecSDKAppID, Expire: 86400, Time: 1700000000,
		Sig: "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60=",
	}
	if doc != want {
		t.Fatalf("decoded %+v, want %+v", doc, want)
	}
	if got := SigOf(vecKey, doc); got != doc.Sig {
		t.Fatalf("recomputed HMAC %q != embedded TLS.sig %q", got, doc.Sig)
	}
	if got := SigOf(vecKey+"x", doc); got == doc.Sig {
		t.Fatal("a different key produced the same HMAC")
	}
	if got, want := doc.ExpiresAt(), time.Unix(1700000000+86400, 0); !got.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", got, want)
	}
}

func TestGenUserSigRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 750e6, time.UTC)
	sig, err := GenUserSig(1400000123, "s3cr3t-key", "admin_01", 36*time.Hour+900*time.Millisecond, now)
	if err != nil {
		t.Fatalf("GenUserSig: %v", err)
	}
	if strings.ContainsAny(sig, "+/=") {
		t.Fatalf("usersig %q uses std base64 characters", sig)
	}
	doc, err := DecodeUserSig(sig)
	if err != nil {
		t.Fatalf("DecodeUserSig: %v", err)
	}
	want := UserSigDoc{Ver: "2.0", Identifier: "admin_01", SDKAppID: 1400000123, Expire: 36 * 3600, Time: now.Unix()}
	want.Sig = SigOf("s3cr3t-key", want)
	if doc != want {
		t.Fatalf("decoded %+v, want %+v", doc, want)
	}

	// Same layout as the official Go library: struct-order JSON with the
	// encoder's trailing newline, zlib NoCompression.
	raw, err := sigEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"TLS.ver":"2.0","TLS.identifier":"admin_01","TLS.sdkappid":1400000123,"TLS.expire":129600,"TLS.time":` +
		"1772366400" + `,"TLS.sig":"` + want.Sig + "\"}\n"
	if string(js) != wantJSON {
		t.Fatalf("document\n got %q\nwant %q", js, wantJSON)
	}
}

func TestGenUserSigRejects(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name, key, id string
		expire        time.Duration
	}{
		{"empty key", "", "admin", time.Hour},
		{"empty identifier", "k", "", time.Hour},
		{"zero expire", "k", "admin", 0},
		{"sub-second expire", "k", "admin", 999 * time.Millisecond},
		{"negative expire", "k", "admin", -time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := GenUserSig(vecSDKAppID, tc.key, tc.id, tc.expire, now)
			if err == nil {
				t.Fatalf("GenUserSig = %q, nil error; want an error", sig)
			}
			if !strings.HasPrefix(err.Error(), "tencent: usersig: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDecodeUserSigRejects(t *testing.T) {
	enc := func(js string) string {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		zw.Write([]byte(js))
		zw.Close()
		return sigEncoding.EncodeToString(b.Bytes())
	}
	tests := []struct{ name, sig string }{
		{"empty", ""},
		{"std base64 alphabet", base64.StdEncoding.EncodeToString([]byte("??>>??>>"))},
		{"not zlib", sigEncoding.EncodeToString([]byte("plain text"))},
		{"truncated", vecRow2Sig[:40]},
		{"not json", enc("hello")},
		{"json array", enc(`[1,2]`)},
		{"wrong version", enc(`{"TLS.ver":"1.0","TLS.identifier":"a","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"x"}`)},
		{"no sig", enc(`{"TLS.ver":"2.0","TLS.identifier":"a","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1}`)},
		{"sdkappid string", enc(`{"TLS.ver":"2.0","TLS.sdkappid":"1","TLS.sig":"x"}`)},
		{"zip bomb", enc(`{"TLS.ver":"2.0","TLS.identifier":"` + strings.Repeat("a", maxSigJSON) + `","TLS.sig":"x"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := DecodeUserSig(tc.sig)
			if err == nil {
				t.Fatalf("DecodeUserSig = %+v, nil error; want an error", doc)
			}
			if (doc != UserSigDoc{}) {
				t.Fatalf("DecodeUserSig returned a partial doc %+v with error %v", doc, err)
			}
		})
	}
}
