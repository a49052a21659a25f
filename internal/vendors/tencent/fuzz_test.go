package tencent

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

func FuzzDecodeUserSig(f *testing.F) {
	f.Add(vecRow2Sig)
	if sig, err := GenUserSig(vecSDKAppID, vecKey, "xiaojun", 180*24*time.Hour, time.Unix(1700000000, 0)); err == nil {
		f.Add(sig)
	}
	f.Add("")
	f.Add("eJw_")
	f.Add("eAEArgBR-3siVExT")
	f.Fuzz(func(t *testing.T, sig string) {
		doc, err := DecodeUserSig(sig)
		if err != nil {
			if (doc != UserSigDoc{}) {
				t.Fatalf("error %v with a non-zero doc %+v", err, doc)
			}
			return
		}
		if doc.Ver != "2.0" || doc.Sig == "" {
			t.Fatalf("accepted doc %+v lacks TLS.ver 2.0 or TLS.sig", doc)
		}
		_ = SigOf(vecKey, doc)
		_ = doc.ExpiresAt()
	})
}

// FuzzInterpret feeds arbitrary answers through the response parser: it
// must not panic, and must return either one result per item or a valid
// whole-call error.
func FuzzInterpret(f *testing.F) {
	for _, name := range []string{"batch_response.json", "basic_response.json"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(200, []byte(b), "")
		}
	}
	f.Add(200, []byte(`{"ActionStatus":"FAIL","ErrorCode":70050,"ErrorInfo":"x"}`), "")
	f.Add(200, []byte(`{"ResultItem":[{"To_Account":"id2","ResultCode":30008},{"To_Account":"id2","ResultCode":0}],"ErrorCode":30006}`), "")
	f.Add(429, []byte(``), "3")
	f.Add(429, []byte(``), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(503, []byte(`{"ErrorCode":60018}`), "-5")
	f.Add(403, []byte(`{"ErrorCode":70001}`), "")
	f.Add(200, []byte(`{"ResultItem":null,"ErrorCode":1e400}`), "")
	f.Add(200, []byte(`[`), "")
	items := []vendors.Item{{To: "id1"}, {To: "id2"}, {To: "id2"}, {To: ""}}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfterHdr string) {
		hdr := http.Header{}
		hdr.Set("Retry-After", retryAfterHdr)
		a := interpret(status, hdr, body, items, now, func(s string) string { return s })
		validClass := func(c vendors.Class) bool { return c >= vendors.OK && c <= vendors.Permanent }
		if a.err != nil {
			if a.res.Items != nil {
				t.Fatalf("whole-call error %v together with items %+v", a.err, a.res.Items)
			}
			if !validClass(a.err.Class) || a.err.Class == vendors.OK {
				t.Fatalf("whole-call error with class %s", a.err.Class)
			}
			if a.err.RetryAfter < 0 || a.err.RetryAfter > maxRetryAfter {
				t.Fatalf("RetryAfter %s out of range", a.err.RetryAfter)
			}
			_ = a.err.Error()
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d produced per-item results", status)
		}
		if len(a.res.Items) != len(items) {
			t.Fatalf("%d results for %d items", len(a.res.Items), len(items))
		}
		for i, r := range a.res.Items {
			if !validClass(r.Class) {
				t.Fatalf("item %d class %s", i, r.Class)
			}
			if len(r.Message) > maxMessageBytes+100 {
				t.Fatalf("item %d message is %d bytes", i, len(r.Message))
			}
		}
	})
}
