package vendorsim_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/internal/vendorsim"
)

// A test builds a simulator with the demo credentials and reaches it
// through the in-memory Transport (or serves Handler on a listener).
func Example() {
	sim, err := vendorsim.New(vendorsim.DemoConfig())
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: sim.Transport()}

	// A signed ZEGO UpdateFriendsAlias call.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := "0123456789abcdef"
	sum := md5.Sum([]byte(strconv.Itoa(vendorsim.DemoZegoAppID) + nonce + vendorsim.DemoZegoServerSecret + ts))
	q := url.Values{
		"Action": {"UpdateFriendsAlias"}, "AppId": {strconv.Itoa(vendorsim.DemoZegoAppID)},
		"SignatureNonce": {nonce}, "Timestamp": {ts}, "SignatureVersion": {"2.0"},
		"Signature": {hex.EncodeToString(sum[:])},
	}
	resp, err := client.Post("http://sim/zego/?"+q.Encode(), "application/json",
		strings.NewReader(`{"FromUserId":"alice","UserIds":[{"UserId":"bob","FriendAlias":"Bobby"}]}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"Code":0`))

	f, _ := sim.Friend("zego", strconv.Itoa(vendorsim.DemoZegoAppID), "alice", "bob")
	c := sim.Counters()
	fmt.Println(f.Remark, c.Zego.Calls, c.Zego.Overlaps)
	// Output:
	// 200 true
	// Bobby 1 0
}
