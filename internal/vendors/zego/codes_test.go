package zego

import (
	"strconv"
	"testing"

	"github.com/friendsync/friendsync/internal/vendors"
)

// wantClass lists every code of VENDORS.md C.2-C.4 with the class the brief
// assigns; it is written independently of the table in codes.go.
var wantClass = map[vendors.Class][]int64{
	vendors.OK:        {0},
	vendors.Retry:     {1, 660000001, 660000003, 105001, 100000010, 100000011, 100000012, 100000015},
	vendors.Throttled: {7, 660300005, 660300006},
	vendors.ReSign:    {100000004},
	vendors.Permanent: {
		2, 3,
		100000000, 100000001, 100000002, 100000003,
		100000005, 100000006, 100000007, 100000008, 100000009,
		100000013, 100000014, 100000016, 100000017,
		660000002, 660000011, 660000012, 660000013,
		660700012, 660700015,
		660800019, 660800021, 660800022, 660800023, 660800024, 660800025, 660800026,
		660800032, 660800033, 660800034,
	},
}

func TestClassify(t *testing.T) {
	n := 0
	for class, list := range wantClass {
		for _, code := range list {
			n++
			t.Run(class.String()+"/"+strconv.FormatInt(code, 10), func(t *testing.T) {
				if got := Classify(code); got != class {
					t.Errorf("Classify(%d) = %s, want %s", code, got, class)
				}
				if _, ok := codes[code]; !ok {
					t.Errorf("code %d missing from the table", code)
				}
				if describe(code) == unknownMeaning {
					t.Errorf("code %d has no meaning", code)
				}
			})
		}
	}
	// Every table entry is one the list above names: nothing undocumented.
	if len(codes) != n {
		t.Errorf("table has %d codes, the documented list %d", len(codes), n)
	}
}

func TestClassifyUnknown(t *testing.T) {
	for _, code := range []int64{-1, 4, 50014, 660000099, 999999999999} {
		t.Run(strconv.FormatInt(code, 10), func(t *testing.T) {
			if got := Classify(code); got != vendors.Permanent {
				t.Errorf("Classify(%d) = %s, want permanent", code, got)
			}
			if got := describe(code); got != "unknown code" {
				t.Errorf("describe(%d) = %q, want %q", code, got, "unknown code")
			}
		})
	}
}
