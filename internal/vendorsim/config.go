package vendorsim

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Documented defaults (VENDORS.md and the seed pages), used when the
// matching Config or Limits field is zero.
const (
	DefaultWriteTime    = 5 * time.Millisecond
	DefaultTencentQPS   = 200 // per SDKAppID, friend_update (A.1)
	DefaultZegoQPS      = 20  // per AppID and API (C.2, C.3)
	DefaultZegoSkew     = 10 * time.Minute
	DefaultVolcSkew     = 15 * time.Minute // [I] SigV4 convention; not on the Volcengine pages
	DefaultMaxFriends   = 5_000_000
	DefaultMaxBodyBytes = 4 << 20
	DefaultVolcRegion   = "cn-north-1"
	DefaultVolcService  = "rtc"

	// ZegoBusinessError is ZEGO's "common business error, retry" code; set
	// Config.ZegoConflictCode to it to answer overlapping writes with it.
	ZegoBusinessError = 660000001
)

// Demo credentials, used by DemoConfig and the embedded dev mode. They are
// the public sample values of the vendor documents (VENDORS.md A.4, B.2,
// C.1), so they protect nothing.
const (
	DemoTencentSDKAppID = 1400000000
	DemoTencentKey      = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	DemoTencentAdmin    = "administrator"

	DemoVolcAccessKey = "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg"
	DemoVolcSecretKey = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ=="
	DemoVolcAppID     = 123456

	DemoZegoAppID        = 12345
	DemoZegoServerSecret = "9193cc662a4c0ec135ec71fb57194b38"
)

// TencentApp holds one SDKAppID's credentials.
type TencentApp struct {
	// Key is the console secret key the UserSig HMAC uses (raw UTF-8 bytes).
	Key string
	// Admin is the App admin identifier; friend_update requires it.
	Admin string
}

// VolcAccount holds one Volcengine access key's secret and the AppIds the
// account owns (a call for another AppId is AccessDenied).
type VolcAccount struct {
	SecretKey string
	AppIDs    []int64
}

// Limits are the documented batch caps and field limits. Zero means the
// documented default shown in each comment.
type Limits struct {
	TencentMaxItems       int      // UpdateItem per call, 1000
	TencentMaxRemarkBytes int      // Tag_SNS_IM_Remark, 96
	TencentMaxGroups      int      // Tag_SNS_IM_Group entries, 32
	TencentMaxGroupBytes  int      // one group name, 30
	TencentMaxCustomBytes int      // Tag_SNS_Custom_* value, 500
	TencentCustomKeys     []string // custom keys configured "in the console"; empty allows any valid key

	VolcMaxItems      int // FriendInfos per call, 10
	VolcMaxAliasBytes int // Alias, 256 [I]: not documented, ALIAS_TOO_LONG exists

	ZegoMaxAliases     int // UserIds per UpdateFriendsAlias, 20
	ZegoMaxAliasBytes  int // FriendAlias, 256
	ZegoMaxUserIDBytes int // UserId / FromUserId, 32
	ZegoMaxAttrs       int // Attributes per UpdateFriendAttributes, 5
	ZegoMaxAttrBytes   int // sum of Key+Value per call, 1024
}

func (l *Limits) setDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&l.TencentMaxItems, 1000)
	def(&l.TencentMaxRemarkBytes, 96)
	def(&l.TencentMaxGroups, 32)
	def(&l.TencentMaxGroupBytes, 30)
	def(&l.TencentMaxCustomBytes, 500)
	def(&l.VolcMaxItems, 10)
	def(&l.VolcMaxAliasBytes, 256)
	def(&l.ZegoMaxAliases, 20)
	def(&l.ZegoMaxAliasBytes, 256)
	def(&l.ZegoMaxUserIDBytes, 32)
	def(&l.ZegoMaxAttrs, 5)
	def(&l.ZegoMaxAttrBytes, 1024)
}

