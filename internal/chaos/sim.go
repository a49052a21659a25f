package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// The simulated vendor accounts: two Tencent SDKAppIDs (each its own
// 200 calls/s quota), one Volcengine account, one ZEGO AppID. The
// credentials are made up and only ever shown to the simulator; the
// workers read them from environment variables named in the profiles.
const (
	appT1   = "t1"
	appT2   = "t2"
	appVolc = "rtc"
	appZego = "zim"

	sdkT1        = 1400000801
	sdkT2        = 1400000802
	tencentKey   = "fschaos-tencent-key-0123456789abcdef0123456789abcdef"
	tencentAdmin = "administrator"
	volcAK       = "AKLTfschaosAccessKey01"
	volcSK       = "fschaos-volc-secret-key"
	volcAppID    = 616161
	zegoAppID    = 31341
	zegoSecret   = "00112233445566778899aabbccddeeff"

	// Volcengine documents no QPS: the limiter's rate and burst, and the
	// simulator's limit (as in the worker proofs).
	volcRate  = 300
	volcBurst = 10
	volcLimit = 330

	// vendorTimeout is the profiles' call timeout: short so that hung calls
	// cost little, long enough for a loaded machine's stalls.
	vendorTimeout = 1500 * time.Millisecond
)

// secretEnv are the variables the profiles file names for the secrets.
var secretEnv = map[string]string{
	"FSCHAOS_TENCENT_KEY": tencentKey,
	"FSCHAOS_VOLC_SECRET": volcSK,
	"FSCHAOS_ZEGO_SECRET": zegoSecret,
}

// apps are the four apps with their vendors and the simulator's app ids.
var apps = prooftest.Apps{
	{Name: appT1, Vendor: event.Tencent, SimID: strconv.Itoa(sdkT1)},
	{Name: appT2, Vendor: event.Tencent, SimID: strconv.Itoa(sdkT2)},
	{Name: appVolc, Vendor: event.Volc, SimID: strconv.Itoa(volcAppID)},
	{Name: appZego, Vendor: event.Zego, SimID: strconv.Itoa(zegoAppID)},
}

var allVendors = []event.Vendor{event.Tencent, event.Volc, event.Zego}

// tencentCustomKeys are the custom attribute keys "configured in the
// console"; any other key is refused per item (30001), the vendor poison.
// They are the Tencent keys the workload writes.
var tencentCustomKeys = prooftest.AttrKeys(event.Tencent)

// newSim is the simulator of the four apps with the documented QPS limits.
func newSim() (*vendorsim.Sim, error) {
	cfg := vendorsim.Config{
		Tencent: map[uint64]vendorsim.TencentApp{
			sdkT1: {Key: tencentKey, Admin: tencentAdmin},
			sdkT2: {Key: tencentKey, Admin: tencentAdmin},
		},
		Volc:    map[string]vendorsim.VolcAccount{volcAK: {SecretKey: volcSK, AppIDs: []int64{volcAppID}}},
		Zego:    map[uint32]string{zegoAppID: zegoSecret},
		VolcQPS: volcLimit,
	}
	cfg.Limits.TencentCustomKeys = tencentCustomKeys
	sim, err := vendorsim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("chaos: simulator: %w", err)
	}
	return sim, nil
}

// profilesYAML is the workers' profiles file, every vendor under base.
// Tencent and ZEGO keep the worker's default budgets (180 + 10, 17 + 2).
func profilesYAML(base string) string {
	return fmt.Sprintf(`apps:
  %[1]s:
    vendor: tencent
    timeout: %[5]s
    tencent: {base_url: "%[6]s/tencent", sdkappid: %[7]d, identifier: %[9]s, key: {env: FSCHAOS_TENCENT_KEY}}
  %[2]s:
    vendor: tencent
    timeout: %[5]s
    tencent: {base_url: "%[6]s/tencent", sdkappid: %[8]d, identifier: %[9]s, key: {env: FSCHAOS_TENCENT_KEY}}
  %[3]s:
    vendor: volc
    timeout: %[5]s
    volc: {base_url: "%[6]s/volc", access_key: %[10]s, app_id: %[11]d, send_alias: true, secret_key: {env: FSCHAOS_VOLC_SECRET}}
    budget: {rate: %[12]d, burst: %[13]d}
  %[4]s:
    vendor: zego
    timeout: %[5]s
    zego: {base_url: "%[6]s/zego", app_id: %[14]d, server_secret: {env: FSCHAOS_ZEGO_SECRET}}
`, appT1, appT2, appVolc, appZego, vendorTimeout, base, sdkT1, sdkT2, tencentAdmin, volcAK, volcAppID,
		volcRate, volcBurst, zegoAppID)
}

// baseFaults slow every call a little, so that workers have batches in
// flight most of the time and a kill lands mid-batch.
var baseFaults = vendorsim.FaultSpec{
	Latency: vendorsim.Duration(10 * time.Millisecond),
	Jitter:  vendorsim.Duration(20 * time.Millisecond),
}

