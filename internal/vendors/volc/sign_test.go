package volc

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Vectors copied from VENDORS.md B.2 (sources: volcengine docs 6369/67270,
// 6369/67269, and the official Go SDK's GetSignRequest for vector 3).
const (
	vecAK = "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg"
	vecSK = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ=="
)

type signVector struct {
	name        string
	method      string
	url         string
	contentType string
	body        string
	xdate       string
	region      string
	service     string
	signed      []string // nil = SDK selection
	wantSigned  string
	wantBodySHA string // "" = not given
	wantCRHash  string
	wantKey     string // "" = not given
	wantSig     string
}

var signVectors = []signVector{
	{
		name:       "vector 1 iam ListUsers GET host;x-date",
		method:     http.MethodGet,
		url:        "https://iam.volcengineapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0",
		xdate:      "20240619T071306Z",
		region:     "cn-beijing",
		service:    "iam",
		signed:     []string{"host", "x-date"},
		wantSigned: "host;x-date",
		wantCRHash: "5ed5bca3905e1fcbf789abb56a17c2d819674a3bcfa468ae476bd1ea80d135cb",
		wantKey:    "abee62e533a58934c49954459a3c3237d2fccea517c9a7c8a2651d8ea7779826",
		wantSig:    "e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93",
	},
	{
		name:       "vector 2 billing QueryBalanceAcct GET host;x-date",
		method:     http.MethodGet,
		url:        "https://billing.volcengineapi.com/?Action=QueryBalanceAcct&Version=2022-01-01",
		xdate:      "20250329T180937Z",
		region:     "cn-beijing",
		service:    "billing",
		signed:     []string{"host", "x-date"},
		wantSigned: "host;x-date",
		wantCRHash: "43171c1658c64b5db55c58d54988a4598d2d09a5613136beaa5eef40eae6e2c1",
		wantSig:    "1eda9e7e6b1728151a8e8791fdaf67cfbd28bd5c80d0fce2eb208746cf483105",
	},
	{
		name:       "vector 2 billing ListBill POST host;x-date",
		method:     http.MethodPost,
		url:        "https://billing.volcengineapi.com/?Action=ListBill&Version=2022-01-01",
		body:       `{"Limit":10,"BillPeriod":"2023-08"}`,
		xdate:      "20250329T180937Z",
		region:     "cn-beijing",
		service:    "billing",
		signed:     []string{"host", "x-date"},
		wantSigned: "host;x-date",
		wantCRHash: "27383e3b56d03850f5634483527fbddcbf06cf98de1bc8a6679ef2300bff3b15",
		wantSig:    "5e8480ceea12d0000a23c054151c50dd02c1a7dec835004057d19f13d53a7658",
	},
	{
		name:        "vector 3 rtc UpdateFriend POST SDK headers",
		method:      http.MethodPost,
		url:         "https://rtc.volcengineapi.com/?Action=UpdateFriend&Version=2020-12-01",
		contentType: "application/json",
		body:        `{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`,
		xdate:       "20240619T071306Z",
		region:      "cn-north-1",
		service:     "rtc",
		wantSigned:  "content-type;host;x-content-sha256;x-date",
		wantBodySHA: "dff139ebdd5a288495db9006b4e10dcfceca681a81d9ee5c40538ed153a58525",
		wantCRHash:  "16afd66bdef9ffd9370178258c76c2a0228e6e5eaf2348b67223bd7916a7e8c0",
		wantKey:     "9045b750cfdc16766612b9e8f8dfd36250c1070478dde821f412294b31d422ae",
		wantSig:     "eae8d198759b282fd26375f57ed864aae3e185836d707ff00198070565d8784f",
	},
}

func mustTime(t *testing.T, xdate string) time.Time {
	t.Helper()
	tm, err := time.Parse(TimeFormat, xdate)
	if err != nil {
		t.Fatalf("parse %q: %v", xdate, err)
	}
	return tm
}

// authParts splits an Authorization value into credential, signed headers
// and signature.
func authParts(t *testing.T, auth string) (cred, signed, sig string) {
	t.Helper()
	rest, ok := strings.CutPrefix(auth, Algorithm+" ")
	if !ok {
		t.Fatalf("authorization %q lacks the %s prefix", auth, Algorithm)
	}
	for part := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		default:
			t.Fatalf("unexpected authorization part %q", part)
		}
	}
	return cred, signed, sig
}

