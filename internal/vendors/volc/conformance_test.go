package volc_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors/vendorstest"
	"github.com/friendsync/friendsync/internal/vendors/volc"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	f := vendorstest.Features{
		Vendor:   event.Volc,
		APIs:     map[string]vendorstest.Caps{volc.API: {MaxItems: volc.MaxBatchLimit}},
		BatchAPI: volc.API,
		Remark:   true, // sent as FriendInfo.Alias (SendAlias)
		Attrs:    true, // FriendInfo.Ext; UpdateFriend has no groups
		AttrKey:  func(i int) string { return "ext." + strconv.Itoa(i) },
		AttrKeys: 8,
		// Volcengine user ids are decimal int64 integers.
		ID:                 func(i int) string { return strconv.Itoa(10_000_000 + i) },
		NotFriendCode:      "NOT_FRIEND",
		ThrottleCode:       "FlowLimitExceeded.QPSOverLimit",
		ThrottleRetryAfter: true,
		TransientCode:      "InternalError",
		TransientItemCode:  "INTERNAL_ERROR",
		ConflictCode:       "UPDATE_FREQUENT",
		Fresh: func(r *http.Request) string {
			return r.Header.Get("X-Date") + " " + r.Header.Get("Authorization")
		},
		Credentials: func(r *http.Request) []string {
			_, sig, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
			return []string{sig}
		},
	}
	vendorstest.Run(t, f, func(t *testing.T, baseURL string, hc *http.Client, _ *vendorsim.Sim) vendorstest.Client {
		c, err := volc.New(volc.Config{
			BaseURL:   baseURL,
			AccessKey: vendorsim.DemoVolcAccessKey,
			SecretKey: vendorsim.DemoVolcSecretKey,
			AppID:     vendorsim.DemoVolcAppID,
			SendAlias: true,
		}, hc)
		if err != nil {
			t.Fatalf("volc.New: %v", err)
		}
		return c
	})
}
