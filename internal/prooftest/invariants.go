package prooftest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// CheckVendorInvariants asserts what the simulator saw (cs): no
// overlapping writes for one account, no write conflicts, and no 1-second
// window over any budget's limit (nor a saturated window ring, which makes
// the busiest window only a lower bound); with requireCalls, every vendor
// was called. It logs the figures.
func CheckVendorInvariants(t testing.TB, cs vendorsim.Counters, requireCalls bool) {
	t.Helper()
	for _, v := range []event.Vendor{event.Tencent, event.Volc, event.Zego} {
		vc := cs.Vendor(v)
		t.Logf("%s: calls %d, items %d, applied %d, item failures %d, overlaps %d, conflicts %d, throttles %d, faults %d; answers %v",
			v, vc.Calls, vc.Items, vc.Applied, vc.ItemFailures, vc.Overlaps, vc.Conflicts, vc.Throttles, vc.Faults, vc.Codes)
		if requireCalls && vc.Calls == 0 {
			t.Errorf("%s: no calls", v)
		}
		if vc.Overlaps != 0 {
			t.Errorf("%s: %d overlapping writes for one account (two calls in flight)", v, vc.Overlaps)
		}
		if vc.Conflicts != 0 {
			t.Errorf("%s: %d write conflicts", v, vc.Conflicts)
		}
		for _, n := range slices.Sorted(maps.Keys(vc.Budgets)) {
			b := vc.Budgets[n]
			t.Logf("  budget %s: limit %d, calls %d, max calls in any 1s window %d, over-budget arrivals %d, throttled %d",
				MaskBudget(n), b.Limit, b.Calls, b.MaxWindow, b.OverBudgetWindows, b.Throttled)
			if b.Limit > 0 && (b.MaxWindow > b.Limit || b.OverBudgetWindows > 0) {
				t.Errorf("budget %s: %d calls in one 1-second window, limit %d (%d arrivals over budget); calls per second: %v",
					MaskBudget(n), b.MaxWindow, b.Limit, b.OverBudgetWindows, b.PerSecond)
			}
			if b.Saturated {
				t.Errorf("budget %s: window ring saturated, MaxWindow is only a lower bound", MaskBudget(n))
			}
		}
	}
}

// MaskBudget shortens the Volcengine budget name (it holds the access key).
func MaskBudget(n string) string {
	if strings.HasPrefix(n, "volc:") && len(n) > 11 {
		return n[:11] + "…"
	}
	return n
}
