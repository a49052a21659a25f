package vendorsim

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/friendsync/friendsync/event"
)

// ZEGOCLOUD ZIM UpdateFriendsAlias and UpdateFriendAttributes (VENDORS.md
// C, seed 003), served at POST /zego/?Action=...&AppId&SignatureNonce&
// Timestamp&SignatureVersion=2.0&Signature. Every answer is HTTP 200 with
// {Code, Message, RequestId} (except injected 5xx and outages).
//
// Whole-call Codes (C.1, C.4; which of 100000006-100000009 names which
// missing parameter is [I]):
//
//	100000006 path other than /zego/, or Action missing or unsupported
//	660000002 method not POST, body not JSON, required field missing,
//	          Attributes Action other than 0, bad characters in FromUserId
//	660300005 over ZegoQPS for (AppId, Action)
//	100000001 AppId missing or not a uint32
//	3         unknown AppId ("authentication failed")            [I]
//	100000007 SignatureNonce missing; 100000002 Timestamp missing;
//	100000003 Timestamp not an integer; 100000009 SignatureVersion not
//	          2.0; 100000008 Signature missing
//	100000005 signature wrong; 100000004 Timestamp beyond ZegoSkew (the
//	          signature is checked first)
//	660000012 FromUserId (or the attributes' UserId) over 32 bytes
//	660800019 more than Limits.ZegoMaxAliases UserIds
//	660800022 a UserId twice in UserIds
//	660800023 more than Limits.ZegoMaxAttrs Attributes
//	660800032 a Key twice in Attributes
//	660800024 sum of Key+Value lengths over Limits.ZegoMaxAttrBytes
//	660800033 attributes' UserId equals FromUserId
//	660800034 attributes' UserId not a friend (RequireFriendship)
//	ZegoConflictCode, when set, for a write overlapping another write for
//	          (AppId, FromUserId); when unset the write is applied
//	any code drawn from FaultSpec.ErrorRates
//
// Partial success (seed 003): Code 0 with ErrorList [{UserId, SubCode,
// SubMessage}] (aliases) or FailKey [{Key, SubCode}] (attributes) naming
// the failures; when every item fails, Code is the first item's SubCode and
// the list is still given. Alias SubCodes: 660000012 UserId over 32 bytes,
// 660000002 bad characters in UserId, 660800033 UserId == FromUserId,
// 660800021 FriendAlias over Limits.ZegoMaxAliasBytes, 660800034 not a
// friend. FailKey SubCode: 660800023 Key not in k0..k4.
//
// Value semantics: FriendAlias absent or null leaves the alias as it is,
// "" clears it; an attribute Value "" deletes the key.

const zegoPath = "/zego/"

type zegoAliasError struct {
	UserID     string `json:"UserId"`
	SubCode    int    `json:"SubCode"`
	SubMessage string `json:"SubMessage,omitempty"`
}

type zegoKeyError struct {
	Key     string `json:"Key"`
	SubCode int    `json:"SubCode"`
}

type zegoResponse struct {
	Code      int              `json:"Code"`
	Message   string           `json:"Message"`
	RequestID string           `json:"RequestId"`
	ErrorList []zegoAliasError `json:"ErrorList,omitempty"`
	FailKey   []zegoKeyError   `json:"FailKey,omitempty"`
}

// zegoSignature is lowercase_hex(MD5(AppId + nonce + secret + timestamp)).
func zegoSignature(appID uint32, nonce, secret string, ts int64) string {
	sum := md5.Sum([]byte(strconv.FormatUint(uint64(appID), 10) + nonce + secret + strconv.FormatInt(ts, 10)))
	return hex.EncodeToString(sum[:])
}

// zegoIDChar reports whether c may appear in a ZIM user id (C.3).
func zegoIDChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '(', ')', '+', '-', ':', ';', '<', '=', '.', '>', '?', '@', '[', ']', '^', '_', '{', '}', '|', '~':
		return true
	}
	return false
}

func zegoID(s string) bool {
	for i := 0; i < len(s); i++ {
		if !zegoIDChar(s[i]) {
			return false
		}
	}
	return s != ""
}

