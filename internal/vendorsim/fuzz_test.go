package vendorsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

// The fuzz targets send each input twice: once correctly signed (so the
// body parser runs) and once with the fuzzed query or headers as given (so
// the query and credential parsers run). The handler must never panic and
// must always answer in the vendor's shape.

var fuzzNow = time.Unix(1700000000, 0)

func fuzzSim(f *testing.F) *Sim {
	f.Helper()
	cfg := DemoConfig()
	cfg.WriteTime = -1
	cfg.TencentQPS, cfg.ZegoQPS = -1, -1
	cfg.MaxFriends = 10000
	cfg.Now = func() time.Time { return fuzzNow }
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func serve(s *Sim, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func mustJSON(t *testing.T, what string, rec *httptest.ResponseRecorder, dst any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), dst); err != nil {
		t.Fatalf("%s: HTTP %d, body not JSON: %q", what, rec.Code, rec.Body.String())
	}
}

func FuzzTencentRequest(f *testing.F) {
	f.Add("sdkappid=1400000000&identifier=administrator&usersig=x&random=1&contenttype=json", []byte(`{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"r"}]}]}`))
	f.Add("", []byte(`{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Group","Value":["g",""]},{"Tag":"Tag_SNS_Custom_K","Value":12}]}]}`))
	f.Add("usersig="+vecRow2UserSig, []byte(`{"From_Account":"a","UpdateItem":[null,1,"x",{"To_Account":5}]}`))
	f.Add("sdkappid=-1&random=99999999999", []byte(`{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_Custom_","Value":1e400}]}]}`))
	s := fuzzSim(f)
	sig := signUserSig(DemoTencentKey, DemoTencentSDKAppID, DemoTencentAdmin, fuzzNow.Unix(), 86400)
	signed := url.Values{"sdkappid": {"1400000000"}, "identifier": {DemoTencentAdmin}, "usersig": {sig}, "random": {"1"}, "contenttype": {"json"}}.Encode()
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte) {
		for _, q := range []string{signed, rawQuery} {
			req := httptest.NewRequest(http.MethodPost, "http://sim.test"+tencentPath, bytes.NewReader(body))
			req.URL.RawQuery = q
			rec := serve(s, req)
			var r tResp
			mustJSON(t, "tencent", rec, &r)
			if rec.Code != 200 || (r.ActionStatus != "OK" && r.ActionStatus != "FAIL") {
				t.Fatalf("HTTP %d ActionStatus %q", rec.Code, r.ActionStatus)
			}
			if r.ActionStatus == "OK" && (r.ErrorCode != 0 || len(r.ResultItem) == 0) {
				t.Fatalf("OK with ErrorCode %d and %d results", r.ErrorCode, len(r.ResultItem))
			}
		}
	})
}

func FuzzUserSig(f *testing.F) {
	f.Add(vecRow2UserSig)
	f.Add(vecRow2UserSig[:60])
	f.Add("eJyrVgrxCdYrSy1SslIyUqoFAB9jBHI_")
	f.Fuzz(func(t *testing.T, sig string) {
		code, _ := verifyUserSig(sig, vecTencentKey, 1400000000, "administrator", fuzzNow)
		if code != 0 && code != 70001 && code != 70003 && code != 70009 && code != 70013 && code != 70014 {
			t.Fatalf("code %d", code)
		}
	})
}

func FuzzVolcRequest(f *testing.F) {
	f.Add([]byte(`{"AppId":123456,"UserId":10001,"FriendInfos":[{"FriendUserId":10002,"Ext":{"k":"v"}}]}`), "HMAC-SHA256 Credential=a/20231114/cn-north-1/rtc/request, SignedHeaders=host;x-date, Signature=00", "20231114T221320Z")
	f.Add([]byte(`{"AppId":123456,"UserId":1,"InboxType":1e2,"FriendInfos":[{"FriendUserId":-1,"Alias":"x","Ext":null}]}`), "HMAC-SHA256 ,,=", "x")
	f.Add([]byte(`{"AppId":2147483648,"UserId":9223372036854775808,"FriendInfos":[]}`), "", "")
	s := fuzzSim(f)
	f.Fuzz(func(t *testing.T, body []byte, auth, xdate string) {
		for i := range 2 {
			req := httptest.NewRequest(http.MethodPost, "http://rtc.test/volc/?Action=UpdateFriend&Version=2020-12-01", bytes.NewReader(body))
			if i == 0 {
				signVolc(req, body, DemoVolcAccessKey, DemoVolcSecretKey, "cn-north-1", "rtc", fuzzNow)
			} else {
				req.Header.Set("Authorization", auth)
				req.Header.Set("X-Date", xdate)
			}
			rec := serve(s, req)
			var r vResp
			mustJSON(t, "volc", rec, &r)
			if (rec.Code == 200) != (r.ResponseMetadata.Error == nil) {
				t.Fatalf("HTTP %d with Error %+v", rec.Code, r.ResponseMetadata.Error)
			}
			if rec.Code == 200 && r.Result == nil {
				t.Fatal("HTTP 200 without Result")
			}
			if i == 0 && rec.Code == 401 {
				t.Fatalf("a correctly signed request was refused: %s", rec.Body)
			}
		}
	})
}

