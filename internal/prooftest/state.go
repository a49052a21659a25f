package prooftest

import (
	"fmt"
	"slices"

	"github.com/friendsync/friendsync/internal/vendorsim"
)

// SameFriend reports whether a and b hold the same remark, groups (in
// order) and attributes.
func SameFriend(a, b vendorsim.Friend) bool {
	if a.Remark != b.Remark || !slices.Equal(a.Groups, b.Groups) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for k, v := range a.Attrs {
		if bv, ok := b.Attrs[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Brief formats f for a failure message.
func Brief(f vendorsim.Friend) string {
	return fmt.Sprintf("{remark %q groups %q attrs %v}", f.Remark, f.Groups, f.Attrs)
}

// Diff compares the simulator's state with want and returns the number of
// friends that differ (or are not stored) and up to 5 examples.
func Diff(sim *vendorsim.Sim, apps Apps, want map[FriendKey]vendorsim.Friend) (int, []string) {
	bad := 0
	var ex []string
	for k, f := range want {
		got, ok := apps.Friend(sim, k)
		if ok && SameFriend(got, f) {
			continue
		}
		bad++
		if len(ex) < 5 {
			ex = append(ex, fmt.Sprintf("%s/%s→%s: got %+v (stored %t), want %+v", k.App, k.From, k.To,
				Brief(got), ok, Brief(f)))
		}
	}
	return bad, ex
}