func TestSignVectors(t *testing.T) {
	for _, tc := range signVectors {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			now := mustTime(t, tc.xdate)
			cred := Credentials{AccessKey: vecAK, SecretKey: vecSK}
			if tc.signed == nil {
				Sign(req, body, cred, tc.region, tc.service, now)
			} else {
				SignHeaders(req, body, cred, tc.region, tc.service, now, tc.signed)
			}

			if got := req.Header.Get("X-Date"); got != tc.xdate {
				t.Errorf("X-Date = %q, want %q", got, tc.xdate)
			}
			if tc.wantBodySHA != "" {
				if got := req.Header.Get("X-Content-Sha256"); got != tc.wantBodySHA {
					t.Errorf("X-Content-Sha256 = %q, want %q", got, tc.wantBodySHA)
				}
			}
			credStr, signed, sig := authParts(t, req.Header.Get("Authorization"))
			if signed != tc.wantSigned {
				t.Fatalf("SignedHeaders = %q, want %q", signed, tc.wantSigned)
			}
			wantCred := vecAK + "/" + tc.xdate[:8] + "/" + tc.region + "/" + tc.service + "/request"
			if credStr != wantCred {
				t.Errorf("Credential = %q, want %q", credStr, wantCred)
			}
			cr := CanonicalRequest(req, strings.Split(signed, ";"), HashHex(body))
			if got := HashHex([]byte(cr)); got != tc.wantCRHash {
				t.Errorf("canonical request hash = %s, want %s\ncanonical request:\n%s", got, tc.wantCRHash, cr)
			}
			if tc.wantKey != "" {
				if got := hex.EncodeToString(SigningKey(vecSK, tc.xdate[:8], tc.region, tc.service)); got != tc.wantKey {
					t.Errorf("signing key = %s, want %s", got, tc.wantKey)
				}
			}
			if sig != tc.wantSig {
				t.Errorf("signature = %s, want %s", sig, tc.wantSig)
			}
		})
	}
}

func TestCanonicalRequestVector1Text(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://iam.volcengineapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Date", "20240619T071306Z")
	got := CanonicalRequest(req, []string{"host", "x-date"}, HashHex(nil))
	want := "GET\n/\nAction=ListUsers&Limit=10&Offset=0&Version=2018-01-01\n" +
		"host:iam.volcengineapi.com\nx-date:20240619T071306Z\n\nhost;x-date\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Errorf("canonical request:\n%q\nwant\n%q", got, want)
	}
}

func TestCanonicalPieces(t *testing.T) {
	tests := []struct {
		name string
		host string
		path string
		rawQ string
		want string // "host\nuri\nquery"
	}{
		{"default https port stripped", "rtc.volcengineapi.com:443", "", "", "rtc.volcengineapi.com\n/\n"},
		{"default http port stripped", "example.com:80", "/", "", "example.com\n/\n"},
		{"other port kept", "127.0.0.1:8090", "/volc/", "Version=2020-12-01&Action=UpdateFriend",
			"127.0.0.1:8090\n/volc/\nAction=UpdateFriend&Version=2020-12-01"},
		{"port 8443 kept", "example.com:8443", "/", "", "example.com:8443\n/\n"},
		{"path escaped per segment", "h", "/a b/c+d/~x", "q=a b", "h\n/a%20b/c%2Bd/~x\nq=a%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: "GET", Host: tc.host, Header: http.Header{}}
			req.URL = &url.URL{Path: tc.path, RawQuery: tc.rawQ}
			cr := CanonicalRequest(req, []string{"host"}, "h")
			lines := strings.Split(cr, "\n")
			got := strings.TrimPrefix(lines[3], "host:") + "\n" + lines[1] + "\n" + lines[2]
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSDKSignedHeadersSignsEveryXHeader(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Date", "d")
	h.Set("X-Content-Sha256", "s")
	h.Set("X-Im-Sdk-Version", "1")
	h.Set("Accept", "*/*")
	h.Set("User-Agent", "x")
	got := strings.Join(SDKSignedHeaders(h), ";")
	want := "content-type;host;x-content-sha256;x-date;x-im-sdk-version"
	if got != want {
		t.Errorf("signed headers = %q, want %q", got, want)
	}
}

func TestCredentialsStringMasksSecret(t *testing.T) {
	c := Credentials{AccessKey: vecAK, SecretKey: vecSK}
	for _, s := range []string{c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c), fmt.Sprintf("%+v", c)} {
		if strings.Contains(s, vecSK) || strings.Contains(s, vecAK) {
			t.Errorf("credential string %q leaks a key", s)
		}
		if !strings.Contains(s, "***") {
			t.Errorf("credential string %q does not show the masked secret", s)
		}
	}
}
