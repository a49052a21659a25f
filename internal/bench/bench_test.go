package bench

import (
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"known measurements", Options{Only: []string{MBudget, MMicro}}, true},
		{"unknown measurement", Options{Only: []string{"speed"}}, false},
		{"redis url scheme", Options{RedisURL: "127.0.0.1:6379"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %t", err, tc.ok)
			}
		})
	}
}

func TestParseBenchLine(t *testing.T) {
	cases := []struct {
		line  string
		name  string
		units map[string]float64
		ok    bool
	}{
		{"BenchmarkMapInsert   1775090   728.3 ns/op   4571239 events/cpu-s   85 B/op   0 allocs/op",
			"BenchmarkMapInsert", map[string]float64{"ns/op": 728.3, "events/cpu-s": 4571239, "B/op": 85, "allocs/op": 0}, true},
		{"BenchmarkEnqueuePublish-2    	   20000	     94696 ns/op	     10560 events/s",
			"BenchmarkEnqueuePublish", map[string]float64{"ns/op": 94696, "events/s": 10560}, true},
		{"BenchmarkCoalesceMergeChunk/DeliverAppend 467877 2564 ns/op",
			"BenchmarkCoalesceMergeChunk/DeliverAppend", map[string]float64{"ns/op": 2564}, true},
		{"ok  	github.com/friendsync/friendsync/internal/deliver	14.829s", "", nil, false},
		{"BenchmarkBroken", "", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			name, units, ok := parseBenchLine(tc.line)
			if ok != tc.ok || name != tc.name {
				t.Fatalf("got (%q, %t), want (%q, %t)", name, ok, tc.name, tc.ok)
			}
			for u, v := range tc.units {
				if units[u] != v {
					t.Errorf("%s = %v, want %v", u, units[u], v)
				}
			}
			if len(units) != len(tc.units) {
				t.Errorf("units %v, want %v", units, tc.units)
			}
		})
	}
}

func TestOptimumAndPercentile(t *testing.T) {
	per := map[string]int{"a": 1, "b": 1000, "c": 1001, "d": 2500}
	if got, want := optimum(per, 1000), 1+1+2+3; got != want {
		t.Errorf("optimum = %d, want %d", got, want)
	}
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(lat, tc.p); got != tc.want {
			t.Errorf("p%v = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %s, want 0", got)
	}
}
