package vendorstest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func testFeatures() Features {
	return Features{
		Vendor: event.Zego,
		APIs: map[string]Caps{
			"Batch": {MaxItems: 2},
			"Attrs": {MaxItems: 1, MaxAttrs: 2, MaxAttrBytes: 10},
		},
		BatchAPI:          "Batch",
		Remark:            true,
		Attrs:             true,
		AttrKey:           func(i int) string { return "k" + strconv.Itoa(i) },
		AttrKeys:          3,
		ID:                func(i int) string { return "u" + strconv.Itoa(i) },
		NotFriendCode:     "nf",
		ThrottleCode:      "th",
		TransientCode:     "tr",
		TransientItemCode: "ti",
		Fresh:             func(*http.Request) string { return "" },
		Credentials:       func(*http.Request) []string { return nil },
	}
}

// The split checker must accept a faithful split and name every way an
// unfaithful one is wrong; otherwise the suite's split case could not fail.
func TestCheckSplit(t *testing.T) {
	t.Parallel()
	f := testFeatures()
	items := []vendors.Item{
		{Ref: 10, To: "a", Remark: ptr("ra"), Attrs: map[string]string{"k0": "x", "k1": "y"}},
		{Ref: 20, To: "b", Remark: ptr("rb")},
		{Ref: 30, To: "c", Remark: ptr("")},
	}
	good := func() []vendors.Call {
		return []vendors.Call{
			{API: "Batch", Budget: "b", From: "me", Items: []vendors.Item{{Ref: 10, To: "a", Remark: ptr("ra")}, {Ref: 20, To: "b", Remark: ptr("rb")}}},
			{API: "Batch", Budget: "b", From: "me", Items: []vendors.Item{{Ref: 30, To: "c", Remark: ptr("")}}},
			{API: "Attrs", Budget: "a", From: "me", Items: []vendors.Item{{Ref: 10, To: "a", Attrs: map[string]string{"k0": "x", "k1": "y"}}}},
		}
	}
	cases := []struct {
		name   string
		change func(calls []vendors.Call) []vendors.Call
		want   []string // substrings of the problems, in order; none for a good split
	}{
		{name: "a faithful split has no problem", change: func(c []vendors.Call) []vendors.Call { return c }},
		{name: "a dropped call leaves fields uncovered", change: func(c []vendors.Call) []vendors.Call { return c[:2] },
			want: []string{"Ref 10 field attr:k0 is carried 0 times", "Ref 10 field attr:k1 is carried 0 times"}},
		{name: "a repeated call covers fields twice", change: func(c []vendors.Call) []vendors.Call { return append(c, c[1]) },
			want: []string{"Ref 30 field remark is carried 2 times"}},
		{name: "a renumbered Ref is unknown", change: func(c []vendors.Call) []vendors.Call { c[1].Items[0].Ref = 0; return c },
			want: []string{"unknown Ref 0", "Ref 30 field remark is carried 0 times"}},
		{name: "a changed value is named", change: func(c []vendors.Call) []vendors.Call { c[0].Items[1].Remark = ptr("other"); return c },
			want: []string{`Ref 20 field remark is "other", want "rb"`}},
		{name: "a field the item lacks is named", change: func(c []vendors.Call) []vendors.Call {
			c[0].Items[1].Groups = &[]string{}
			return c
		}, want: []string{"Ref 20 carries field groups the item does not have"}},
		{name: "a wrong To is named", change: func(c []vendors.Call) []vendors.Call { c[0].Items[0].To = "z"; return c },
			want: []string{`Ref 10 carries To "z", want "a"`}},
		{name: "too many items for the API", change: func(c []vendors.Call) []vendors.Call {
			c[0].Items = append(c[0].Items, c[1].Items...)
			return c[0:1:1]
		}, want: []string{"call 0 (Batch): 3 items, want 1..2"}},
		{name: "too many attributes and bytes for the API", change: func(c []vendors.Call) []vendors.Call {
			c[2].Items[0].Attrs = map[string]string{"k0": "x", "k1": "y", "k2": "long value"}
			return c
		}, want: []string{"carries 3 attributes, cap 2", "bytes of attribute keys and values, cap 10", "field attr:k2 the item does not have"}},
		{name: "an unknown API, From and Budget", change: func(c []vendors.Call) []vendors.Call {
			c[1].API, c[1].From, c[1].Budget = "Other", "you", ""
			return c
		}, want: []string{`API "Other"`, `From "you"`, "empty Budget"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := checkSplit(f, "me", items, tc.change(good()))
			if len(tc.want) == 0 && len(got) > 0 {
				t.Fatalf("problems %q, want none", got)
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", got, w)
				}
			}
		})
	}
}

