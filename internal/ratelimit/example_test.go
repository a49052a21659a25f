package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/ratelimit"
)

// A budget of 20 calls/s with a burst of 2: the first two calls go at
// once, the third waits one emission interval (50 ms). In production New
// shares the budget through Redis; NewLocal is the in-process twin.
func Example() {
	lim, err := ratelimit.NewLocal(ratelimit.Config{
		Budgets: []ratelimit.Budget{{Name: "zego:1:UpdateFriendsAlias", Rate: 20, Burst: 2, Reserve: -1}},
	}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	start := time.Now()
	for i := 1; i <= 3; i++ {
		if err := lim.Wait(ctx, "zego:1:UpdateFriendsAlias", event.LaneLive); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("call %d after ≥%dms\n", i, time.Since(start).Milliseconds()/50*50)
	}
	// Output:
	// call 1 after ≥0ms
	// call 2 after ≥0ms
	// call 3 after ≥50ms
}
