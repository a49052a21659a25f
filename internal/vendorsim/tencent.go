package vendorsim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/friendsync/friendsync/event"
)

// Tencent Cloud Chat v4/sns/friend_update (VENDORS.md A, seeds 001/002).
//
// Whole-call answers are HTTP 200 with ActionStatus "FAIL" and ErrorCode:
//
//	60009 path other than /tencent/v4/sns/friend_update   [I]
//	60002 method not POST, contenttype not "json", random not a uint32
//	60012 sdkappid missing; 60006 sdkappid not a number
//	60007 over the QPS limit (per SDKAppID)
//	70020 unknown SDKAppID                                 [I] (vs 60006)
//	60004 identifier missing; 70002 usersig missing
//	70003/70014/70013/70009/70001 UserSig checks (verifyUserSig)
//	60010 identifier is not the App admin                  [I] (A.5 lists
//	      60010 and 30004; the admin check is the REST layer's, so 60010)
//	60003 body not JSON, not an object, or too large
//	30001 From_Account or UpdateItem missing/empty, or more than
//	      Limits.TencentMaxItems items                     [I] (vs 70206)
//	30008 another write for From_Account is being applied
//	any   code drawn from FaultSpec.ErrorRates
//
// Otherwise ActionStatus "OK", ErrorCode 0, one ResultItem per UpdateItem
// (same order) and Fail_Account listing the failed To_Accounts. Per-item
// codes: 30011 more than Limits.TencentMaxGroups groups (the seed's
// Err_SNS_FriendUpdate_Group_Num_Exceed_Threshold); 30001 for everything
// else (To_Account missing or equal to From_Account, SnsItem missing,
// unknown or read-only Tag, wrong Value type, remark/group/custom value over
// its limit, empty group name, bad or unconfigured custom key, not a friend
// under RequireFriendship). An item with any error is not applied at all.
//
// Value semantics: remark "" clears; groups [] clears; a custom value ""
// deletes the key; an integer custom value is stored as decimal text.

const (
	tencentPath      = "/tencent/v4/sns/friend_update"
	tencentCustomTag = "Tag_SNS_Custom_"
)

type tencentResult struct {
	ToAccount  string `json:"To_Account"`
	ResultCode int    `json:"ResultCode"`
	ResultInfo string `json:"ResultInfo"`
}

type tencentResponse struct {
	ResultItem   []tencentResult `json:"ResultItem,omitempty"`
	FailAccount  []string        `json:"Fail_Account,omitempty"`
	ActionStatus string          `json:"ActionStatus"`
	ErrorCode    int             `json:"ErrorCode"`
	ErrorInfo    string          `json:"ErrorInfo"`
	ErrorDisplay string          `json:"ErrorDisplay"`
}

func (s *Sim) tencentFail(w http.ResponseWriter, r *http.Request, app string, code int, info string) {
	c := strconv.Itoa(code)
	incr(&s.st(event.Tencent).codes, c)
	s.reject(r.Context(), event.Tencent, app, c, info)
	writeJSON(w, http.StatusOK, tencentResponse{ActionStatus: "FAIL", ErrorCode: code, ErrorInfo: info})
}