func TestModelAndDiffState(t *testing.T) {
	t.Parallel()
	m := model{}
	m.apply(
		vendors.Item{To: "a", Remark: ptr("r"), Groups: &[]string{"g"}, Attrs: map[string]string{"k0": "x", "k1": "y"}},
		vendors.Item{To: "a", Remark: ptr(""), Groups: &[]string{}, Attrs: map[string]string{"k0": ""}},
	)
	want := vendorsim.Friend{Remark: "", Groups: []string{}, Attrs: map[string]string{"k1": "y"}}
	if got := m["a"]; got.Remark != want.Remark || len(got.Groups) != 0 || len(got.Attrs) != 1 || got.Attrs["k1"] != "y" {
		t.Fatalf("model %s, want %s", showFriend(got), showFriend(want))
	}
	cases := []struct {
		name   string
		stored map[string]vendorsim.Friend
		want   string
	}{
		{name: "equal state, nil and empty alike", stored: map[string]vendorsim.Friend{"a": {Attrs: map[string]string{"k1": "y"}, Updates: 2}}},
		{name: "nothing stored", stored: map[string]vendorsim.Friend{}, want: "to a: nothing stored"},
		{name: "a remark not cleared", stored: map[string]vendorsim.Friend{"a": {Remark: "r", Attrs: map[string]string{"k1": "y"}}}, want: `remark "r"`},
		{name: "a group not cleared", stored: map[string]vendorsim.Friend{"a": {Groups: []string{"g"}, Attrs: map[string]string{"k1": "y"}}}, want: "to a: stored"},
		{name: "an attribute not deleted", stored: map[string]vendorsim.Friend{"a": {Attrs: map[string]string{"k0": "x", "k1": "y"}}}, want: "k0:x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := diffState(m, func(to string) (vendorsim.Friend, bool) {
				f, ok := tc.stored[to]
				return f, ok
			})
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("diff %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("diff %q, want one line with %q", got, tc.want)
			}
		})
	}
}

func TestConflictProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		res  vendors.Result
		err  error
		ok   bool
	}{
		{name: "whole-call conflict as retry", err: &vendors.Error{Code: "c", Class: vendors.Retry}, ok: true},
		{name: "per-item conflict as retry", res: vendors.Whole(2, vendors.ItemResult{Class: vendors.Retry, Code: "c"}), ok: true},
		{name: "whole-call conflict as permanent", err: &vendors.Error{Code: "c", Class: vendors.Permanent}},
		{name: "another whole-call code", err: &vendors.Error{Code: "d", Class: vendors.Retry}},
		{name: "a plain error", err: errors.New("boom")},
		{name: "one item not in conflict", res: vendors.Result{Items: []vendors.ItemResult{{Class: vendors.Retry, Code: "c"}, {Class: vendors.OK}}}},
		{name: "no answer at all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if p := conflictProblem(tc.res, tc.err, "c"); (p == "") != tc.ok {
				t.Errorf("problem %q, want ok=%t", p, tc.ok)
			}
		})
	}
}

func TestLeaks(t *testing.T) {
	t.Parallel()
	secrets := []string{"s3cret-value", "abc", ""}
	if got := leaks("tencent: friend_update: permanent: code 70009", secrets); len(got) != 0 {
		t.Errorf("clean text: %q", got)
	}
	got := leaks("error for https://x/?usersig=s3cret-value&random=1", secrets)
	if len(got) != 1 || strings.Contains(got[0], "s3cret") {
		t.Errorf("leaky text: %q, want one finding that does not repeat the secret", got)
	}
}

func TestFeaturesValidate(t *testing.T) {
	t.Parallel()
	if err := testFeatures().Validate(); err != nil {
		t.Fatalf("valid features: %v", err)
	}
	cases := []struct {
		name   string
		change func(f *Features)
		want   string
	}{
		{"unknown vendor", func(f *Features) { f.Vendor = "x" }, "unknown vendor"},
		{"batch API missing", func(f *Features) { f.BatchAPI = "Nope" }, "BatchAPI"},
		{"batch API of one", func(f *Features) { f.APIs["Batch"] = Caps{MaxItems: 1} }, "at least 2"},
		{"no field", func(f *Features) { f.Remark, f.Attrs = false, false }, "no supported field"},
		{"attrs without keys", func(f *Features) { f.AttrKeys = 1 }, "AttrKeys"},
		{"no ids", func(f *Features) { f.ID = nil }, "ID"},
		{"no throttle code", func(f *Features) { f.ThrottleCode = "" }, "ThrottleCode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := testFeatures()
			tc.change(&f)
			if err := f.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
