package vendorsim

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Vectors copied from /work/shared/VENDORS.md (A.4, B.2, C.1).

const vecTencentKey = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

// vecRow2UserSig is the full row-2 UserSig (sorted JSON keys, zlib
// NoCompression).
const vecRow2UserSig = "eAEArgBR-3siVExTLmV4cGlyZSI6ODY0MDAsIlRMUy5pZGVudGlmaWVyIjoiYWRtaW5pc3RyYXRvciIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLnNpZyI6InlMQWUrdzdXVWVVdXFiVjloL1RYNzh1MjFvVEdpK2k5WnAxdTNQcG5ZNjA9IiwiVExTLnRpbWUiOjE3MDAwMDAwMDAsIlRMUy52ZXIiOiIyLjAifQEAAP--Zyozkg__"

func TestUserSigHMACVectors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		id       string
		time     int64
		expire   int64
		expected string
	}{
		{"row 1 xiaojun", "xiaojun", 1700000000, 15552000, "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="},
		{"row 2 administrator", "administrator", 1700000000, 86400, "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := userSigHMAC(vecTencentKey, tc.id, 1400000000, tc.time, tc.expire, nil); got != tc.expected {
				t.Fatalf("TLS.sig = %s, want %s", got, tc.expected)
			}
		})
	}
}

func TestVerifyUserSigRow2(t *testing.T) {
	d, ok := decodeUserSig(vecRow2UserSig)
	if !ok {
		t.Fatal("row-2 UserSig does not decode")
	}
	if d.Sig != "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60=" || d.Identifier != "administrator" || d.SDKAppID != 1400000000 || d.Time != 1700000000 || d.Expire != 86400 || d.Ver != "2.0" {
		t.Fatalf("decoded %+v", d)
	}
	const base = 1700000000
	for _, tc := range []struct {
		name     string
		sig      string
		key      string
		app      uint64
		id       string
		now      int64
		wantCode int
	}{
		{"accepted at time+10", vecRow2UserSig, vecTencentKey, 1400000000, "administrator", base + 10, 0},
		{"accepted at time+expire", vecRow2UserSig, vecTencentKey, 1400000000, "administrator", base + 86400, 0},
		{"expired at time+expire+1", vecRow2UserSig, vecTencentKey, 1400000000, "administrator", base + 86400 + 1, 70001},
		{"wrong key", vecRow2UserSig, vecTencentKey + "x", 1400000000, "administrator", base + 10, 70009},
		{"wrong identifier", vecRow2UserSig, vecTencentKey, 1400000000, "xiaojun", base + 10, 70013},
		{"wrong sdkappid", vecRow2UserSig, vecTencentKey, 1400000001, "administrator", base + 10, 70014},
		{"truncated", vecRow2UserSig[:40], vecTencentKey, 1400000000, "administrator", base + 10, 70003},
		{"not base64", "!!!", vecTencentKey, 1400000000, "administrator", base + 10, 70003},
		{"own signer, sorted keys, default compression", signUserSig(vecTencentKey, 1400000000, "administrator", base, 86400), vecTencentKey, 1400000000, "administrator", base + 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, info := verifyUserSig(tc.sig, tc.key, tc.app, tc.id, time.Unix(tc.now, 0))
			if code != tc.wantCode {
				t.Fatalf("code = %d (%s), want %d", code, info, tc.wantCode)
			}
			if strings.Contains(info, tc.sig) || strings.Contains(info, tc.key) {
				t.Fatalf("info %q leaks a secret", info)
			}
		})
	}
}

const (
	vecVolcAK = "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg"
	vecVolcSK = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ=="
)

