package zego_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors/vendorstest"
	"github.com/friendsync/friendsync/internal/vendors/zego"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	f := vendorstest.Features{
		Vendor: event.Zego,
		APIs: map[string]vendorstest.Caps{
			zego.APIUpdateFriendsAlias:     {MaxItems: zego.DefaultMaxAliasBatch},
			zego.APIUpdateFriendAttributes: {MaxItems: 1, MaxAttrs: zego.MaxAttrsPerCall, MaxAttrBytes: zego.MaxAttrBytes},
		},
		BatchAPI: zego.APIUpdateFriendsAlias,
		Remark:   true, // FriendAlias; ZIM has no friend groups
		Attrs:    true,
		AttrKey:  func(i int) string { return "k" + strconv.Itoa(i) }, // k0..k4 only
		AttrKeys: 5,
		ID:       func(i int) string { return "user_" + strconv.Itoa(i) },

		NotFriendCode:      "660800034",
		ThrottleCode:       "660300005",
		ThrottleRetryAfter: true,
		TransientCode:      "660000001",
		TransientItemCode:  "660000001",
		// ZEGO documents no write-conflict code; the simulator answers an
		// overlapping write with the "common business error, retry" code
		// when asked to, which the client must surface as retry.
		ConflictCode: strconv.Itoa(vendorsim.ZegoBusinessError),
		SimConfig:    func(cfg *vendorsim.Config) { cfg.ZegoConflictCode = vendorsim.ZegoBusinessError },
		Fresh: func(r *http.Request) string {
			q := r.URL.Query()
			return q.Get("SignatureNonce") + " " + q.Get("Timestamp") + " " + q.Get("Signature")
		},
		Credentials: func(r *http.Request) []string { return []string{r.URL.Query().Get("Signature")} },
	}
	vendorstest.Run(t, f, func(t *testing.T, baseURL string, hc *http.Client, _ *vendorsim.Sim) vendorstest.Client {
		c, err := zego.New(zego.Config{
			BaseURL:      baseURL,
			AppID:        vendorsim.DemoZegoAppID,
			ServerSecret: vendorsim.DemoZegoServerSecret,
		}, hc)
		if err != nil {
			t.Fatalf("zego.New: %v", err)
		}
		return c
	})
}
