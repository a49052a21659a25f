package tencent

import (
	"strconv"
	"testing"
	"time"

	"github.com/friendsync/friendsync/internal/vendors"
)

// wantClasses is VENDORS.md §A.5 written out by hand, one row per code, so
// a slip in the codes table shows up here.
var wantClasses = []struct {
	code    int
	class   vendors.Class
	after   time.Duration
	dropSig bool
}{
	{0, vendors.OK, 0, false},
	{30001, vendors.Permanent, 0, false},
	{30002, vendors.Permanent, 0, false},
	{30003, vendors.Permanent, 0, false},
	{30004, vendors.Permanent, 0, false},
	{30005, vendors.Permanent, 0, false},
	{30006, vendors.Retry, 0, false},
	{30007, vendors.Retry, 0, false},
	{30008, vendors.Retry, 0, false},
	{30009, vendors.Permanent, 0, false},
	{30010, vendors.Permanent, 0, false},
	{30011, vendors.Permanent, 0, false},
	{30012, vendors.Permanent, 0, false},
	{30013, vendors.Permanent, 0, false},
	{30014, vendors.Permanent, 0, false},
	{60002, vendors.Permanent, 0, false},
	{60003, vendors.Permanent, 0, false},
	{60004, vendors.ReSign, 0, true},
	{60005, vendors.ReSign, 0, true},
	{60006, vendors.Permanent, 0, false},
	{60007, vendors.Throttled, 0, false},
	{60008, vendors.Retry, 0, false},
	{60009, vendors.Permanent, 0, false},
	{60010, vendors.Permanent, 0, false},
	{60011, vendors.Throttled, 0, false},
	{60012, vendors.Permanent, 0, false},
	{60013, vendors.Permanent, 0, false},
	{60014, vendors.Retry, 0, false},
	{60015, vendors.Permanent, 0, false},
	{60016, vendors.Permanent, 0, false},
	{60017, vendors.Permanent, 0, false},
	{60018, vendors.Throttled, 0, false},
	{60019, vendors.Throttled, 0, false},
	{60020, vendors.Permanent, 0, false},
	{60021, vendors.Permanent, 0, false},
	{70001, vendors.ReSign, 0, true},
	{70002, vendors.ReSign, 0, true},
	{70003, vendors.ReSign, 0, true},
	{70005, vendors.ReSign, 0, true},
	{70009, vendors.Permanent, 0, false},
	{70013, vendors.Permanent, 0, false},
	{70014, vendors.Permanent, 0, false},
	{70016, vendors.Permanent, 0, false},
	{70020, vendors.Permanent, 0, false},
	{70050, vendors.Throttled, 60 * time.Second, true},
	{70051, vendors.Permanent, 0, false},
	{70052, vendors.ReSign, 0, true},
	{70107, vendors.Permanent, 0, false},
	{70169, vendors.Retry, 0, false},
	{70206, vendors.Permanent, 0, false},
	{70402, vendors.Permanent, 0, false},
	{70403, vendors.Permanent, 0, false},
	{70500, vendors.Retry, 0, false},
	{80001, vendors.Permanent, 0, false},
	{80002, vendors.Permanent, 0, false},
}

func TestClassifyEveryDocumentedCode(t *testing.T) {
	seen := map[int]bool{}
	for _, tc := range wantClasses {
		seen[tc.code] = true
		t.Run(vendorsCode(tc.code), func(t *testing.T) {
			class, after := Classify(tc.code)
			if class != tc.class || after != tc.after {
				t.Fatalf("Classify(%d) = %s, %s; want %s, %s", tc.code, class, after, tc.class, tc.after)
			}
			e := lookup(tc.code)
			if e.dropSig != tc.dropSig {
				t.Fatalf("code %d drops the cached sig: %t, want %t", tc.code, e.dropSig, tc.dropSig)
			}
			if e.text == "" || e.text == unknownCode.text {
				t.Fatalf("code %d has no meaning text (%q)", tc.code, e.text)
			}
		})
	}
	for c := range codes {
		if !seen[c] {
			t.Errorf("codes table holds %d, which VENDORS.md §A.5 does not list", c)
		}
	}
}

func TestClassifyUnknownCodes(t *testing.T) {
	for _, c := range []int{-1, 1, 29999, 30015, 60000, 60001, 70000, 79999, 90001} {
		t.Run(vendorsCode(c), func(t *testing.T) {
			class, after := Classify(c)
			if class != vendors.Permanent || after != 0 {
				t.Fatalf("Classify(%d) = %s, %s; want permanent, 0", c, class, after)
			}
			if got := lookup(c).text; got != "unknown code" {
				t.Fatalf("text of %d = %q, want \"unknown code\"", c, got)
			}
		})
	}
}

func vendorsCode(c int) string { return "code " + strconv.Itoa(c) }