// faultBoard installs the merge of the active fault phases (and the base
// latency) into the simulator; phases may overlap.
type faultBoard struct {
	sim    *vendorsim.Sim
	seed   uint64
	mu     sync.Mutex
	gen    uint64
	active map[string]map[event.Vendor]vendorsim.FaultSpec
}

func newFaultBoard(sim *vendorsim.Sim, seed uint64) (*faultBoard, error) {
	b := &faultBoard{sim: sim, seed: seed, active: map[string]map[event.Vendor]vendorsim.FaultSpec{}}
	return b, b.apply()
}

// set adds (or replaces) the named phase's specs.
func (b *faultBoard) set(name string, specs map[event.Vendor]vendorsim.FaultSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active[name] = specs
	return b.apply()
}

// clear removes the named phase.
func (b *faultBoard) clear(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.active, name)
	return b.apply()
}

func (b *faultBoard) apply() error {
	b.gen++
	for i, v := range allVendors {
		specs := []vendorsim.FaultSpec{baseFaults}
		for _, name := range slices.Sorted(maps.Keys(b.active)) {
			if s, ok := b.active[name][v]; ok {
				specs = append(specs, s)
			}
		}
		spec := mergeFaults(specs...)
		spec.Seed = b.seed*1_000_003 + b.gen*31 + uint64(i)
		if err := b.sim.SetFaults(v, spec); err != nil {
			return fmt.Errorf("chaos: faults: %w", err)
		}
	}
	return nil
}

// mergeFaults combines fault specs as independent faults: code rates add
// (scaled down to sum to 1 if they exceed it), 5xx and timeout chances
// combine as independent draws, the longest latency and jitter win, and
// outages are all kept.
func mergeFaults(specs ...vendorsim.FaultSpec) vendorsim.FaultSpec {
	var out vendorsim.FaultSpec
	addRates := func(dst *map[string]float64, src map[string]float64) {
		for code, p := range src {
			if *dst == nil {
				*dst = map[string]float64{}
			}
			(*dst)[code] += p
		}
	}
	either := func(a, b float64) float64 { return 1 - (1-a)*(1-b) }
	for _, s := range specs {
		addRates(&out.ErrorRates, s.ErrorRates)
		addRates(&out.ItemErrorRates, s.ItemErrorRates)
		out.HTTP5xxRate = either(out.HTTP5xxRate, s.HTTP5xxRate)
		out.TimeoutRate = either(out.TimeoutRate, s.TimeoutRate)
		if out.HTTPStatus == 0 {
			out.HTTPStatus = s.HTTPStatus
		}
		out.Latency = max(out.Latency, s.Latency)
		out.Jitter = max(out.Jitter, s.Jitter)
		out.Outages = append(out.Outages, s.Outages...)
	}
	for _, m := range []map[string]float64{out.ErrorRates, out.ItemErrorRates} {
		sum := 0.0
		for _, p := range m {
			sum += p
		}
		if sum > 1 {
			for code := range m {
				m[code] /= sum
			}
		}
	}
	return out
}

// The phases' fault specs.

func faultSpecs(rate float64) map[event.Vendor]vendorsim.FaultSpec {
	s := vendorsim.FaultSpec{HTTP5xxRate: rate / 2, TimeoutRate: rate / 2, HTTPStatus: 502}
	return map[event.Vendor]vendorsim.FaultSpec{event.Tencent: s, event.Volc: s, event.Zego: s}
}

func outageSpecs(v event.Vendor, from time.Time, d time.Duration) map[event.Vendor]vendorsim.FaultSpec {
	return map[event.Vendor]vendorsim.FaultSpec{v: {Outages: []vendorsim.Outage{{From: from, Until: from.Add(d)}}}}
}

// Storm codes: write conflicts and throttles, whole-call and per item.
// Tencent 30008 and 60007 (the simulator's own QPS answer is 60007 too:
// Counters.Throttles counts those apart), Volcengine UPDATE_FREQUENT per
// item and FlowLimitExceeded whole-call, ZEGO 660300005.
const (
	codeTencentConflict = "30008"
	codeTencentThrottle = "60007"
	codeVolcConflict    = "UPDATE_FREQUENT"
	codeVolcThrottle    = "FlowLimitExceeded.QPSOverLimit"
	codeZegoThrottle    = "660300005"
)

func stormSpecs() map[event.Vendor]vendorsim.FaultSpec {
	return map[event.Vendor]vendorsim.FaultSpec{
		event.Tencent: {
			ErrorRates:     map[string]float64{codeTencentConflict: 0.25, codeTencentThrottle: 0.10},
			ItemErrorRates: map[string]float64{codeTencentConflict: 0.10},
		},
		event.Volc: {
			ErrorRates:     map[string]float64{codeVolcThrottle: 0.10},
			ItemErrorRates: map[string]float64{codeVolcConflict: 0.20},
		},
		event.Zego: {
			ErrorRates: map[string]float64{codeZegoThrottle: 0.30},
		},
	}
}