// Config configures a Sim. Zero values mean the documented defaults.
type Config struct {
	// Tencent maps SDKAppID to its key and admin identifier.
	Tencent map[uint64]TencentApp
	// Volc maps AccessKey to its secret and AppIds.
	Volc map[string]VolcAccount
	// Zego maps AppID to its ServerSecret.
	Zego map[uint32]string

	// VolcRegion and VolcService are the credential scope the simulator
	// expects (default "cn-north-1" and "rtc").
	VolcRegion  string
	VolcService string

	// WriteTime is how long applying one call takes; a write for the same
	// account arriving meanwhile is an overlap. Default 5ms; negative: none.
	WriteTime time.Duration

	// QPS limits, sliding 1-second window. TencentQPS is per SDKAppID
	// (default 200), ZegoQPS per AppID and API (default 20); negative means
	// unlimited. VolcQPS is per AccessKey; 0 or negative means unlimited
	// (Volcengine documents no number).
	TencentQPS int
	ZegoQPS    int
	VolcQPS    int

	// RequireFriendship makes only pairs added with AddFriends friends;
	// updating any other pair fails per item (Tencent 30001, Volcengine
	// NOT_FRIEND, ZEGO 660800034). Default false: every pair is a friend.
	RequireFriendship bool

	// Clock skew allowed for ZEGO Timestamp (default 10 min) and Volcengine
	// X-Date (default 15 min).
	ZegoSkew time.Duration
	VolcSkew time.Duration

	// MaxFriends bounds the stored (vendor, app, from, to) entries (default
	// 5,000,000). Past it new entries are not stored (the call still
	// succeeds) and Counters.StateDropped counts them.
	MaxFriends int

	// ZegoConflictCode, when non-zero, is the whole-call Code answered to a
	// ZEGO write that overlaps another write for the same account (ZEGO
	// documents none; ZegoBusinessError is the natural choice). When zero the
	// overlapping write is applied and only counted.
	ZegoConflictCode int

	// MaxBodyBytes bounds a request body (default 4 MiB).
	MaxBodyBytes int64

	Limits Limits

	// Faults are the initial fault specs per vendor.
	Faults map[event.Vendor]FaultSpec

	// Now is the clock for credential validity and outage windows
	// (default time.Now).
	Now func() time.Time

	// Logger receives one record per rejected call (no secrets). Nil
	// discards.
	Logger *slog.Logger

	// OnWrite, when set, is called once per item of every write the
	// simulator processed, after it was applied or failed, with the
	// account's shard lock released. Tests use it as a journal of what
	// reached the vendor and when. It must be safe for concurrent use.
	OnWrite func(Write)
}

// Write is one item of a processed write, as seen by Config.OnWrite.
type Write struct {
	Vendor         event.Vendor
	App, From, To  string
	Remark         *string
	Groups         *[]string
	Attrs          map[string]string
	Fail           string // the item's failure code; "" when applied
	Started, Ended time.Time
}

// DemoConfig returns the demo credentials (the Demo* constants) and
// defaults for everything else.
func DemoConfig() Config {
	return Config{
		Tencent: map[uint64]TencentApp{DemoTencentSDKAppID: {Key: DemoTencentKey, Admin: DemoTencentAdmin}},
		Volc:    map[string]VolcAccount{DemoVolcAccessKey: {SecretKey: DemoVolcSecretKey, AppIDs: []int64{DemoVolcAppID}}},
		Zego:    map[uint32]string{DemoZegoAppID: DemoZegoServerSecret},
	}
}