func FuzzZegoRequest(f *testing.F) {
	f.Add(true, "Action=UpdateFriendsAlias&AppId=12345", []byte(`{"FromUserId":"a","UserIds":[{"UserId":"b","FriendAlias":"x"}]}`))
	f.Add(false, "Action=UpdateFriendAttributes&AppId=99999999999&Timestamp=-9223372036854775808", []byte(`{"FromUserId":"a","UserId":"b","Action":0,"Attributes":[{"Key":"k0","Value":"v"},{"Key":"k9"}]}`))
	f.Add(true, "", []byte(`{"FromUserId":"a","UserIds":[{"UserId":""},{"UserId":"b","FriendAlias":null}]}`))
	s := fuzzSim(f)
	f.Fuzz(func(t *testing.T, alias bool, rawQuery string, body []byte) {
		action := APIZegoAttributes
		if alias {
			action = APIZegoAlias
		}
		signed := zegoQuery(DemoZegoAppID, DemoZegoServerSecret, action, "0123456789abcdef", fuzzNow.Unix()).Encode()
		for _, q := range []string{signed, rawQuery} {
			req := httptest.NewRequest(http.MethodPost, "http://zim.test/zego/", bytes.NewReader(body))
			req.URL.RawQuery = q
			rec := serve(s, req)
			var r zResp
			mustJSON(t, "zego", rec, &r)
			if rec.Code != 200 || r.RequestId == "" {
				t.Fatalf("HTTP %d RequestId %q", rec.Code, r.RequestId)
			}
			if q == signed && (r.Code == 100000005 || r.Code == 100000004) {
				t.Fatalf("a correctly signed request was refused: %s", rec.Body)
			}
			if r.Code == 0 && len(r.ErrorList)+len(r.FailKey) > 0 && r.Message == "" {
				t.Fatal("partial success without Message")
			}
		}
	})
}

// FuzzAdminState: the admin query parser.
func FuzzAdminState(f *testing.F) {
	f.Add("vendor=tencent&app=1400000000&from=a&to=b")
	f.Add("vendor=zego&app=&from=%ff")
	s := fuzzSim(f)
	s.AddFriends(event.Zego, "12345", "a", "b")
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest(http.MethodGet, "http://sim.test/admin/state", nil)
		req.URL.RawQuery = q
		rec := serve(s, req)
		var v map[string]any
		mustJSON(t, "admin", rec, &v)
		if rec.Code != 200 && rec.Code != 400 && rec.Code != 404 {
			t.Fatalf("HTTP %d", rec.Code)
		}
	})
}

func TestFuzzSeedsAreMeaningful(t *testing.T) {
	// The first Tencent seed, signed, is applied: the fuzz harness reaches
	// the body parser and the state.
	cfg := DemoConfig()
	cfg.Now = func() time.Time { return fuzzNow }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sig := signUserSig(DemoTencentKey, DemoTencentSDKAppID, DemoTencentAdmin, fuzzNow.Unix(), 86400)
	req := httptest.NewRequest(http.MethodPost, "http://sim.test"+tencentPath+"?"+url.Values{"sdkappid": {strconv.Itoa(DemoTencentSDKAppID)}, "identifier": {DemoTencentAdmin}, "usersig": {sig}, "random": {"1"}, "contenttype": {"json"}}.Encode(),
		bytes.NewReader([]byte(`{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"r"}]}]}`)))
	serve(s, req)
	if f, ok := s.Friend(event.Tencent, tApp, "a", "b"); !ok || f.Remark != "r" {
		t.Fatalf("state %+v %t", f, ok)
	}
}
