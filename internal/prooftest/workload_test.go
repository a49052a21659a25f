package prooftest

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

var testApps = Apps{
	{Name: "t1", Vendor: event.Tencent, SimID: "1400000001"},
	{Name: "t2", Vendor: event.Tencent, SimID: "1400000002"},
	{Name: "rtc", Vendor: event.Volc, SimID: "4242"},
	{Name: "zim", Vendor: event.Zego, SimID: "31337", MostlyOneFriend: true},
}

func TestSplitMixKnownValues(t *testing.T) {
	// The first outputs of splitmix64 seeded with 0 (the reference
	// implementation's published sequence).
	r := NewSplitMix(0)
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := r.Uint64(); got != want {
			t.Fatalf("output %d = %#x, want %#x", i, got, want)
		}
	}
	r, q := NewSplitMix(7), NewSplitMix(7)
	for range 1000 {
		a, b := r.IntN(13), q.IntN(13)
		if a != b || a < 0 || a >= 13 {
			t.Fatalf("IntN(13): %d and %d from the same seed", a, b)
		}
		if n := r.Int64N(5); n < 0 || n >= 5 {
			t.Fatalf("Int64N(5) = %d", n)
		}
		q.Int64N(5)
	}
	perm := []int{0, 1, 2, 3, 4, 5, 6, 7}
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	seen := map[int]bool{}
	for _, v := range perm {
		seen[v] = true
	}
	if len(seen) != 8 {
		t.Fatalf("Shuffle lost elements: %v", perm)
	}
}

// relative is a workload's events with ts relative to T0, so two workloads
// generated at different times compare equal.
func relative(w *Workload) []Planned {
	out := make([]Planned, len(w.Events))
	for i, p := range w.Events {
		out[i] = p
		if p.Ev.TS != 0 {
			out[i].Ev.TS -= w.T0
		}
	}
	return out
}

func TestNewWorkloadMostlyPublishTime(t *testing.T) {
	m := Mix{Accounts: 2000, Apps: testApps, Shares: []float64{0.3, 0.3, 0.37, 0.03}, Versions: MostlyPublishTime}
	w := NewWorkload(NewSplitMix(4), m)
	if again := NewWorkload(NewSplitMix(4), m); !reflect.DeepEqual(relative(w), relative(again)) {
		t.Fatal("the same seed gave another workload")
	}
	if other := NewWorkload(NewSplitMix(5), m); reflect.DeepEqual(relative(w), relative(other)) {
		t.Fatal("another seed gave the same workload")
	}
	if got := w.Accounts(); got != m.Accounts {
		t.Fatalf("%d accounts, want %d", got, m.Accounts)
	}
	perApp := map[string]map[string]bool{}
	friends := map[string]map[string]bool{}
	seenTS := map[int64]bool{}
	noTS, bulk := 0, 0
	for _, p := range w.Events {
		ev := p.Ev
		if perApp[ev.App] == nil {
			perApp[ev.App] = map[string]bool{}
		}
		perApp[ev.App][ev.From] = true
		if friends[ev.App+"/"+ev.From] == nil {
			friends[ev.App+"/"+ev.From] = map[string]bool{}
		}
		friends[ev.App+"/"+ev.From][ev.To] = true
		if ev.Remark == nil && ev.Groups == nil && len(ev.Attrs) == 0 {
			t.Fatalf("event sets no field: %+v", ev)
		}
		if ev.Groups != nil && testApps.Find(ev.App).Vendor != event.Tencent {
			t.Fatalf("groups for a non-Tencent app: %+v", ev)
		}
		if testApps.Find(ev.App).Vendor == event.Volc {
			if _, err := strconv.Atoi(ev.From); err != nil {
				t.Fatalf("Volcengine id %q is not a number", ev.From)
			}
		}
		switch {
		case ev.TS == 0:
			noTS++
			if p.Lane != event.LaneLive {
				t.Fatalf("an event without ts on lane %s", p.Lane)
			}
		case seenTS[ev.TS]:
			t.Fatalf("ts %d twice", ev.TS)
		case ev.TS >= w.T0:
			t.Fatalf("explicit ts %d not before T0 %d", ev.TS, w.T0)
		}
		seenTS[ev.TS] = true
		if p.Lane == event.LaneBulk {
			bulk++
			if age := time.Duration(w.T0 - ev.TS); age < time.Hour || age > 2*time.Hour {
				t.Fatalf("bulk event %s old, want one to two hours", age)
			}
		}
	}
	n := len(w.Events)
	if noTS < n*7/10 || noTS > n*9/10 || bulk < n/20 || bulk > n*3/20 {
		t.Fatalf("%d events: %d without ts (want ~80%%), %d bulk (want ~10%%)", n, noTS, bulk)
	}
	for app, want := range map[string]int{"t1": 600, "t2": 600, "rtc": 740, "zim": 60} {
		if got := len(perApp[app]); got < want-2 || got > want+2 {
			t.Errorf("app %s: %d accounts, want about %d", app, got, want)
		}
	}
	one := 0
	for acc, fs := range friends {
		if len(fs) > 2 {
			t.Fatalf("account %s has %d friends", acc, len(fs))
		}
		if acc[:4] == "zim/" && len(fs) == 1 {
			one++
		}
	}
	if one < len(perApp["zim"])*7/10 {
		t.Errorf("only %d of %d ZEGO accounts have one friend, want most", one, len(perApp["zim"]))
	}
}

