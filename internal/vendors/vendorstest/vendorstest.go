package vendorstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// Client is the part of a vendor client the suite exercises.
type Client interface {
	Vendor() string
	Split(from string, items []vendors.Item) []vendors.Call
	Send(ctx context.Context, call vendors.Call) (vendors.Result, error)
}

// NewClient builds the client under test for one case. It must use the
// simulator's demo credentials of its vendor (vendorsim.Demo*), send to
// baseURL ("http://sim.invalid/<vendor>" or a real server's URL plus
// "/<vendor>") and make its requests through hc, whose Transport the suite
// provides. sim is the case's simulator, for clients that need more from it.
type NewClient func(t *testing.T, baseURL string, hc *http.Client, sim *vendorsim.Sim) Client

// Caps are the documented limits of one vendor API, as Split must obey
// them. Zero means no limit.
type Caps struct {
	// MaxItems is the most friends (call items) per call.
	MaxItems int
	// MaxAttrs is the most attributes one call item may carry.
	MaxAttrs int
	// MaxAttrBytes bounds the sum of len(key)+len(value) over all the
	// attributes of one call.
	MaxAttrBytes int
}

// Features describes a vendor as the suite needs to know it. Codes are the
// vendor's codes as text, exactly as the client reports them in
// vendors.Error.Code or vendors.ItemResult.Code.
type Features struct {
	// Vendor is the kind: which simulator API the client calls.
	Vendor event.Vendor
	// APIs maps every API Split may put in a Call to its caps.
	APIs map[string]Caps
	// BatchAPI is the API that carries several friends per call (it must
	// be in APIs); a batch of items with only a remark (or, without
	// remarks, only attributes) fits it.
	BatchAPI string

	// Remark, Groups and Attrs say which item fields the vendor stores.
	// The suite sends no other field.
	Remark, Groups, Attrs bool
	// AttrKey returns the i-th valid attribute key, for 0 <= i < AttrKeys
	// (the shape differs: Tencent letters, digits and '_', ZEGO k0..k4).
	AttrKey func(i int) string
	// AttrKeys is how many distinct keys AttrKey gives; at least 2 when
	// Attrs is set.
	AttrKeys int
	// ID returns a valid account id (From or To); different i give
	// different ids (Volcengine ids are decimal integers).
	ID func(i int) string

	// NotFriendCode is the per-item code for a To that is not a friend.
	NotFriendCode string
	// ThrottleCode is the whole-call code for a call over the QPS limit;
	// ThrottleRetryAfter says the client attaches a RetryAfter > 0 to it.
	ThrottleCode       string
	ThrottleRetryAfter bool
	// TransientCode is a whole-call code the simulator can inject
	// (FaultSpec.ErrorRates) that means "retry"; TransientItemCode the
	// same for one item (FaultSpec.ItemErrorRates).
	TransientCode     string
	TransientItemCode string
	// ConflictCode is the code (whole-call or per item) answering a write
	// that overlaps another write for the same From; "" when the vendor
	// has none and applies both.
	ConflictCode string
	// SimConfig, when set, adjusts every case's simulator config (e.g. to
	// switch on a conflict answer).
	SimConfig func(*vendorsim.Config)

	// Fresh returns the part of a signed request that must differ between
	// two attempts (a nonce, a random, a time-bound signature).
	Fresh func(r *http.Request) string
	// Credentials returns the secret-bearing values a signed request
	// carries (UserSig, Signature, the Authorization signature); none may
	// appear in an error or a result.
	Credentials func(r *http.Request) []string
}