func TestVolcSignatureVectors(t *testing.T) {
	emptyHash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, tc := range []struct {
		name     string
		method   string
		host     string
		query    string
		xdate    string
		region   string
		service  string
		signed   []string
		headers  map[string]string
		body     string
		crHash   string
		kSigning string
		sig      string
	}{
		{
			name: "1 official ListUsers", method: "GET", host: "iam.volcengineapi.com",
			query: "Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0", xdate: "20240619T071306Z",
			region: "cn-beijing", service: "iam", signed: []string{"host", "x-date"},
			crHash:   "5ed5bca3905e1fcbf789abb56a17c2d819674a3bcfa468ae476bd1ea80d135cb",
			kSigning: "abee62e533a58934c49954459a3c3237d2fccea517c9a7c8a2651d8ea7779826",
			sig:      "e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93",
		},
		{
			name: "2a QueryBalanceAcct", method: "GET", host: "billing.volcengineapi.com",
			query: "Action=QueryBalanceAcct&Version=2022-01-01", xdate: "20250329T180937Z",
			region: "cn-beijing", service: "billing", signed: []string{"host", "x-date"},
			crHash: "43171c1658c64b5db55c58d54988a4598d2d09a5613136beaa5eef40eae6e2c1",
			sig:    "1eda9e7e6b1728151a8e8791fdaf67cfbd28bd5c80d0fce2eb208746cf483105",
		},
		{
			name: "2b ListBill POST", method: "POST", host: "billing.volcengineapi.com",
			query: "Action=ListBill&Version=2022-01-01", xdate: "20250329T180937Z",
			region: "cn-beijing", service: "billing", signed: []string{"host", "x-date"},
			body:   `{"Limit":10,"BillPeriod":"2023-08"}`,
			crHash: "27383e3b56d03850f5634483527fbddcbf06cf98de1bc8a6679ef2300bff3b15",
			sig:    "5e8480ceea12d0000a23c054151c50dd02c1a7dec835004057d19f13d53a7658",
		},
		{
			name: "3 SDK UpdateFriend", method: "POST", host: "rtc.volcengineapi.com",
			query: "Action=UpdateFriend&Version=2020-12-01", xdate: "20240619T071306Z",
			region: "cn-north-1", service: "rtc", signed: []string{"content-type", "host", "x-content-sha256", "x-date"},
			headers:  map[string]string{"content-type": "application/json", "x-content-sha256": "dff139ebdd5a288495db9006b4e10dcfceca681a81d9ee5c40538ed153a58525"},
			body:     `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`,
			crHash:   "16afd66bdef9ffd9370178258c76c2a0228e6e5eaf2348b67223bd7916a7e8c0",
			kSigning: "9045b750cfdc16766612b9e8f8dfd36250c1070478dde821f412294b31d422ae",
			sig:      "eae8d198759b282fd26375f57ed864aae3e185836d707ff00198070565d8784f",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			bodyHash := sha256Hex([]byte(tc.body))
			if tc.body == "" && bodyHash != emptyHash {
				t.Fatalf("empty body hash %s", bodyHash)
			}
			if h, ok := tc.headers["x-content-sha256"]; ok && h != bodyHash {
				t.Fatalf("body hash %s, vector says %s", bodyHash, h)
			}
			header := func(name string) string {
				switch name {
				case "host":
					return tc.host
				case "x-date":
					return tc.xdate
				}
				return tc.headers[name]
			}
			cr := volcCanonicalRequest(tc.method, "/", q, tc.signed, header, bodyHash)
			if got := sha256Hex([]byte(cr)); got != tc.crHash {
				t.Fatalf("canonical request hash = %s, want %s\n%s", got, tc.crHash, cr)
			}
			if tc.kSigning != "" {
				if got := hex.EncodeToString(volcSigningKey(vecVolcSK, tc.xdate[:8], tc.region, tc.service)); got != tc.kSigning {
					t.Fatalf("kSigning = %s, want %s", got, tc.kSigning)
				}
			}
			if got := volcSignature(vecVolcSK, tc.xdate, tc.region, tc.service, cr); got != tc.sig {
				t.Fatalf("signature = %s, want %s", got, tc.sig)
			}
		})
	}
}

