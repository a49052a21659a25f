package volc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// FuzzSendResponse feeds arbitrary answers (status, Retry-After, body) to
// Send and checks it never panics, answers every item or returns a
// *vendors.Error, keeps RetryAfter in range and never echoes the secret.
func FuzzSendResponse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, "", string(b))
		f.Add(429, "1", string(b))
	}
	f.Add(200, "", `{"ResponseMetadata":{},"Result":{"FailedInfos":[{"UserId":"10002","Code":59,"Message":"`+vecSK+`"}]}}`)
	f.Add(200, "", `{"ResponseMetadata":{"Error":{"Code":null,"CodeN":"7"}},"Result":null}`)
	f.Add(503, "Wed, 19 Jun 2024 07:13:11 GMT", `<html>`)
	f.Add(200, "-5", `{"ResponseMetadata":{"Error":{"Code":["x"]}}}`)
	f.Add(200, "", `{"ResponseMetadata":{},"Result":{"FailedInfos":[{"UserId":1e3}]}}`)

	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		if status < 100 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			if retryAfter != "" {
				h.Set("Retry-After", retryAfter)
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}, nil
		})
		cfg := validConfig()
		cfg.SendAlias = true
		c, err := New(cfg, &http.Client{Transport: rt})
		if err != nil {
			t.Fatal(err)
		}
		c.now = func() time.Time { return time.Date(2024, 6, 19, 7, 13, 6, 0, time.UTC) }
		cl := call("10001",
			item(0, "10002", map[string]string{"k": "v"}),
			vendors.Item{Ref: 1, To: "10003", Remark: ptr("r")},
			item(2, "1000", map[string]string{"k": ""}))
		res, err := c.Send(context.Background(), cl)
		if err != nil {
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *vendors.Error", err, err)
			}
			if ve.Class < vendors.Retry || ve.Class > vendors.Permanent {
				t.Fatalf("whole-call error with class %v", ve.Class)
			}
			if ve.RetryAfter < 0 || ve.RetryAfter > MaxRetryAfter {
				t.Fatalf("RetryAfter %v out of range", ve.RetryAfter)
			}
			if ve.Class == vendors.Throttled && ve.RetryAfter == 0 {
				t.Fatal("throttled without RetryAfter")
			}
			if strings.Contains(err.Error(), vecSK) {
				t.Fatalf("error leaks the secret: %v", err)
			}
			if len(res.Items) != 0 {
				t.Fatalf("result %+v with an error", res)
			}
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d accepted as success", status)
		}
		if len(res.Items) != len(cl.Items) {
			t.Fatalf("%d results for %d items", len(res.Items), len(cl.Items))
		}
		for _, it := range res.Items {
			if it.Class < vendors.OK || it.Class > vendors.Permanent {
				t.Fatalf("item class %v", it.Class)
			}
			if strings.Contains(it.Message, vecSK) {
				t.Fatalf("item message leaks the secret: %q", it.Message)
			}
			if len(it.Message) > maxMessageBytes+len("unknown code: ")+len("…") {
				t.Fatalf("item message of %d bytes", len(it.Message))
			}
		}
	})
}
