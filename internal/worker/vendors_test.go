package worker

import (
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/ratelimit"
	"github.com/friendsync/friendsync/internal/vendors"
)

// Every call a client makes must draw on a budget the limiter knows: a
// name mismatch would fail every Wait with ErrUnknownBudget.
func TestBudgetsMatchClientCalls(t *testing.T) {
	for name, p := range DemoProfiles() {
		t.Run(name, func(t *testing.T) {
			s, err := newSender(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			known := map[string]bool{}
			for _, b := range budgetsOf(p) {
				known[b.Name] = true
			}
			from, to := "alice", "bob"
			if p.Vendor == event.Volc {
				from, to = "10001", "10002"
			}
			item := vendors.Item{To: to, Remark: event.Ptr("r"), Attrs: map[string]string{"k0": "v"}}
			calls := s.Split(from, []vendors.Item{item})
			if len(calls) == 0 {
				t.Fatal("no calls")
			}
			for _, c := range calls {
				if !known[c.Budget] {
					t.Errorf("call %s draws on budget %q, not among %v", c.API, c.Budget, known)
				}
			}
			if _, err := ratelimit.NewLocal(ratelimit.Config{Budgets: budgetsOf(p)}, nil, nil); err != nil {
				t.Errorf("the demo budgets do not validate: %v", err)
			}
		})
	}
}

func TestAllBudgetsDeduplicatesSharedQuotas(t *testing.T) {
	ps := DemoProfiles()
	twin := *ps[DemoAppTencent]
	twin.Name = "tencent-twin"
	ps["tencent-twin"] = &twin
	seen := map[string]int{}
	for _, b := range allBudgets(ps) {
		seen[b.Name]++
	}
	if len(seen) != 4 {
		t.Errorf("budgets %v: want tencent, volc and two zego APIs", seen)
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("budget %s listed %d times", n, c)
		}
	}
}