func TestNewWorkloadAllExplicit(t *testing.T) {
	seed := uint64(3)
	m := Mix{Accounts: 500, Apps: testApps[1:], Shares: []float64{0.45, 0.47, 0.08}, Versions: AllExplicit}
	w := NewWorkload(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m)
	seen := map[int64]bool{}
	for _, p := range w.Events {
		if p.Ev.TS == 0 || seen[p.Ev.TS] {
			t.Fatalf("ts %d missing or repeated", p.Ev.TS)
		}
		seen[p.Ev.TS] = true
		age := time.Duration(w.T0 - p.Ev.TS)
		if p.Lane == event.LaneLive && (age < 0 || age > 10*time.Minute) {
			t.Fatalf("live event %s old, want within ten minutes", age)
		}
		if p.Ev.App == "t1" {
			t.Fatalf("event for an app not in the mix: %+v", p.Ev)
		}
	}
	if w.Accounts() != m.Accounts {
		t.Fatalf("%d accounts, want %d", w.Accounts(), m.Accounts)
	}
}

func TestExpectedNewestWins(t *testing.T) {
	ptr := func(s string) *string { return &s }
	w := &Workload{T0: 1000, Events: []Planned{
		{Ev: event.Event{App: "t1", From: "u1", To: "f1", Remark: ptr("published first, no ts")}},                   // version 1001
		{Ev: event.Event{App: "t1", From: "u1", To: "f1", TS: 900, Remark: ptr("old ts"), Groups: &[]string{"g1"}}}, // 900
		{Ev: event.Event{App: "t1", From: "u1", To: "f1", TS: 950, Attrs: map[string]string{"Level": "3", "City": "x"}}},
		{Ev: event.Event{App: "t1", From: "u1", To: "f1", TS: 960, Attrs: map[string]string{"City": ""}}}, // deletes City
		{Ev: event.Event{App: "t1", From: "u1", To: "f1", Groups: &[]string{}}},                           // version 1005: clears
		{Ev: event.Event{App: "t1", From: "u1", To: "f2", TS: 10, Attrs: map[string]string{"Level": ""}}},
	}}
	if w.Version(0) != 1001 || w.Version(1) != 900 || w.Version(4) != 1005 {
		t.Fatalf("versions %d %d %d", w.Version(0), w.Version(1), w.Version(4))
	}
	got := w.Expected()
	want := map[FriendKey]vendorsim.Friend{
		{App: "t1", From: "u1", To: "f1"}: {Remark: "published first, no ts", Attrs: map[string]string{"Level": "3"}},
		{App: "t1", From: "u1", To: "f2"}: {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Expected() = %+v, want %+v", got, want)
	}
}

func TestSameFriendAndDiff(t *testing.T) {
	a := vendorsim.Friend{Remark: "r", Groups: []string{"g1", "g2"}, Attrs: map[string]string{"k": "v"}}
	for _, b := range []vendorsim.Friend{
		{Remark: "x", Groups: a.Groups, Attrs: a.Attrs},
		{Remark: "r", Groups: []string{"g2", "g1"}, Attrs: a.Attrs},
		{Remark: "r", Groups: a.Groups, Attrs: map[string]string{"k": "w"}},
		{Remark: "r", Groups: a.Groups, Attrs: map[string]string{"j": "v"}},
		{Remark: "r", Groups: a.Groups},
	} {
		if SameFriend(a, b) || SameFriend(b, a) {
			t.Errorf("SameFriend(%s, %s) = true", Brief(a), Brief(b))
		}
	}
	if !SameFriend(a, vendorsim.Friend{Remark: "r", Groups: []string{"g1", "g2"}, Attrs: map[string]string{"k": "v"}}) {
		t.Error("SameFriend of equal friends = false")
	}
	sim, err := vendorsim.New(vendorsim.Config{Zego: map[uint32]string{31337: "0123456789abcdef0123456789abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[FriendKey]vendorsim.Friend{}
	for i := range 7 {
		want[FriendKey{App: "t1", From: "u" + strconv.Itoa(i), To: "f"}] = a
	}
	bad, ex := Diff(sim, testApps, want)
	if bad != 7 || len(ex) != 5 {
		t.Fatalf("Diff on an empty simulator = %d, %d examples; want 7, 5", bad, len(ex))
	}
	if bad, _ := Diff(sim, testApps, nil); bad != 0 {
		t.Fatalf("Diff of nothing = %d", bad)
	}
}

func TestAccountIDs(t *testing.T) {
	for _, tc := range []struct {
		v            event.Vendor
		from, friend string
	}{
		{event.Tencent, "u7", "f7_1"},
		{event.Volc, "10000007", "20000029"},
		{event.Zego, "z7", "zf7_1"},
	} {
		from, friend := AccountIDs(tc.v, 7)
		if from != tc.from || friend(1) != tc.friend {
			t.Errorf("AccountIDs(%s, 7) = %s, %s; want %s, %s", tc.v, from, friend(1), tc.from, tc.friend)
		}
	}
}