// Validate reports what is missing or inconsistent in f.
func (f Features) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vendorstest: features: "+format, args...))
	}
	if !f.Vendor.Valid() {
		bad("unknown vendor %q", f.Vendor)
	}
	if len(f.APIs) == 0 {
		bad("APIs is empty")
	}
	for api, c := range f.APIs {
		if c.MaxItems < 1 {
			bad("API %s: MaxItems %d, want at least 1", api, c.MaxItems)
		}
		if c.MaxAttrs < 0 || c.MaxAttrBytes < 0 {
			bad("API %s: negative caps", api)
		}
	}
	if c, ok := f.APIs[f.BatchAPI]; !ok {
		bad("BatchAPI %q is not in APIs", f.BatchAPI)
	} else if c.MaxItems < 2 {
		bad("BatchAPI %s: MaxItems %d, a batch needs at least 2", f.BatchAPI, c.MaxItems)
	}
	if !f.Remark && !f.Groups && !f.Attrs {
		bad("no supported field")
	}
	if !f.Remark && !f.Attrs {
		bad("a batch needs Remark or Attrs")
	}
	if f.Attrs && (f.AttrKey == nil || f.AttrKeys < 2) {
		bad("Attrs needs AttrKey and AttrKeys >= 2")
	}
	if f.ID == nil || f.Fresh == nil || f.Credentials == nil {
		bad("ID, Fresh and Credentials are required")
	}
	for name, c := range map[string]string{
		"NotFriendCode": f.NotFriendCode, "ThrottleCode": f.ThrottleCode,
		"TransientCode": f.TransientCode, "TransientItemCode": f.TransientItemCode,
	} {
		if c == "" {
			bad("%s is required", name)
		}
	}
	return errors.Join(errs...)
}

// Run runs the conformance cases on the client newClient builds, each as a
// parallel subtest with its own simulator.
func Run(t *testing.T, f Features, newClient NewClient) {
	t.Helper()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if newClient == nil {
		t.Fatal("vendorstest: run: newClient is nil")
	}
	s := &suite{f: f, newClient: newClient, vendor: demo(f.Vendor)}
	cases := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"a batch at the cap with every field, clears included, is applied exactly as sent", testApply},
		{"items over the cap are split within the caps, every field exactly once, and all calls are accepted", testSplit},
		{"a non-friend in a batch fails alone with the documented code while the others are applied", testPartial},
		{"a call over the QPS limit is a throttled whole-call error", testThrottle},
		{"transient vendor answers classify as retry", testTransient},
		{"a wrong secret is a whole-call error that is final and names no secret", testBadCredentials},
		{"every send makes exactly one HTTP request, whatever the answer", testOneAttempt},
		{"every send makes exactly one HTTP request over a real socket too", testOneAttemptSocket},
		{"a send returns promptly with the context's error when the context ends", testCancel},
		{"every attempt is signed afresh", testResign},
		{"a write overlapping another for the same account gets the conflict answer as retry", testConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s)
		})
	}
}

// demoVendor is what the suite knows about the simulator side of a vendor:
// the demo app, the secret, and how to configure QPS and wrong secrets.
type demoVendor struct {
	app    string
	secret string
	qps    func(cfg *vendorsim.Config, n int)
	wrong  func(cfg *vendorsim.Config, secret string)
}

func demo(v event.Vendor) demoVendor {
	switch v {
	case event.Tencent:
		return demoVendor{
			app:    strconv.Itoa(vendorsim.DemoTencentSDKAppID),
			secret: vendorsim.DemoTencentKey,
			qps:    func(cfg *vendorsim.Config, n int) { cfg.TencentQPS = n },
			wrong: func(cfg *vendorsim.Config, secret string) {
				cfg.Tencent[vendorsim.DemoTencentSDKAppID] = vendorsim.TencentApp{Key: secret, Admin: vendorsim.DemoTencentAdmin}
			},
		}
	case event.Volc:
		return demoVendor{
			app:    strconv.Itoa(vendorsim.DemoVolcAppID),
			secret: vendorsim.DemoVolcSecretKey,
			qps:    func(cfg *vendorsim.Config, n int) { cfg.VolcQPS = n },
			wrong: func(cfg *vendorsim.Config, secret string) {
				cfg.Volc[vendorsim.DemoVolcAccessKey] = vendorsim.VolcAccount{SecretKey: secret, AppIDs: []int64{vendorsim.DemoVolcAppID}}
			},
		}
	default:
		return demoVendor{
			app:    strconv.Itoa(vendorsim.DemoZegoAppID),
			secret: vendorsim.DemoZegoServerSecret,
			qps:    func(cfg *vendorsim.Config, n int) { cfg.ZegoQPS = n },
			wrong: func(cfg *vendorsim.Config, secret string) {
				cfg.Zego[vendorsim.DemoZegoAppID] = secret
			},
		}
	}
}