// TestVolcVector3Request checks the test signer against vector 3, so the
// requests the handler tests send are signed as the SDK signs them.
func TestVolcVector3Request(t *testing.T) {
	body := []byte(`{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`)
	req, err := http.NewRequest(http.MethodPost, "https://rtc.volcengineapi.com/?Action=UpdateFriend&Version=2020-12-01", nil)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse("20060102T150405Z", "20240619T071306Z")
	signVolc(req, body, vecVolcAK, vecVolcSK, "cn-north-1", "rtc", now)
	want := "HMAC-SHA256 Credential=" + vecVolcAK + "/20240619/cn-north-1/rtc/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=eae8d198759b282fd26375f57ed864aae3e185836d707ff00198070565d8784f"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization = %s\nwant            %s", got, want)
	}
	a, code := parseVolcAuth(want)
	if code != "" || a.AccessKey != vecVolcAK || a.Date != "20240619" || a.Region != "cn-north-1" || a.Service != "rtc" ||
		a.Terminator != "request" || strings.Join(a.SignedHeaders, ";") != "content-type;host;x-content-sha256;x-date" {
		t.Fatalf("parseVolcAuth = %+v, %q", a, code)
	}
}

func TestParseVolcAuthRejects(t *testing.T) {
	for _, tc := range []struct{ name, h, code string }{
		{"empty", "", "MissingAuthenticationToken"},
		{"other algorithm", "AWS4-HMAC-SHA256 Credential=a/b/c/d/request, SignedHeaders=host, Signature=ab", "SignatureDoesNotMatch"},
		{"no signature", "HMAC-SHA256 Credential=a/b/c/d/request, SignedHeaders=host", "MissingSignature"},
		{"short credential", "HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=ab", "SignatureDoesNotMatch"},
		{"upper-case header", "HMAC-SHA256 Credential=a/b/c/d/request, SignedHeaders=Host, Signature=ab", "SignatureDoesNotMatch"},
		{"no equals", "HMAC-SHA256 Credential", "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code := parseVolcAuth(tc.h); code != tc.code {
				t.Fatalf("code = %q, want %q", code, tc.code)
			}
		})
	}
}

func TestZegoSignatureVector(t *testing.T) {
	const want = "43e5cfcca828314675f91b001390566a"
	if got := zegoSignature(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943); got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
	if got := zegoQuery(12345, "9193cc662a4c0ec135ec71fb57194b38", "x", "4fd24687296dd9f3", 1615186943).Get("Signature"); got != want {
		t.Fatalf("test signer = %s, want %s", got, want)
	}
}

// TestVectorsThroughHandler sends the vector credentials through the
// handler at the vector's time: the demo credentials are the vectors'.
func TestVectorsThroughHandler(t *testing.T) {
	t.Run("tencent row-2 UserSig", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			now  int64
			code int
		}{{"time+10", 1700000010, 0}, {"time+expire+1", 1700000000 + 86400 + 1, 70001}} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, func(c *Config) { c.Now = func() time.Time { return time.Unix(tc.now, 0) } })
				r := h.tencent(tBody("alice", tItem("bob", "Tag_SNS_IM_Remark", "r")), func(q url.Values) { q.Set("usersig", vecRow2UserSig) })
				if r.ErrorCode != tc.code {
					t.Fatalf("ErrorCode = %d (%s), want %d", r.ErrorCode, r.ErrorInfo, tc.code)
				}
			})
		}
	})
	t.Run("zego official vector", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			now  int64
			code int
		}{{"within skew", 1615186943 + 599, 0}, {"beyond skew", 1615186943 + 601, 100000004}} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, func(c *Config) { c.Now = func() time.Time { return time.Unix(tc.now, 0) } })
				r := h.zego(APIZegoAlias, zAlias("u1", "u2", "a"), func(q url.Values) {
					q.Set("Timestamp", "1615186943")
					q.Set("Signature", "43e5cfcca828314675f91b001390566a")
				})
				if r.Code != tc.code {
					t.Fatalf("Code = %d (%s), want %d", r.Code, r.Message, tc.code)
				}
			})
		}
	})
}
