package clustertest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

// TestCallLogOverlaps checks the one-owner check itself: calls for one
// partition from two workers at once are reported, hand-overs in sequence
// and concurrent calls of one worker are not.
func TestCallLogOverlaps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cases := []struct {
		name       string
		calls      []call
		bad        int
		handedOver int
	}{
		{"one worker, concurrent calls", []call{{"w1", 0, at(0), at(50)}, {"w1", 0, at(10), at(60)}}, 0, 0},
		{"hand-over in sequence", []call{{"w1", 0, at(0), at(50)}, {"w2", 0, at(51), at(90)}}, 0, 1},
		{"two workers, different partitions", []call{{"w1", 0, at(0), at(50)}, {"w2", 1, at(10), at(60)}}, 0, 0},
		{"two workers at once", []call{{"w1", 0, at(0), at(50)}, {"w2", 0, at(49), at(90)}}, 1, 1},
		{"overlap with an earlier, longer call", []call{{"w1", 3, at(0), at(500)}, {"w1", 3, at(10), at(20)}, {"w2", 3, at(100), at(110)}}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &callLog{calls: tc.calls}
			bad, handedOver, total := l.overlaps()
			if len(bad) != tc.bad || handedOver != tc.handedOver || total != len(tc.calls) {
				t.Errorf("overlaps = %q, hand-overs %d, total %d; want %d overlaps, %d hand-overs, %d calls",
					bad, handedOver, total, tc.bad, tc.handedOver, len(tc.calls))
			}
		})
	}
}

// TestPartitionOf checks that the account is read from the field each
// vendor uses (a ZEGO attributes call also names the friend in UserId).
func TestPartitionOf(t *testing.T) {
	cases := []struct {
		path, body, app, from string
	}{
		{"/tencent/v4/sns/friend_update", `{"From_Account":"u7","UpdateItem":[]}`, appTencent, "u7"},
		{"/volc/", `{"AppId":1,"UserId":10000007,"FriendInfos":[]}`, appVolc, "10000007"},
		{"/zego/", `{"FromUserId":"z7","UserId":"zf7_0","Attributes":[]}`, appZego, "z7"},
	}
	for _, tc := range cases {
		t.Run(tc.app, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, inProcessBase+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := partitionOf(r)
			if want := event.Partition(tc.app, tc.from, partitions); !ok || p != want {
				t.Errorf("partitionOf = %d, %t; want %d (app %s, from %s)", p, ok, want, tc.app, tc.from)
			}
			if b, _ := io.ReadAll(r.Body); !bytes.Equal(b, []byte(tc.body)) {
				t.Errorf("body not restored: %q", b)
			}
		})
	}
	r, _ := http.NewRequest(http.MethodPost, inProcessBase+"/other/", strings.NewReader(`{}`))
	if _, ok := partitionOf(r); ok {
		t.Error("partitionOf recognised a request outside the vendors' paths")
	}
}