func (c *Config) setDefaults() {
	if c.VolcRegion == "" {
		c.VolcRegion = DefaultVolcRegion
	}
	if c.VolcService == "" {
		c.VolcService = DefaultVolcService
	}
	switch {
	case c.WriteTime == 0:
		c.WriteTime = DefaultWriteTime
	case c.WriteTime < 0:
		c.WriteTime = 0
	}
	switch {
	case c.TencentQPS == 0:
		c.TencentQPS = DefaultTencentQPS
	case c.TencentQPS < 0:
		c.TencentQPS = 0
	}
	switch {
	case c.ZegoQPS == 0:
		c.ZegoQPS = DefaultZegoQPS
	case c.ZegoQPS < 0:
		c.ZegoQPS = 0
	}
	if c.VolcQPS < 0 {
		c.VolcQPS = 0
	}
	if c.ZegoSkew == 0 {
		c.ZegoSkew = DefaultZegoSkew
	}
	if c.VolcSkew == 0 {
		c.VolcSkew = DefaultVolcSkew
	}
	if c.MaxFriends == 0 {
		c.MaxFriends = DefaultMaxFriends
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.Limits.setDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vendorsim: config: "+format, args...))
	}
	if len(c.Tencent)+len(c.Volc)+len(c.Zego) == 0 {
		bad("no credentials: set at least one of Tencent, Volc, Zego (DemoConfig has demo ones)")
	}
	for id, app := range c.Tencent {
		if id == 0 {
			bad("tencent: SDKAppID 0")
		}
		if app.Key == "" {
			bad("tencent %d: empty Key", id)
		}
		if app.Admin == "" {
			bad("tencent %d: empty Admin", id)
		}
	}
	for ak, acc := range c.Volc {
		if ak == "" || strings.ContainsAny(ak, "/, ") {
			bad("volc: access key %q is empty or holds '/', ',' or ' '", maskID(ak))
		}
		if acc.SecretKey == "" {
			bad("volc %s: empty SecretKey", maskID(ak))
		}
		if len(acc.AppIDs) == 0 {
			bad("volc %s: no AppIDs", maskID(ak))
		}
	}
	for id, secret := range c.Zego {
		if id == 0 {
			bad("zego: AppID 0")
		}
		if secret == "" {
			bad("zego %d: empty ServerSecret", id)
		}
	}
	if c.ZegoSkew < 0 || c.VolcSkew < 0 {
		bad("negative clock skew")
	}
	if c.MaxFriends < 0 {
		bad("MaxFriends %d is negative", c.MaxFriends)
	}
	if c.MaxBodyBytes < 0 {
		bad("MaxBodyBytes %d is negative", c.MaxBodyBytes)
	}
	l := c.Limits
	for name, v := range map[string]int{
		"TencentMaxItems": l.TencentMaxItems, "TencentMaxRemarkBytes": l.TencentMaxRemarkBytes,
		"TencentMaxGroups": l.TencentMaxGroups, "TencentMaxGroupBytes": l.TencentMaxGroupBytes,
		"TencentMaxCustomBytes": l.TencentMaxCustomBytes, "VolcMaxItems": l.VolcMaxItems,
		"VolcMaxAliasBytes": l.VolcMaxAliasBytes, "ZegoMaxAliases": l.ZegoMaxAliases,
		"ZegoMaxAliasBytes": l.ZegoMaxAliasBytes, "ZegoMaxUserIDBytes": l.ZegoMaxUserIDBytes,
		"ZegoMaxAttrs": l.ZegoMaxAttrs, "ZegoMaxAttrBytes": l.ZegoMaxAttrBytes,
	} {
		if v < 0 {
			bad("Limits.%s %d is negative", name, v)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(c.Faults)) {
		if err := c.Faults[v].validate(v); err != nil {
			errs = append(errs, fmt.Errorf("vendorsim: config: faults: %w", err))
		}
	}
	return errors.Join(errs...)
}

// String describes c with every secret masked.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("vendorsim.Config{Tencent:[")
	for i, id := range slices.Sorted(maps.Keys(c.Tencent)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d(admin=%s key=%s)", id, c.Tencent[id].Admin, mask(c.Tencent[id].Key))
	}
	b.WriteString("] Volc:[")
	for i, ak := range slices.Sorted(maps.Keys(c.Volc)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s(apps=%v sk=%s)", maskID(ak), c.Volc[ak].AppIDs, mask(c.Volc[ak].SecretKey))
	}
	b.WriteString("] Zego:[")
	for i, id := range slices.Sorted(maps.Keys(c.Zego)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d(secret=%s)", id, mask(c.Zego[id]))
	}
	fmt.Fprintf(&b, "] WriteTime:%s TencentQPS:%d ZegoQPS:%d VolcQPS:%d RequireFriendship:%t MaxFriends:%d ZegoConflictCode:%d}",
		c.WriteTime, c.TencentQPS, c.ZegoQPS, c.VolcQPS, c.RequireFriendship, c.MaxFriends, c.ZegoConflictCode)
	return b.String()
}

// mask hides a secret completely, keeping only whether it is set.
func mask(s string) string {
	if s == "" {
		return `""`
	}
	return "***(" + strconv.Itoa(len(s)) + " bytes)"
}

// maskID shortens an identifier that is not secret but long (an access
// key) for messages.
func maskID(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:6] + "…"
}
