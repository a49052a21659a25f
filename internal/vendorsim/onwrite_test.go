package vendorsim

import (
	"strconv"
	"sync"
	"testing"

	"github.com/friendsync/friendsync/event"
)

// OnWrite sees every item of every processed write, applied or failed,
// with the values the call carried.
func TestOnWriteJournal(t *testing.T) {
	var mu sync.Mutex
	var got []Write
	h := newHarness(t, func(c *Config) {
		c.RequireFriendship = true
		c.OnWrite = func(w Write) {
			mu.Lock()
			got = append(got, w)
			mu.Unlock()
		}
	})
	app := strconv.Itoa(DemoZegoAppID)
	if err := h.sim.AddFriends(event.Zego, app, "u1", "u2"); err != nil {
		t.Fatal(err)
	}
	h.zego(APIZegoAlias, zAlias("u1", "u2", "Two", "u3", "Three"), nil)
	h.zego(APIZegoAttributes, zAttrs("u1", "u2", "k0", "a", "k1", ""), nil)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("got %d writes, want 3: %+v", len(got), got)
	}
	for _, w := range got {
		if w.Vendor != event.Zego || w.App != app || w.From != "u1" || w.Ended.Before(w.Started) {
			t.Errorf("bad write header %+v", w)
		}
	}
	if w := got[0]; w.To != "u2" || w.Remark == nil || *w.Remark != "Two" || w.Fail != "" {
		t.Errorf("first write %+v, want u2 remark Two applied", w)
	}
	if w := got[1]; w.To != "u3" || w.Fail != "660800034" {
		t.Errorf("second write %+v, want u3 failed 660800034 (not a friend)", w)
	}
	if w := got[2]; w.To != "u2" || w.Attrs["k0"] != "a" || w.Attrs["k1"] != "" || len(w.Attrs) != 2 || w.Fail != "" {
		t.Errorf("third write %+v, want u2 attrs k0=a k1 deleted", w)
	}
}
