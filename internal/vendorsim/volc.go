package vendorsim

import (
	"crypto/hmac"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Volcengine RTC IM UpdateFriend (VENDORS.md B, seed 000), served at
// POST /volc/?Action=UpdateFriend&Version=2020-12-01. The canonical URI is
// the path as received ("/volc/").
//
// Whole-call answers carry ResponseMetadata.Error{CodeN, Code, Message}
// with an HTTP status (gateway codes from B.3; CodeN is the documented
// number where B.3 gives one, 100018 for FlowLimitExceeded [I], else 1 [I],
// so that the SDK rule "Error != nil && CodeN != 0" sees a failure):
//
//	404 InvalidActionOrVersion  other path, Action, Version or method [I]
//	429 FlowLimitExceeded.QPSOverLimit  over VolcQPS for the access key
//	401 MissingAuthenticationToken / MissingSignature / InvalidAccessKey
//	400 InvalidTimestamp  X-Date missing, unparsable or beyond VolcSkew
//	401 SignatureDoesNotMatch  scope (date, region, service, "request")
//	    wrong, host or x-date not signed, X-Content-Sha256 not the body's
//	    hash, or the recomputed signature differs
//	400 InvalidParameter  body not JSON; AppId/UserId/FriendUserId/
//	    InboxType not integers; FriendInfos missing, empty or over
//	    Limits.VolcMaxItems; a FriendInfo with neither Ext nor Alias; Ext
//	    not a string map; Alias not a string
//	403 AccessDenied  AppId not owned by the access key       [I]
//	any code drawn from FaultSpec.ErrorRates, status by code family
//
// Otherwise HTTP 200 with Result.FailedInfos listing the failed friends
// ({UserId, Code, Message}); per-item codes: ALIAS_TOO_LONG (Alias over
// Limits.VolcMaxAliasBytes), NOT_FRIEND (FriendUserId == UserId, or not a
// friend under RequireFriendship), UPDATE_FREQUENT (every item, when
// another write for (AppId, UserId) is being applied). Alias is stored as
// the friend's Remark; Ext keys are merged into Attrs, "" deleting a key.
// InboxType is accepted and otherwise ignored [I].

const (
	volcPath     = "/volc/"
	volcVersion  = "2020-12-01"
	volcXDateFmt = "20060102T150405Z"
)

type volcError struct {
	CodeN   int    `json:"CodeN"`
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

type volcMetadata struct {
	RequestID string     `json:"RequestId"`
	Action    string     `json:"Action"`
	Version   string     `json:"Version"`
	Service   string     `json:"Service"`
	Region    string     `json:"Region"`
	Error     *volcError `json:"Error,omitempty"`
}

type volcFailedInfo struct {
	UserID  int64  `json:"UserId"`
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

type volcResult struct {
	FailedInfos []volcFailedInfo `json:"FailedInfos"`
}

type volcResponse struct {
	ResponseMetadata volcMetadata `json:"ResponseMetadata"`
	Result           *volcResult  `json:"Result,omitempty"`
}

// volcCodes are the gateway codes with a documented status and number.
var volcCodes = map[string]struct{ status, codeN int }{
	"MissingParameter":               {400, 100002},
	"MissingAuthenticationToken":     {401, 100003},
	"MissingSignature":               {401, 100005},
	"InvalidTimestamp":               {400, 100006},
	"InvalidActionOrVersion":         {404, 100008},
	"InvalidAccessKey":               {401, 100009},
	"SignatureDoesNotMatch":          {401, 100010},
	"LackPolicy":                     {403, 100012},
	"AccessDenied":                   {403, 100013},
	"FlowLimitExceeded.QPSOverLimit": {429, 100018},
}

// volcStatus returns the HTTP status and CodeN of a whole-call code.
func volcStatus(code string) (int, int) {
	if c, ok := volcCodes[code]; ok {
		return c.status, c.codeN
	}
	family, _, _ := strings.Cut(code, ".")
	switch family {
	case "FlowLimitExceeded":
		return http.StatusTooManyRequests, 100018
	case "InvalidParameter", "MissingParameter":
		return http.StatusBadRequest, 1
	case "AccessDenied", "LackPolicy":
		return http.StatusForbidden, 1
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable, 1
	}
	return http.StatusInternalServerError, 1
}

func (s *Sim) volcMeta() volcMetadata {
	return volcMetadata{RequestID: s.requestID(), Action: APIVolcUpdateFriend, Version: volcVersion,
		Service: s.cfg.VolcService, Region: s.cfg.VolcRegion}
}

func (s *Sim) volcFail(w http.ResponseWriter, r *http.Request, app, code, msg string) {
	incr(&s.st(event.Volc).codes, code)
	s.reject(r.Context(), event.Volc, app, code, msg)
	status, n := volcStatus(code)
	meta := s.volcMeta()
	meta.Error = &volcError{CodeN: n, Code: code, Message: msg}
	writeJSON(w, status, volcResponse{ResponseMetadata: meta})
}

func (s *Sim) serveVolc(w http.ResponseWriter, r *http.Request) {
	st := s.st(event.Volc)
	st.calls.Add(1)
	q := r.URL.Query()
	app := ""
	fail := func(code, msg string) { s.volcFail(w, r, app, code, msg) }
	if r.URL.Path != volcPath || q.Get("Action") != APIVolcUpdateFriend || q.Get("Version") != volcVersion || r.Method != http.MethodPost {
		fail("InvalidActionOrVersion", "only POST "+volcPath+"?Action=UpdateFriend&Version=2020-12-01 is served")
		return
	}
	auth, authCode := parseVolcAuth(r.Header.Get("Authorization"))
	acc, known := s.cfg.Volc[auth.AccessKey]
	known = known && authCode == ""
	var b *budget
	if known {
		b = s.budgets[volcBudget(auth.AccessKey)]
	}
	throttled, done := s.front(w, r, event.Volc, b)
	switch {
	case done:
		return
	case throttled:
		fail("FlowLimitExceeded.QPSOverLimit", "qps over limit")
		return
	case authCode != "":
		st.sigFailures.Add(1)
		fail(authCode, "Authorization header missing or malformed")
		return
	case !known:
		st.sigFailures.Add(1)
		fail("InvalidAccessKey", "access key not found")
		return
	}
	xdate := r.Header.Get("X-Date")
	t, err := time.Parse(volcXDateFmt, xdate)
	if err != nil {
		st.sigFailures.Add(1)
		fail("InvalidTimestamp", "X-Date missing or not in the form 20060102T150405Z")
		return
	}
	if d := s.cfg.Now().Sub(t); d > s.cfg.VolcSkew || d < -s.cfg.VolcSkew {
		st.sigFailures.Add(1)
		fail("InvalidTimestamp", "X-Date differs from server time by "+d.Round(time.Second).String())
		return
	}
	switch {
	case auth.Date != xdate[:8] || auth.Region != s.cfg.VolcRegion || auth.Service != s.cfg.VolcService || auth.Terminator != "request":
		st.sigFailures.Add(1)
		fail("SignatureDoesNotMatch", "credential scope must be "+xdate[:8]+"/"+s.cfg.VolcRegion+"/"+s.cfg.VolcService+"/request")
		return
	case !slices.Contains(auth.SignedHeaders, "host") || !slices.Contains(auth.SignedHeaders, "x-date"):
		st.sigFailures.Add(1)
		fail("SignatureDoesNotMatch", "SignedHeaders must include host and x-date")
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		fail("InvalidParameter", "request body cannot be read: "+err.Error())
		return
	}
	bodyHash := sha256Hex(body)
	if h := r.Header.Get("X-Content-Sha256"); h != "" && h != bodyHash {
		st.sigFailures.Add(1)
		fail("SignatureDoesNotMatch", "X-Content-Sha256 is not the SHA-256 of the body")
		return
	}
	header := func(name string) string {
		if name == "host" {
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			return volcHostValue(host)
		}
		vs := r.Header.Values(name)
		if name == "content-length" && len(vs) == 0 && r.ContentLength >= 0 {
			// In-memory requests carry the length in ContentLength only.
			return strconv.FormatInt(r.ContentLength, 10)
		}
		return strings.Join(vs, ",")
	}
	cr := volcCanonicalRequest(r.Method, r.URL.Path, q, auth.SignedHeaders, header, bodyHash)
	want := volcSignature(acc.SecretKey, xdate, s.cfg.VolcRegion, s.cfg.VolcService, cr)
	if !hmac.Equal([]byte(want), []byte(auth.Signature)) {
		st.sigFailures.Add(1)
		fail("SignatureDoesNotMatch", "the request signature does not match")
		return
	}

	appID, userID, items, ids, code, msg := s.parseVolc(body)
	if code != "" {
		fail(code, msg)
		return
	}
	app = strconv.FormatInt(appID, 10)
	if !s.volcApps[auth.AccessKey][appID] {
		fail("AccessDenied", "AppId does not belong to this access key")
		return
	}
	if c := s.wholeFault(event.Volc); c != "" {
		fail(c, "vendorsim: injected error")
		return
	}
	st.items.Add(int64(len(items)))
	s.itemFaults(event.Volc, items)
	k := acctKey{event.Volc, app, strconv.FormatInt(userID, 10)}
	resp := volcResponse{ResponseMetadata: s.volcMeta(), Result: &volcResult{FailedInfos: []volcFailedInfo{}}}
	if overlap, _ := s.store.begin(k, false); overlap {
		st.overlaps.Add(1)
		st.conflicts.Add(1)
		for i := range items {
			items[i].fail, items[i].msg = "UPDATE_FREQUENT", "concurrent update of this user's friends"
		}
		for range items {
			st.itemFailures.Add(1)
			incr(&st.itemCodes, "UPDATE_FREQUENT")
		}
		s.reject(r.Context(), event.Volc, app, "UPDATE_FREQUENT", "overlapping write")
	} else {
		s.write(k, items, "NOT_FRIEND", "not a friend")
	}
	for i, c := range items {
		if c.fail != "" {
			resp.Result.FailedInfos = append(resp.Result.FailedInfos, volcFailedInfo{UserID: ids[i], Code: c.fail, Message: c.msg})
		}
	}
	incr(&st.codes, "0")
	writeJSON(w, http.StatusOK, resp)
}

// parseVolc reads an UpdateFriend body; ids holds each item's
// FriendUserId. A non-empty code is a whole-call InvalidParameter.
func (s *Sim) parseVolc(body []byte) (appID, userID int64, items []change, ids []int64, code, msg string) {
	const inv = "InvalidParameter"
	doc, ok := parseJSON(body)
	top, isObj := asObject(doc)
	if !ok || !isObj {
		return 0, 0, nil, nil, inv, "request body is not a JSON object"
	}
	appID, ok = asInt(top["AppId"])
	if !ok || appID < 0 || appID > math.MaxInt32 {
		return 0, 0, nil, nil, inv, "AppId missing or not an int32"
	}
	userID, ok = asInt(top["UserId"])
	if !ok {
		return 0, 0, nil, nil, inv, "UserId missing or not an integer"
	}
	if raw := top["InboxType"]; !absent(raw) {
		if n, ok := asInt(raw); !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return 0, 0, nil, nil, inv, "InboxType is not an int32"
		}
	}
	infos, ok := asArray(top["FriendInfos"])
	if !ok || len(infos) == 0 {
		return 0, 0, nil, nil, inv, "FriendInfos missing or empty"
	}
	if len(infos) > s.cfg.Limits.VolcMaxItems {
		return 0, 0, nil, nil, inv, "FriendInfos holds " + strconv.Itoa(len(infos)) + " friends, the limit is " + strconv.Itoa(s.cfg.Limits.VolcMaxItems)
	}
	items = make([]change, len(infos))
	ids = make([]int64, len(infos))
	for i, raw := range infos {
		o, ok := asObject(raw)
		if !ok {
			return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "] is not an object"
		}
		fid, ok := asInt(o["FriendUserId"])
		if !ok {
			return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "].FriendUserId missing or not an integer"
		}
		c := change{to: strconv.FormatInt(fid, 10)}
		ids[i] = fid
		hasExt, hasAlias := !absent(o["Ext"]), !absent(o["Alias"])
		if !hasExt && !hasAlias {
			return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "] needs Ext or Alias"
		}
		if hasExt {
			ext, ok := asObject(o["Ext"])
			if !ok {
				return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "].Ext is not an object"
			}
			c.attrs = make(map[string]string, len(ext))
			for k, rv := range ext {
				v, ok := asString(rv)
				if !ok {
					return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "].Ext values must be strings"
				}
				c.attrs[k] = v
			}
		}
		if hasAlias {
			a, ok := asString(o["Alias"])
			if !ok {
				return 0, 0, nil, nil, inv, "FriendInfos[" + strconv.Itoa(i) + "].Alias is not a string"
			}
			c.remark = &a
			if len(a) > s.cfg.Limits.VolcMaxAliasBytes {
				c.fail, c.msg = "ALIAS_TOO_LONG", "Alias is "+strconv.Itoa(len(a))+" bytes, the limit is "+strconv.Itoa(s.cfg.Limits.VolcMaxAliasBytes)
			}
		}
		if fid == userID && c.fail == "" {
			c.fail, c.msg = "NOT_FRIEND", "FriendUserId equals UserId"
		}
		items[i] = c
	}
	return appID, userID, items, ids, "", ""
}
