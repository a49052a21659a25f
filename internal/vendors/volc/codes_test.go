package volc

import (
	"testing"

	"github.com/friendsync/friendsync/internal/vendors"
)

func TestClassify(t *testing.T) {
	const (
		rt  = vendors.Retry
		thr = vendors.Throttled
		rs  = vendors.ReSign
		per = vendors.Permanent
	)
	tests := []struct {
		code string
		want vendors.Class
	}{
		// gateway
		{"MissingParameter", per},
		{"MissingAuthenticationToken", per},
		{"MissingSignature", per},
		{"InvalidTimestamp", rs},
		{"InvalidActionOrVersion", per},
		{"InvalidAccessKey", per},
		{"SignatureDoesNotMatch", per},
		{"LackPolicy", per},
		{"AccessDenied", per},
		{"AccessDenied.NoPermission", per},
		{"InternalError", rt},
		{"InternalError.Timeout", rt},
		{"FlowLimitExceeded.QPSOverLimit", thr},
		{"FlowLimitExceeded", thr},
		{"InvalidParameter", per},
		{"InvalidParameter.AppId", per},
		// IM, by name and by number
		{"INTERNAL_ERROR", rt},
		{"500", rt},
		{"DEGRADATION_ERROR", rt},
		{"16", rt},
		{"FREQUENCY_LIMIT", thr},
		{"23", thr},
		{"UPDATE_FREQUENT", rt},
		{"59", rt},
		{"NOT_FRIEND", per},
		{"56", per},
		{"ALIAS_TOO_LONG", per},
		{"68", per},
		{"ALIAS_ILLEGAL", per},
		{"69", per},
		{"USER_NOT_REGISTER", per},
		{"71", per},
		{"APP_NOT_NORMAL", per},
		{"51", per},
		{"FRIEND_MORE_THAN_LIMIT", per},
		{"61", per},
		{" 59 ", rt},
		// unknown
		{"", per},
		{"0", per},
		{"update_frequent", per},
		{"SomethingNew", per},
		{"5900", per},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run("code "+tc.code, func(t *testing.T) {
			if got := Classify(tc.code); got != tc.want {
				t.Errorf("Classify(%q) = %v, want %v", tc.code, got, tc.want)
			}
		})
		covered[tc.code] = true
	}

	// Every row of the table must have a case above, so a new code cannot
	// slip in untested.
	for _, r := range codeTable {
		for _, c := range r.Codes {
			if !covered[c] {
				t.Errorf("code %q of the table has no test case", c)
			}
		}
		if r.Prefix != "" && (!covered[r.Prefix] || !hasPrefixCase(covered, r.Prefix)) {
			t.Errorf("prefix %q of the table has no test case", r.Prefix)
		}
	}
}

func hasPrefixCase(covered map[string]bool, p string) bool {
	for c := range covered {
		if len(c) > len(p) && c[:len(p)] == p {
			return true
		}
	}
	return false
}

func TestLookupUnknown(t *testing.T) {
	if _, ok := lookup("NOPE"); ok {
		t.Error("lookup(NOPE) reported a known code")
	}
	if r, ok := lookup("UPDATE_FREQUENT"); !ok || r.Meaning == "" {
		t.Errorf("lookup(UPDATE_FREQUENT) = %v, %v", r, ok)
	}
}
