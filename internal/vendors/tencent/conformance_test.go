package tencent_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors/tencent"
	"github.com/friendsync/friendsync/internal/vendors/vendorstest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	f := vendorstest.Features{
		Vendor:   event.Tencent,
		APIs:     map[string]vendorstest.Caps{tencent.API: {MaxItems: tencent.MaxBatchLimit}},
		BatchAPI: tencent.API,
		Remark:   true,
		Groups:   true,
		Attrs:    true,
		// Tag_SNS_Custom_<key>: letters, digits and '_'.
		AttrKey:           func(i int) string { return "Level_" + strconv.Itoa(i) },
		AttrKeys:          8,
		ID:                func(i int) string { return "user_" + strconv.Itoa(i) },
		NotFriendCode:     "30001",
		ThrottleCode:      "60007",
		TransientCode:     "30006",
		TransientItemCode: "30006",
		ConflictCode:      "30008",
		// The cached UserSig may repeat; the random parameter may not.
		Fresh:       func(r *http.Request) string { return r.URL.Query().Get("random") },
		Credentials: func(r *http.Request) []string { return []string{r.URL.Query().Get("usersig")} },
	}
	vendorstest.Run(t, f, func(t *testing.T, baseURL string, hc *http.Client, _ *vendorsim.Sim) vendorstest.Client {
		c, err := tencent.New(tencent.Config{
			BaseURL:    baseURL,
			SDKAppID:   vendorsim.DemoTencentSDKAppID,
			Identifier: vendorsim.DemoTencentAdmin,
			Key:        vendorsim.DemoTencentKey,
		}, hc)
		if err != nil {
			t.Fatalf("tencent.New: %v", err)
		}
		return c
	})
}
