package zego

import (
	"crypto/md5"
	"encoding/hex"
	"regexp"
	"testing"
)

func TestSignature(t *testing.T) {
	tests := []struct {
		name      string
		appID     uint32
		nonce     string
		secret    string
		timestamp int64
		want      string
	}{
		{
			// Official vector from ZEGO's "Accessing Server APIs" Go sample
			// (VENDORS.md C.1).
			name: "official vector", appID: 12345, nonce: "4fd24687296dd9f3",
			secret: "9193cc662a4c0ec135ec71fb57194b38", timestamp: 1615186943,
			want: "43e5cfcca828314675f91b001390566a",
		},
		{
			// The same input string written out, so the concatenation order
			// is checked independently of the vector.
			name: "max app id", appID: 4294967295, nonce: "0000000000000000",
			secret: "s", timestamp: 0,
			want: md5hex("42949672950000000000000000s0"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Signature(tc.appID, tc.nonce, tc.secret, tc.timestamp); got != tc.want {
				t.Errorf("Signature = %s, want %s", got, tc.want)
			}
		})
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSignatureMatchesDocumentedInput(t *testing.T) {
	const in = "123454fd24687296dd9f39193cc662a4c0ec135ec71fb57194b381615186943"
	if got, want := Signature(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943), md5hex(in); got != want {
		t.Fatalf("Signature = %s, MD5 of the documented input = %s", got, want)
	}
}

func TestNewNonce(t *testing.T) {
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := make(map[string]bool)
	for range 64 {
		n := NewNonce()
		if !hex16.MatchString(n) {
			t.Fatalf("NewNonce = %q, want 16 lowercase hex chars", n)
		}
		if seen[n] {
			t.Fatalf("NewNonce repeated %q within 64 draws", n)
		}
		seen[n] = true
	}
}
