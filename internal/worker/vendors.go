package worker

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/deliver"
	"github.com/friendsync/friendsync/internal/ratelimit"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendors/tencent"
	"github.com/friendsync/friendsync/internal/vendors/volc"
	"github.com/friendsync/friendsync/internal/vendors/zego"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// The vendor clients satisfy delivery's Sender.
var (
	_ deliver.Sender = (*tencent.Client)(nil)
	_ deliver.Sender = (*volc.Client)(nil)
	_ deliver.Sender = (*zego.Client)(nil)
)

// defaultVendorTimeout bounds one vendor call unless a profile sets its
// own; the lease fence must cover the longest one.
const defaultVendorTimeout = 5 * time.Second

func vendorTimeout(p *config.Profile) time.Duration {
	if p.Timeout > 0 {
		return time.Duration(p.Timeout)
	}
	return defaultVendorTimeout
}

// newSender builds the vendor client of a profile. hc carries the requests
// (nil: the client's own tuned transport).
func newSender(p *config.Profile, hc *http.Client) (deliver.Sender, error) {
	timeout := vendorTimeout(p)
	switch p.Vendor {
	case event.Tencent:
		t := p.Tencent
		return tencent.New(tencent.Config{BaseURL: t.BaseURL, SDKAppID: t.SDKAppID, Identifier: t.Identifier,
			Key: p.TencentKey.Reveal(), MaxBatch: t.MaxBatch, Timeout: timeout}, hc)
	case event.Volc:
		v := p.Volc
		return volc.New(volc.Config{BaseURL: v.BaseURL, Region: v.Region, AccessKey: v.AccessKey,
			SecretKey: p.VolcSecret.Reveal(), AppID: v.AppID, SendAlias: v.SendAlias, MaxBatch: v.MaxBatch, Timeout: timeout}, hc)
	case event.Zego:
		z := p.Zego
		return zego.New(zego.Config{BaseURL: z.BaseURL, AppID: z.AppID, ServerSecret: p.ZegoSecret.Reveal(),
			MaxAliasBatch: z.MaxAliasBatch, Timeout: timeout}, hc)
	}
	return nil, fmt.Errorf("worker: app %q: unknown vendor %q", p.Name, p.Vendor)
}

// batchCap is the coalescer's MaxSize for a profile: the vendor's per-call
// item cap.
func batchCap(p *config.Profile) int {
	switch p.Vendor {
	case event.Tencent:
		if p.Tencent.MaxBatch > 0 {
			return p.Tencent.MaxBatch
		}
		return tencent.DefaultMaxBatch
	case event.Volc:
		if p.Volc.MaxBatch > 0 {
			return p.Volc.MaxBatch
		}
		return 10
	default:
		if p.Zego.MaxAliasBatch > 0 {
			return p.Zego.MaxAliasBatch
		}
		return 20
	}
}

// budgetsOf lists the rate-limit budgets a profile's calls draw on, with
// the names the clients put in vendors.Call.Budget (a test checks that).
func budgetsOf(p *config.Profile) []ratelimit.Budget {
	b := ratelimit.Budget{Rate: p.Budget.Rate, Burst: p.Budget.Burst, Reserve: p.Budget.Reserve}
	switch p.Vendor {
	case event.Tencent:
		b.Name = "tencent:" + strconv.FormatUint(p.Tencent.SDKAppID, 10) + ":" + tencent.API
		b.Limit = config.TencentQPS
		return []ratelimit.Budget{b}
	case event.Volc:
		b.Name = volc.BudgetName(p.Volc.AccessKey)
		return []ratelimit.Budget{b}
	default:
		id := strconv.FormatUint(uint64(p.Zego.AppID), 10)
		b.Limit = config.ZegoQPS
		alias, attrs := b, b
		alias.Name = "zego:" + id + ":UpdateFriendsAlias"
		attrs.Name = "zego:" + id + ":UpdateFriendAttributes"
		return []ratelimit.Budget{alias, attrs}
	}
}

// allBudgets collects the budgets of every profile, once each (apps on one
// vendor quota share a budget; config validation made them agree).
func allBudgets(ps config.Profiles) []ratelimit.Budget {
	seen := map[string]bool{}
	var out []ratelimit.Budget
	for _, name := range ps.Names() {
		for _, b := range budgetsOf(ps[name]) {
			if !seen[b.Name] {
				seen[b.Name] = true
				out = append(out, b)
			}
		}
	}
	return out
}

// fencedSender gives every vendor call for a partition the lease's call
// deadline, so a process paused between the fence check and the request
// cannot send after its lease may have expired.
type fencedSender struct {
	deliver.Sender
	app        string
	partitions int
	deadline   func(p int) (time.Time, bool)
}

// Vendor forwards the client's vendor name (used as a metric label).
func (s fencedSender) Vendor() string {
	if v, ok := s.Sender.(interface{ Vendor() string }); ok {
		return v.Vendor()
	}
	return ""
}

func (s fencedSender) Send(ctx context.Context, call vendors.Call) (vendors.Result, error) {
	p := event.Partition(s.app, call.From, s.partitions)
	dl, ok := s.deadline(p)
	if !ok {
		return vendors.Result{}, fmt.Errorf("worker: partition %d: lease not held", p)
	}
	ctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	return s.Sender.Send(ctx, call)
}

// Demo app names served by the in-process simulator.
const (
	DemoAppTencent = "demo-tencent"
	DemoAppVolc    = "demo-volc"
	DemoAppZego    = "demo-zego"
)

// simBaseURL is the host the in-process simulator answers for; requests
// never leave the process (they go through vendorsim's Transport).
const simBaseURL = "http://vendorsim.invalid"

// DemoProfiles are the apps of the embedded default: one per vendor,
// pointing at the in-process simulator with its demo credentials.
func DemoProfiles() config.Profiles {
	return config.Profiles{
		DemoAppTencent: {Name: DemoAppTencent, Vendor: event.Tencent,
			Tencent:    &config.TencentProfile{BaseURL: simBaseURL + "/tencent", SDKAppID: vendorsim.DemoTencentSDKAppID, Identifier: vendorsim.DemoTencentAdmin},
			TencentKey: vendorsim.DemoTencentKey},
		DemoAppVolc: {Name: DemoAppVolc, Vendor: event.Volc,
			Volc:       &config.VolcProfile{BaseURL: simBaseURL + "/volc", AccessKey: vendorsim.DemoVolcAccessKey, AppID: vendorsim.DemoVolcAppID, SendAlias: true},
			VolcSecret: vendorsim.DemoVolcSecretKey,
			Budget:     config.BudgetConfig{Rate: 50, Burst: 5}},
		DemoAppZego: {Name: DemoAppZego, Vendor: event.Zego,
			Zego:       &config.ZegoProfile{BaseURL: simBaseURL + "/zego", AppID: vendorsim.DemoZegoAppID},
			ZegoSecret: vendorsim.DemoZegoServerSecret},
	}
}
