package vendorsim

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
)

// Counters is a snapshot of what the simulator saw since New or Reset.
type Counters struct {
	Tencent VendorCounters `json:"tencent"`
	Volc    VendorCounters `json:"volc"`
	Zego    VendorCounters `json:"zego"`
	// StateEntries is the number of stored (vendor, app, from, to) entries;
	// StateDropped counts entries not stored because of Config.MaxFriends.
	StateEntries int64 `json:"state_entries"`
	StateDropped int64 `json:"state_dropped"`
}

// Vendor returns the counters of v (zero for an unknown vendor).
func (c Counters) Vendor(v event.Vendor) VendorCounters {
	switch v {
	case event.Tencent:
		return c.Tencent
	case event.Volc:
		return c.Volc
	case event.Zego:
		return c.Zego
	}
	return VendorCounters{}
}

// VendorCounters are one vendor's counters.
type VendorCounters struct {
	// Calls counts every request received under the vendor's prefix.
	Calls int64 `json:"calls"`
	// Items counts items of calls that passed whole-call validation.
	Items int64 `json:"items"`
	// Applied counts items written to the state; ItemFailures items answered
	// with a per-item error.
	Applied      int64 `json:"applied"`
	ItemFailures int64 `json:"item_failures"`
	// Overlaps counts writes that arrived while another write for the same
	// account (vendor, app, from) was being applied, whatever the answer.
	Overlaps int64 `json:"overlaps"`
	// Conflicts counts calls answered with the vendor's write-conflict code
	// (Tencent 30008, Volcengine UPDATE_FREQUENT, ZEGO ZegoConflictCode).
	Conflicts int64 `json:"conflicts"`
	// Throttles counts calls answered with the vendor's QPS code.
	Throttles int64 `json:"throttles"`
	// SigFailures counts calls rejected by credential checks (signature,
	// expiry, clock skew, unknown key, not admin).
	SigFailures int64 `json:"sig_failures"`
	// Faults counts calls answered (or hung) by an injected fault.
	Faults int64 `json:"faults"`
	// Codes counts whole-call answers by code: "0" for success, the vendor
	// code otherwise, "http_<status>" for bare HTTP answers, "timeout" for
	// hung calls.
	Codes map[string]int64 `json:"codes"`
	// ItemCodes counts per-item failure codes.
	ItemCodes map[string]int64 `json:"item_codes"`
	// Budgets holds the QPS accounting per budget: "tencent:<sdkappid>",
	// "zego:<appid>:<api>", "volc:<access key>".
	Budgets map[string]BudgetCounters `json:"budgets"`
}

// BudgetCounters prove or disprove "no 1-second window over the budget".
type BudgetCounters struct {
	// Limit is the QPS limit (0 = unlimited).
	Limit int `json:"limit"`
	// Calls counts calls received for the budget; Throttled those answered
	// with the QPS code.
	Calls     int64 `json:"calls"`
	Throttled int64 `json:"throttled"`
	// MaxWindow is the largest number of calls received in any sliding
	// 1-second window (t-1s, t]. Saturated is set when more calls than the
	// window ring holds (65536, or 4 × Limit if larger) arrived within one
	// second; MaxWindow is then a lower bound.
	MaxWindow int  `json:"max_window"`
	Saturated bool `json:"saturated,omitempty"`
	// OverBudgetWindows counts calls that arrived while the window of
	// received calls already held Limit or more.
	OverBudgetWindows int64 `json:"over_budget_windows"`
	// PerSecond counts calls received per wall-clock second, for the most
	// recent 60 seconds with calls, oldest first.
	PerSecond []SecondCount `json:"per_second"`
}

// SecondCount is the number of calls received in one Unix second.
type SecondCount struct {
	Unix  int64 `json:"unix"`
	Calls int64 `json:"calls"`
}

// vendorStats are the live counters of one vendor.
type vendorStats struct {
	calls, items, applied, itemFailures atomic.Int64
	overlaps, conflicts, throttles      atomic.Int64
	sigFailures, faults                 atomic.Int64
	codes, itemCodes                    sync.Map // string → *atomic.Int64
}