func (s *Sim) serveTencent(w http.ResponseWriter, r *http.Request) {
	st := s.st(event.Tencent)
	st.calls.Add(1)
	q := r.URL.Query()
	appText := q.Get("sdkappid")
	fail := func(code int, info string) { s.tencentFail(w, r, appText, code, info) }
	if r.URL.Path != tencentPath {
		fail(60009, "unknown REST API "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		fail(60002, "method must be POST")
		return
	}
	appID, appErr := strconv.ParseUint(appText, 10, 64)
	app, known := s.cfg.Tencent[appID]
	var b *budget
	if appErr == nil && known {
		b = s.budgets[tencentBudget(appID)]
		appText = strconv.FormatUint(appID, 10)
	}
	throttled, done := s.front(w, r, event.Tencent, b)
	switch {
	case done:
		return
	case throttled:
		fail(60007, "REST API call frequency exceeds the limit")
		return
	case appText == "":
		fail(60012, "sdkappid missing")
		return
	case appErr != nil:
		fail(60006, "sdkappid is not a number")
		return
	case !known:
		st.sigFailures.Add(1)
		fail(70020, "SDKAppID not found")
		return
	case q.Get("contenttype") != "json":
		fail(60002, "contenttype must be json")
		return
	}
	if _, err := strconv.ParseUint(q.Get("random"), 10, 32); err != nil {
		fail(60002, "random must be a 32-bit unsigned integer")
		return
	}
	identifier, usersig := q.Get("identifier"), q.Get("usersig")
	if identifier == "" {
		st.sigFailures.Add(1)
		fail(60004, "identifier missing")
		return
	}
	if usersig == "" {
		st.sigFailures.Add(1)
		fail(70002, "usersig missing")
		return
	}
	if code, info := verifyUserSig(usersig, app.Key, appID, identifier, s.cfg.Now()); code != 0 {
		st.sigFailures.Add(1)
		fail(code, info)
		return
	}
	if identifier != app.Admin {
		st.sigFailures.Add(1)
		fail(60010, "identifier is not the App admin")
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		fail(60003, "request body cannot be read: "+err.Error())
		return
	}
	from, items, code, info := s.parseTencent(body)
	if code != 0 {
		fail(code, info)
		return
	}
	if c := s.wholeFault(event.Tencent); c != "" {
		n, _ := strconv.Atoi(c)
		fail(n, "vendorsim: injected error")
		return
	}
	st.items.Add(int64(len(items)))
	s.itemFaults(event.Tencent, items)
	k := acctKey{event.Tencent, appText, from}
	if overlap, _ := s.store.begin(k, false); overlap {
		st.overlaps.Add(1)
		st.conflicts.Add(1)
		fail(30008, "write conflict from concurrent writes; use batch mode")
		return
	}
	s.write(k, items, "30001", "Err_SNS_FriendUpdate_Not_Friend: To_Account is not in From_Account's friend list")

	resp := tencentResponse{ActionStatus: "OK", ResultItem: make([]tencentResult, len(items))}
	for i, c := range items {
		res := tencentResult{ToAccount: c.to}
		if c.fail != "" {
			res.ResultCode, _ = strconv.Atoi(c.fail)
			res.ResultInfo = c.msg
			resp.FailAccount = append(resp.FailAccount, c.to)
		}
		resp.ResultItem[i] = res
	}
	incr(&st.codes, "0")
	writeJSON(w, http.StatusOK, resp)
}

// parseTencent reads a friend_update body into one change per UpdateItem.
// A non-zero code is a whole-call error.
func (s *Sim) parseTencent(body []byte) (from string, items []change, code int, info string) {
	doc, ok := parseJSON(body)
	if !ok {
		return "", nil, 60003, "request body is not JSON"
	}
	top, ok := asObject(doc)
	if !ok {
		return "", nil, 60003, "request body is not a JSON object"
	}
	from, ok = asString(top["From_Account"])
	if !ok || from == "" {
		return "", nil, 30001, "From_Account missing or not a string"
	}
	raw, ok := asArray(top["UpdateItem"])
	if !ok || len(raw) == 0 {
		return "", nil, 30001, "UpdateItem missing or empty"
	}
	if len(raw) > s.cfg.Limits.TencentMaxItems {
		return "", nil, 30001, "UpdateItem holds " + strconv.Itoa(len(raw)) + " friends, the limit is " + strconv.Itoa(s.cfg.Limits.TencentMaxItems)
	}
	items = make([]change, len(raw))
	for i, r := range raw {
		items[i] = s.tencentItem(from, r)
	}
	return from, items, 0, ""
}

func (s *Sim) tencentItem(from string, raw any) change {
	lim := &s.cfg.Limits
	o, ok := asObject(raw)
	if !ok {
		return change{fail: "30001", msg: "UpdateItem entry is not an object"}
	}
	to, ok := asString(o["To_Account"])
	c := change{to: to}
	bad := func(code, msg string) change {
		c.fail, c.msg = code, msg
		return c
	}
	if !ok || to == "" {
		return bad("30001", "To_Account missing or not a string")
	}
	if to == from {
		return bad("30001", "To_Account equals From_Account")
	}
	sns, ok := asArray(o["SnsItem"])
	if !ok || len(sns) == 0 {
		return bad("30001", "SnsItem missing or empty")
	}
	for _, rawTag := range sns {
		t, ok := asObject(rawTag)
		if !ok {
			return bad("30001", "SnsItem entry is not an object")
		}
		tag, ok := asString(t["Tag"])
		if !ok {
			return bad("30001", "Tag missing or not a string")
		}
		val := t["Value"]
		switch {
		case tag == "Tag_SNS_IM_Remark":
			v, ok := asString(val)
			if !ok {
				return bad("30001", "Tag_SNS_IM_Remark Value must be a string")
			}
			if len(v) > lim.TencentMaxRemarkBytes {
				return bad("30001", "Tag_SNS_IM_Remark is "+strconv.Itoa(len(v))+" bytes, the limit is "+strconv.Itoa(lim.TencentMaxRemarkBytes))
			}
			c.remark = &v
		case tag == "Tag_SNS_IM_Group":
			arr, ok := asArray(val)
			if !ok {
				return bad("30001", "Tag_SNS_IM_Group Value must be an array of strings")
			}
			if len(arr) > lim.TencentMaxGroups {
				return bad("30011", "Err_SNS_FriendUpdate_Group_Num_Exceed_Threshold")
			}
			gs := make([]string, 0, len(arr))
			for _, g := range arr {
				name, ok := asString(g)
				if !ok || name == "" {
					return bad("30001", "group names must be non-empty strings")
				}
				if len(name) > lim.TencentMaxGroupBytes {
					return bad("30001", "group name is "+strconv.Itoa(len(name))+" bytes, the limit is "+strconv.Itoa(lim.TencentMaxGroupBytes))
				}
				gs = append(gs, name)
			}
			c.groups = &gs
		case strings.HasPrefix(tag, tencentCustomTag):
			key := tag[len(tencentCustomTag):]
			if !tencentKey(key) {
				return bad("30001", "custom field key must be letters, digits and '_'")
			}
			if len(lim.TencentCustomKeys) > 0 && !slices.Contains(lim.TencentCustomKeys, key) {
				return bad("30001", "custom field "+tag+" is not configured")
			}
			v, ok := asString(val)
			if !ok {
				n, isInt := asInt(val)
				if !isInt {
					return bad("30001", tag+" Value must be a string or an integer")
				}
				v = strconv.FormatInt(n, 10)
			}
			if len(v) > lim.TencentMaxCustomBytes {
				return bad("30001", tag+" is "+strconv.Itoa(len(v))+" bytes, the limit is "+strconv.Itoa(lim.TencentMaxCustomBytes))
			}
			if c.attrs == nil {
				c.attrs = map[string]string{}
			}
			c.attrs[key] = v
		default:
			return bad("30001", "Tag "+tag+" cannot be updated by friend_update")
		}
	}
	return c
}

func tencentKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
