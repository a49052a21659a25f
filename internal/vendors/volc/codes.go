package volc

import (
	"strings"

	"github.com/friendsync/friendsync/internal/vendors"
)

// codeRule classifies one code: Codes match exactly (an IM enum name and
// its number as text); Prefix matches every code that starts with it (the
// gateway's "InternalError.*" families).
type codeRule struct {
	Codes   []string
	Prefix  string
	Class   vendors.Class
	Meaning string
}

// codeTable is the one table of every code the client classifies
// (VENDORS.md B.3). Gateway codes arrive in ResponseMetadata.Error.Code,
// IM server codes in Result.FailedInfos[].Code (as the enum name or its
// number). A code that matches no row is Permanent ("unknown code").
var codeTable = []codeRule{
	// Gateway common codes (BytePlus/Volcengine OpenAPI).
	{Codes: []string{"MissingParameter"}, Class: vendors.Permanent, Meaning: "a required parameter is missing"},
	{Codes: []string{"MissingAuthenticationToken"}, Class: vendors.Permanent, Meaning: "no credentials in the request"},
	{Codes: []string{"MissingSignature"}, Class: vendors.Permanent, Meaning: "no signature in the request"},
	{Codes: []string{"InvalidTimestamp"}, Class: vendors.ReSign, Meaning: "X-Date expired or invalid (clock skew)"},
	{Codes: []string{"InvalidActionOrVersion"}, Class: vendors.Permanent, Meaning: "unknown Action or Version"},
	{Codes: []string{"InvalidAccessKey"}, Class: vendors.Permanent, Meaning: "access key unknown or disabled"},
	{Codes: []string{"SignatureDoesNotMatch"}, Class: vendors.Permanent, Meaning: "signature mismatch (wrong secret key, region or service)"},
	{Codes: []string{"LackPolicy"}, Class: vendors.Permanent, Meaning: "the account lacks the policy for this API"},
	{Prefix: "AccessDenied", Class: vendors.Permanent, Meaning: "access denied"},
	{Prefix: "InternalError", Class: vendors.Retry, Meaning: "server internal error"},
	{Prefix: "FlowLimitExceeded", Class: vendors.Throttled, Meaning: "QPS over the account's limit (FlowLimitExceeded.QPSOverLimit)"},
	{Prefix: "InvalidParameter", Class: vendors.Permanent, Meaning: "invalid parameter"},

	// IM server status codes (BIM SDK enum, docs 6348/293538).
	{Codes: []string{"INTERNAL_ERROR", "500"}, Class: vendors.Retry, Meaning: "IM internal error"},
	{Codes: []string{"DEGRADATION_ERROR", "16"}, Class: vendors.Retry, Meaning: "request degraded"},
	{Codes: []string{"FREQUENCY_LIMIT", "23"}, Class: vendors.Throttled, Meaning: "frequency limit"},
	{Codes: []string{"UPDATE_FREQUENT", "59"}, Class: vendors.Retry, Meaning: "concurrent update conflict"},
	{Codes: []string{"NOT_FRIEND", "56"}, Class: vendors.Permanent, Meaning: "not a friend"},
	{Codes: []string{"ALIAS_TOO_LONG", "68"}, Class: vendors.Permanent, Meaning: "alias too long"},
	{Codes: []string{"ALIAS_ILLEGAL", "69"}, Class: vendors.Permanent, Meaning: "alias blocked by risk control"},
	{Codes: []string{"USER_NOT_REGISTER", "71"}, Class: vendors.Permanent, Meaning: "user not registered"},
	{Codes: []string{"APP_NOT_NORMAL", "51"}, Class: vendors.Permanent, Meaning: "app not in normal state"},
	{Codes: []string{"FRIEND_MORE_THAN_LIMIT", "61"}, Class: vendors.Permanent, Meaning: "friend count over the limit"},
}

var exactCodes = func() map[string]*codeRule {
	m := make(map[string]*codeRule)
	for i := range codeTable {
		for _, c := range codeTable[i].Codes {
			m[c] = &codeTable[i]
		}
	}
	return m
}()

// lookup finds the rule of code; ok is false for an unknown code.
func lookup(code string) (r *codeRule, ok bool) {
	code = strings.TrimSpace(code)
	if r, ok := exactCodes[code]; ok {
		return r, true
	}
	for i := range codeTable {
		if p := codeTable[i].Prefix; p != "" && strings.HasPrefix(code, p) {
			return &codeTable[i], true
		}
	}
	return nil, false
}

// Classify returns the Class of a gateway or IM code; unknown codes are
// Permanent.
func Classify(code string) vendors.Class {
	if r, ok := lookup(code); ok {
		return r.Class
	}
	return vendors.Permanent
}
