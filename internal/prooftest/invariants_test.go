package prooftest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/friendsync/friendsync/internal/vendorsim"
)

// recorder is a testing.TB that keeps the errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckVendorInvariants(t *testing.T) {
	clean := func() vendorsim.Counters {
		ok := vendorsim.VendorCounters{Calls: 10, Budgets: map[string]vendorsim.BudgetCounters{
			"volc:AKLTsecretAccessKey": {Limit: 330, Calls: 10, MaxWindow: 330},
		}}
		return vendorsim.Counters{Tencent: ok, Volc: ok, Zego: ok}
	}
	for _, tc := range []struct {
		name         string
		mutate       func(*vendorsim.Counters)
		requireCalls bool
		want         string // "" no error
	}{
		{"clean", func(*vendorsim.Counters) {}, true, ""},
		{"overlap", func(c *vendorsim.Counters) { c.Zego.Overlaps = 1 }, false, "overlapping writes"},
		{"conflict", func(c *vendorsim.Counters) { c.Volc.Conflicts = 2 }, false, "write conflicts"},
		{"window over the limit", func(c *vendorsim.Counters) {
			c.Tencent.Budgets = map[string]vendorsim.BudgetCounters{"tencent:1": {Limit: 200, MaxWindow: 201}}
		}, false, "calls in one 1-second window"},
		{"over-budget arrival", func(c *vendorsim.Counters) {
			c.Tencent.Budgets = map[string]vendorsim.BudgetCounters{"tencent:1": {Limit: 200, MaxWindow: 200, OverBudgetWindows: 1}}
		}, false, "arrivals over budget"},
		{"unlimited budget", func(c *vendorsim.Counters) {
			c.Tencent.Budgets = map[string]vendorsim.BudgetCounters{"tencent:1": {MaxWindow: 5000}}
		}, false, ""},
		{"saturated", func(c *vendorsim.Counters) {
			c.Tencent.Budgets = map[string]vendorsim.BudgetCounters{"tencent:1": {Limit: 200, Saturated: true}}
		}, false, "saturated"},
		{"no calls, not required", func(c *vendorsim.Counters) { c.Zego = vendorsim.VendorCounters{} }, false, ""},
		{"no calls, required", func(c *vendorsim.Counters) { c.Zego = vendorsim.VendorCounters{} }, true, "zego: no calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := clean()
			tc.mutate(&cs)
			r := &recorder{TB: t}
			CheckVendorInvariants(r, cs, tc.requireCalls)
			switch {
			case tc.want == "" && len(r.errs) > 0:
				t.Errorf("errors %q, want none", r.errs)
			case tc.want != "" && (len(r.errs) != 1 || !strings.Contains(r.errs[0], tc.want)):
				t.Errorf("errors %q, want one containing %q", r.errs, tc.want)
			}
			for _, e := range r.errs {
				if strings.Contains(e, "secretAccessKey") {
					t.Errorf("error shows the access key: %s", e)
				}
			}
		})
	}
	if got := MaskBudget("volc:AKLTsecretAccessKey"); got != "volc:AKLTse…" {
		t.Errorf("MaskBudget = %q", got)
	}
	if got := MaskBudget("tencent:1400000101"); got != "tencent:1400000101" {
		t.Errorf("MaskBudget(tencent) = %q", got)
	}
}