func incr(m *sync.Map, code string) {
	if c, ok := m.Load(code); ok {
		c.(*atomic.Int64).Add(1)
		return
	}
	c, _ := m.LoadOrStore(code, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

func snapshotMap(m *sync.Map) map[string]int64 {
	out := map[string]int64{}
	m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (v *vendorStats) snapshot() VendorCounters {
	return VendorCounters{
		Calls: v.calls.Load(), Items: v.items.Load(), Applied: v.applied.Load(),
		ItemFailures: v.itemFailures.Load(), Overlaps: v.overlaps.Load(),
		Conflicts: v.conflicts.Load(), Throttles: v.throttles.Load(),
		SigFailures: v.sigFailures.Load(), Faults: v.faults.Load(),
		Codes: snapshotMap(&v.codes), ItemCodes: snapshotMap(&v.itemCodes),
		Budgets: map[string]BudgetCounters{},
	}
}

const (
	secRing      = 64 // per-second slots kept (60 reported)
	secReported  = 60
	minRecvRing  = 1 << 16
	initRecvRing = 256
	windowLength = int64(time.Second)
)

// budget is one QPS quota: a sliding window over admitted calls decides
// throttling, a sliding window over received calls measures MaxWindow.
type budget struct {
	name  string
	limit int

	mu sync.Mutex
	// adm is a ring of the arrival times (ns since the Sim's epoch) of the
	// last `limit` admitted calls.
	adm     []int64
	admHead int
	admN    int
	// recv is a ring (grown up to recvCap) of arrival times of calls
	// received within the last second.
	recv      []int64
	recvHead  int
	recvN     int
	recvCap   int
	calls     int64
	throttled int64
	over      int64
	maxWindow int
	saturated bool
	secs      [secRing]SecondCount
}

func newBudget(name string, limit int) *budget {
	b := &budget{name: name, limit: limit, recvCap: max(minRecvRing, 4*limit)}
	b.reset()
	return b
}

func (b *budget) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.adm = make([]int64, b.limit)
	b.admHead, b.admN = 0, 0
	b.recv = make([]int64, min(initRecvRing, b.recvCap))
	b.recvHead, b.recvN = 0, 0
	b.calls, b.throttled, b.over, b.maxWindow, b.saturated = 0, 0, 0, 0, false
	b.secs = [secRing]SecondCount{}
}

// arriveNow records a call received now and reports whether it is
// admitted under the limit. The clock is read under the lock, so calls
// enter the windows in the order of their times: a time read before
// waiting for the lock could be older than calls recorded meanwhile, and
// would then stay in the window of received calls too long (a window
// over the limit that never happened) and misplace the admission check.
func (b *budget) arriveNow(epoch time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	return b.arriveLocked(int64(now.Sub(epoch)), now.Unix())
}

// arrive records a call received at mono (ns since epoch) in wall-clock
// second unix and reports whether it is admitted under the limit. Calls
// must arrive in the order of mono.
func (b *budget) arrive(mono, unix int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.arriveLocked(mono, unix)
}

func (b *budget) arriveLocked(mono, unix int64) bool {
	b.calls++

	for b.recvN > 0 && mono-b.recv[b.recvHead] >= windowLength {
		b.recvHead = (b.recvHead + 1) % len(b.recv)
		b.recvN--
	}
	if b.limit > 0 && b.recvN >= b.limit {
		b.over++
	}
	if b.recvN == len(b.recv) {
		if len(b.recv) < b.recvCap {
			grown := make([]int64, min(2*len(b.recv), b.recvCap))
			for i := range b.recvN {
				grown[i] = b.recv[(b.recvHead+i)%len(b.recv)]
			}
			b.recv, b.recvHead = grown, 0
		} else {
			b.recvHead = (b.recvHead + 1) % len(b.recv)
			b.recvN--
			b.saturated = true
		}
	}
	b.recv[(b.recvHead+b.recvN)%len(b.recv)] = mono
	b.recvN++
	b.maxWindow = max(b.maxWindow, b.recvN)

	s := &b.secs[uint64(unix)%secRing]
	if s.Unix != unix {
		*s = SecondCount{Unix: unix}
	}
	s.Calls++

	if b.limit == 0 {
		return true
	}
	if b.admN < b.limit {
		b.adm[(b.admHead+b.admN)%b.limit] = mono
		b.admN++
		return true
	}
	if mono-b.adm[b.admHead] >= windowLength {
		b.adm[b.admHead] = mono
		b.admHead = (b.admHead + 1) % b.limit
		return true
	}
	b.throttled++
	return false
}

func (b *budget) snapshot() BudgetCounters {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := BudgetCounters{
		Limit: b.limit, Calls: b.calls, Throttled: b.throttled,
		MaxWindow: b.maxWindow, Saturated: b.saturated, OverBudgetWindows: b.over,
	}
	for _, s := range b.secs {
		if s.Calls > 0 {
			out.PerSecond = append(out.PerSecond, s)
		}
	}
	slices.SortFunc(out.PerSecond, func(a, b SecondCount) int { return int(a.Unix - b.Unix) })
	if len(out.PerSecond) > secReported {
		out.PerSecond = out.PerSecond[len(out.PerSecond)-secReported:]
	}
	return out
}
