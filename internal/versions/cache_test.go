package versions

import (
	"slices"
	"testing"

	"github.com/friendsync/friendsync/internal/jobs"
)

func TestCache(t *testing.T) {
	a, b, c := jobs.Key{App: "x", From: "a"}, jobs.Key{App: "x", From: "b"}, jobs.Key{App: "x", From: "c"}
	tests := []struct {
		name   string
		run    func(c *cache)
		key    jobs.Key
		fields []string
		want   []jobs.Version // nil: not fully cached
	}{
		{
			name: "merge keeps the max",
			run: func(ca *cache) {
				ca.merge(a, []string{"f", "g"}, []jobs.Version{v(5, 0), v(1, 0)})
				ca.merge(a, []string{"f", "g"}, []jobs.Version{v(4, 0), v(2, 0)})
			},
			key: a, fields: []string{"g", "f"}, want: []jobs.Version{v(2, 0), v(5, 0)},
		},
		{
			name:   "partly cached is not cached",
			run:    func(ca *cache) { ca.merge(a, []string{"f"}, []jobs.Version{v(5, 0)}) },
			key:    a,
			fields: []string{"f", "g"},
		},
		{
			name: "least recently used key is evicted",
			run: func(ca *cache) { // bound: 4 fields
				ca.merge(a, []string{"f", "g"}, []jobs.Version{v(1, 0), v(1, 0)})
				ca.merge(b, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.lookup(a, []string{"f"}) // a is now more recent than b
				ca.merge(c, []string{"f", "g"}, []jobs.Version{v(1, 0), v(1, 0)})
			},
			key: b, fields: []string{"f"},
		},
		{
			name: "recently used key survives",
			run: func(ca *cache) {
				ca.merge(a, []string{"f", "g"}, []jobs.Version{v(1, 0), v(1, 0)})
				ca.merge(b, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.lookup(a, []string{"f"})
				ca.merge(c, []string{"f", "g"}, []jobs.Version{v(1, 0), v(1, 0)})
			},
			key: a, fields: []string{"f", "g"}, want: []jobs.Version{v(1, 0), v(1, 0)},
		},
		{
			name: "an oversized key is kept alone",
			run: func(ca *cache) {
				ca.merge(a, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.merge(b, []string{"1", "2", "3", "4", "5"}, make([]jobs.Version, 5))
			},
			key: b, fields: []string{"5"}, want: []jobs.Version{{}},
		},
		{
			name: "raise touches only cached fields",
			run: func(ca *cache) {
				ca.merge(a, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.raise(a, []string{"f", "g"}, []jobs.Version{v(3, 0), v(3, 0)})
				ca.raise(b, []string{"f"}, []jobs.Version{v(3, 0)})
			},
			key: a, fields: []string{"f"}, want: []jobs.Version{v(3, 0)},
		},
		{
			name: "forget",
			run: func(ca *cache) {
				ca.merge(a, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.merge(b, []string{"f"}, []jobs.Version{v(1, 0)})
				ca.forget(func(k jobs.Key) bool { return k != a })
			},
			key: a, fields: []string{"f"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca := newCache(4)
			tc.run(ca)
			got, ok := ca.lookup(tc.key, tc.fields)
			if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
				t.Fatalf("lookup = %v, %v; want %v", got, ok, tc.want)
			}
			n := 0
			for el := ca.lru.Front(); el != nil; el = el.Next() {
				n += len(el.Value.(*entry).fields)
			}
			if n != ca.size || (ca.size > ca.max && ca.lru.Len() > 1) {
				t.Fatalf("size %d (counted %d) over max %d with %d keys", ca.size, n, ca.max, ca.lru.Len())
			}
		})
	}
	ca := newCache(4)
	ca.raise(a, []string{"g"}, []jobs.Version{v(3, 0)})
	if _, ok := ca.lookup(a, []string{"g"}); ok {
		t.Fatal("raise added an uncached field")
	}
}