func (s *Sim) zegoAnswer(w http.ResponseWriter, r *http.Request, app string, resp zegoResponse) {
	resp.RequestID = s.requestID()
	c := strconv.Itoa(resp.Code)
	incr(&s.st(event.Zego).codes, c)
	if resp.Code != 0 {
		s.reject(r.Context(), event.Zego, app, c, resp.Message)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Sim) serveZego(w http.ResponseWriter, r *http.Request) {
	st := s.st(event.Zego)
	st.calls.Add(1)
	q := r.URL.Query()
	appText := q.Get("AppId")
	fail := func(code int, msg string) { s.zegoAnswer(w, r, appText, zegoResponse{Code: code, Message: msg}) }
	action := q.Get("Action")
	if r.URL.Path != zegoPath || (action != APIZegoAlias && action != APIZegoAttributes) {
		fail(100000006, "Action missing or not supported")
		return
	}
	if r.Method != http.MethodPost {
		fail(660000002, "method must be POST")
		return
	}
	id64, appErr := strconv.ParseUint(appText, 10, 32)
	appID := uint32(id64)
	secret, known := s.cfg.Zego[appID]
	known = known && appErr == nil
	var b *budget
	if known {
		b = s.budgets[zegoBudget(appID, action)]
		appText = strconv.FormatUint(id64, 10)
	}
	throttled, done := s.front(w, r, event.Zego, b)
	switch {
	case done:
		return
	case throttled:
		fail(660300005, "call frequency exceeds the AppID-level limit")
		return
	case appErr != nil:
		fail(100000001, "AppId missing or not a uint32")
		return
	case !known:
		st.sigFailures.Add(1)
		fail(3, "authentication failed: unknown AppId")
		return
	}
	nonce, tsText, sig := q.Get("SignatureNonce"), q.Get("Timestamp"), q.Get("Signature")
	switch {
	case nonce == "":
		fail(100000007, "SignatureNonce missing")
		return
	case tsText == "":
		fail(100000002, "Timestamp missing")
		return
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	switch {
	case err != nil:
		fail(100000003, "Timestamp is not an integer")
		return
	case q.Get("SignatureVersion") != "2.0":
		fail(100000009, "SignatureVersion must be 2.0")
		return
	case sig == "":
		fail(100000008, "Signature missing")
		return
	}
	if want := zegoSignature(appID, nonce, secret, ts); subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		st.sigFailures.Add(1)
		fail(100000005, "signature wrong")
		return
	}
	if d := s.cfg.Now().Sub(time.Unix(ts, 0)); d > s.cfg.ZegoSkew || d < -s.cfg.ZegoSkew {
		st.sigFailures.Add(1)
		fail(100000004, "signature expired: Timestamp differs from server time by "+d.Round(time.Second).String())
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		fail(660000002, "request body cannot be read: "+err.Error())
		return
	}
	if action == APIZegoAlias {
		s.zegoAlias(w, r, appText, body)
	} else {
		s.zegoAttributes(w, r, appText, body)
	}
}

// zegoFrom reads and checks FromUserId; code 0 means ok.
func (s *Sim) zegoFrom(top jobject, field string) (string, int, string) {
	from, ok := asString(top[field])
	switch {
	case !ok || from == "":
		return "", 660000002, field + " missing or not a string"
	case len(from) > s.cfg.Limits.ZegoMaxUserIDBytes:
		return "", 660000012, field + " is longer than " + strconv.Itoa(s.cfg.Limits.ZegoMaxUserIDBytes) + " bytes"
	case !zegoID(from):
		return "", 660000002, field + " holds characters ZIM user ids may not contain"
	}
	return from, 0, ""
}

// zegoConflict handles an overlapping write; it reports whether the call
// was answered (ZegoConflictCode set).
func (s *Sim) zegoBegin(w http.ResponseWriter, r *http.Request, app string, k acctKey) bool {
	st := s.st(event.Zego)
	overlap, _ := s.store.begin(k, s.cfg.ZegoConflictCode == 0)
	if !overlap {
		return false
	}
	st.overlaps.Add(1)
	if s.cfg.ZegoConflictCode == 0 {
		return false
	}
	st.conflicts.Add(1)
	s.zegoAnswer(w, r, app, zegoResponse{Code: s.cfg.ZegoConflictCode, Message: "concurrent write for FromUserId"})
	return true
}

func (s *Sim) zegoAlias(w http.ResponseWriter, r *http.Request, app string, body []byte) {
	st := s.st(event.Zego)
	lim := &s.cfg.Limits
	fail := func(code int, msg string) { s.zegoAnswer(w, r, app, zegoResponse{Code: code, Message: msg}) }
	top, from, ok := s.zegoBody(body, fail)
	if !ok {
		return
	}
	list, ok := asArray(top["UserIds"])
	if !ok || len(list) == 0 {
		fail(660000002, "UserIds missing or empty")
		return
	}
	if len(list) > lim.ZegoMaxAliases {
		fail(660800019, "UserIds holds "+strconv.Itoa(len(list))+" users, the limit is "+strconv.Itoa(lim.ZegoMaxAliases))
		return
	}
	items := make([]change, len(list))
	seen := make(map[string]bool, len(list))
	for i, raw := range list {
		o, ok := asObject(raw)
		if !ok {
			fail(660000002, "UserIds["+strconv.Itoa(i)+"] is not an object")
			return
		}
		to, ok := asString(o["UserId"])
		if !ok || to == "" {
			fail(660000002, "UserIds["+strconv.Itoa(i)+"].UserId missing or not a string")
			return
		}
		if seen[to] {
			fail(660800022, "UserIds holds a user twice")
			return
		}
		seen[to] = true
		c := change{to: to}
		switch {
		case len(to) > lim.ZegoMaxUserIDBytes:
			c.fail, c.msg = "660000012", "user length limit"
		case !zegoID(to):
			c.fail, c.msg = "660000002", "UserId holds characters ZIM user ids may not contain"
		case to == from:
			c.fail, c.msg = "660800033", "UserIds contains FromUserId"
		}
		if raw := o["FriendAlias"]; !absent(raw) {
			a, ok := asString(raw)
			if !ok {
				fail(660000002, "UserIds["+strconv.Itoa(i)+"].FriendAlias is not a string")
				return
			}
			c.remark = &a
			if c.fail == "" && len(a) > lim.ZegoMaxAliasBytes {
				c.fail, c.msg = "660800021", "FriendAlias is longer than "+strconv.Itoa(lim.ZegoMaxAliasBytes)+" bytes"
			}
		}
		items[i] = c
	}
	if c := s.wholeFault(event.Zego); c != "" {
		n, _ := strconv.Atoi(c)
		fail(n, "vendorsim: injected error")
		return
	}
	st.items.Add(int64(len(items)))
	s.itemFaults(event.Zego, items)
	k := acctKey{event.Zego, app, from}
	if s.zegoBegin(w, r, app, k) {
		return
	}
	s.write(k, items, "660800034", "not a friend of FromUserId")
	resp := zegoResponse{Message: "success"}
	for _, c := range items {
		if c.fail != "" {
			n, _ := strconv.Atoi(c.fail)
			resp.ErrorList = append(resp.ErrorList, zegoAliasError{UserID: c.to, SubCode: n, SubMessage: c.msg})
		}
	}
	if len(resp.ErrorList) == len(items) {
		resp.Code, resp.Message = resp.ErrorList[0].SubCode, "all friends failed"
	}
	s.zegoAnswer(w, r, app, resp)
}

func (s *Sim) zegoAttributes(w http.ResponseWriter, r *http.Request, app string, body []byte) {
	st := s.st(event.Zego)
	lim := &s.cfg.Limits
	fail := func(code int, msg string) { s.zegoAnswer(w, r, app, zegoResponse{Code: code, Message: msg}) }
	top, from, ok := s.zegoBody(body, fail)
	if !ok {
		return
	}
	to, code, msg := s.zegoFrom(top, "UserId")
	if code != 0 {
		fail(code, msg)
		return
	}
	if to == from {
		fail(660800033, "UserId equals FromUserId")
		return
	}
	if raw := top["Action"]; !absent(raw) {
		if n, ok := asInt(raw); !ok || n != 0 {
			fail(660000002, "Action must be 0 (set)")
			return
		}
	}
	attrs, ok := asArray(top["Attributes"])
	if !ok || len(attrs) == 0 {
		fail(660000002, "Attributes missing or empty")
		return
	}
	if len(attrs) > lim.ZegoMaxAttrs {
		fail(660800023, "Attributes holds "+strconv.Itoa(len(attrs))+" keys, the limit is "+strconv.Itoa(lim.ZegoMaxAttrs))
		return
	}
	type kv struct{ k, v string }
	pairs := make([]kv, len(attrs))
	seen := map[string]bool{}
	total := 0
	for i, raw := range attrs {
		o, ok := asObject(raw)
		if !ok {
			fail(660000002, "Attributes["+strconv.Itoa(i)+"] is not an object")
			return
		}
		key, ok1 := asString(o["Key"])
		val, ok2 := asString(o["Value"])
		if !ok1 || !ok2 {
			fail(660000002, "Attributes["+strconv.Itoa(i)+"] needs string Key and Value")
			return
		}
		if seen[key] {
			fail(660800032, "duplicate Key "+strconv.Quote(key))
			return
		}
		seen[key] = true
		total += len(key) + len(val)
		pairs[i] = kv{key, val}
	}
	if total > lim.ZegoMaxAttrBytes {
		fail(660800024, "Key+Value total "+strconv.Itoa(total)+" bytes, the limit is "+strconv.Itoa(lim.ZegoMaxAttrBytes))
		return
	}
	if c := s.wholeFault(event.Zego); c != "" {
		n, _ := strconv.Atoi(c)
		fail(n, "vendorsim: injected error")
		return
	}
	resp := zegoResponse{Message: "success"}
	ch := change{to: to, attrs: map[string]string{}}
	f := s.faults[vendorIndex(event.Zego)].Load()
	for _, p := range pairs {
		if len(p.k) != 2 || p.k[0] != 'k' || p.k[1] < '0' || p.k[1] > '4' {
			resp.FailKey = append(resp.FailKey, zegoKeyError{Key: p.k, SubCode: 660800023})
			continue
		}
		if c := f.itemCode(); c != "" {
			st.faults.Add(1)
			n, _ := strconv.Atoi(c)
			resp.FailKey = append(resp.FailKey, zegoKeyError{Key: p.k, SubCode: n})
			continue
		}
		ch.attrs[p.k] = p.v
	}
	for _, fk := range resp.FailKey {
		st.itemFailures.Add(1)
		incr(&st.itemCodes, strconv.Itoa(fk.SubCode))
	}
	st.items.Add(1)
	if len(resp.FailKey) == len(pairs) {
		resp.Code, resp.Message = resp.FailKey[0].SubCode, "all keys failed"
		s.zegoAnswer(w, r, app, resp)
		return
	}
	k := acctKey{event.Zego, app, from}
	if s.zegoBegin(w, r, app, k) {
		return
	}
	changes := []change{ch}
	s.write(k, changes, "660800034", "not a friend of FromUserId")
	if changes[0].fail != "" {
		fail(660800034, "UserId is not a friend of FromUserId")
		return
	}
	s.zegoAnswer(w, r, app, resp)
}

// zegoBody parses a ZEGO request body into its top-level object and its
// FromUserId, answering the documented error through fail when either is
// wrong.
func (s *Sim) zegoBody(body []byte, fail func(code int, msg string)) (map[string]any, string, bool) {
	doc, ok := parseJSON(body)
	top, isObj := asObject(doc)
	if !ok || !isObj {
		fail(660000002, "request body is not a JSON object")
		return nil, "", false
	}
	from, code, msg := s.zegoFrom(top, "FromUserId")
	if code != 0 {
		fail(code, msg)
		return nil, "", false
	}
	return top, from, true
}
