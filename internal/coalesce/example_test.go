package coalesce_test

import (
	"context"
	"fmt"
	"time"

	"github.com/friendsync/friendsync/internal/coalesce"
)

func Example() {
	flush := func(_ context.Context, key string, batch []string) {
		fmt.Println(key, batch)
	}
	c, err := coalesce.New(coalesce.Config{Grace: time.Minute, MaxDelay: time.Hour, MaxSize: 3}, flush)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, v := range []string{"remark=a", "remark=b", "groups=x", "remark=c"} {
		_ = c.Add(ctx, "alice", v) // the third value fills a batch: it is flushed at once
	}
	_ = c.Close(ctx) // drains the rest after that flight, without waiting for Grace
	fmt.Println(c.Add(ctx, "alice", "late"))
	// Output:
	// alice [remark=a remark=b groups=x]
	// alice [remark=c]
	// coalesce: closed
}
