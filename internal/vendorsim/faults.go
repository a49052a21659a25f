package vendorsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
)

// FaultSpec describes the faults injected into one vendor's calls. Every
// random choice draws from a generator seeded with Seed, so a sequence of
// calls meets the same faults on every run. JSON field names are the tags
// (durations as Go duration strings, e.g. "50ms").
type FaultSpec struct {
	// ErrorRates maps a vendor code to the probability that a call is
	// answered with it as a whole-call error (after authentication, before
	// anything is applied): Tencent "30006" (ActionStatus FAIL), Volcengine
	// "InternalError" (ResponseMetadata.Error, HTTP status by code class),
	// ZEGO "660000001" (Code). The rates must sum to at most 1.
	ErrorRates map[string]float64 `json:"error_rates,omitempty"`
	// ItemErrorRates maps a vendor code to the probability that one item
	// fails with it (not applied): Tencent ResultItem code, Volcengine
	// FailedInfos Code (e.g. "INTERNAL_ERROR"), ZEGO ErrorList / FailKey
	// SubCode. The rates must sum to at most 1.
	ItemErrorRates map[string]float64 `json:"item_error_rates,omitempty"`
	// HTTP5xxRate is the probability of an HTTP HTTPStatus answer with a
	// plain-text body (a gateway failure), before authentication.
	HTTP5xxRate float64 `json:"http_5xx_rate,omitempty"`
	// HTTPStatus is the status of those answers (default 502).
	HTTPStatus int `json:"http_status,omitempty"`
	// Latency is added to every call, plus a uniform random part in
	// [0, Jitter).
	Latency Duration `json:"latency,omitempty"`
	Jitter  Duration `json:"jitter,omitempty"`
	// TimeoutRate is the probability that a call hangs until its request
	// context ends and is never answered nor applied.
	TimeoutRate float64 `json:"timeout_rate,omitempty"`
	// Outages are windows during which every call is answered HTTP 503.
	Outages []Outage `json:"outages,omitempty"`
	// OutageFor, when set, adds an outage from now (Config.Now when the spec
	// is installed) for that long; installed specs hold it as an Outage.
	OutageFor Duration `json:"outage_for,omitempty"`
	// Seed seeds the generator (0 is a valid seed).
	Seed uint64 `json:"seed,omitempty"`
}

// Outage is a window [From, Until) of wall-clock time (Config.Now); a zero
// From means "since ever".
type Outage struct {
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s"); it also reads a number of nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("vendorsim: duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("vendorsim: duration: want a string like \"50ms\" or integer nanoseconds")
	}
	*d = Duration(n)
	return nil
}

func (f FaultSpec) validate(v event.Vendor) error {
	if !v.Valid() {
		return fmt.Errorf("unknown vendor %q", v)
	}
	prob := func(name string, p float64) error {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("%s: %s %v outside [0,1]", v, name, p)
		}
		return nil
	}
	for _, rates := range []struct {
		name string
		m    map[string]float64
	}{{"error_rates", f.ErrorRates}, {"item_error_rates", f.ItemErrorRates}} {
		sum := 0.0
		for code, p := range rates.m {
			if err := prob(rates.name+"["+code+"]", p); err != nil {
				return err
			}
			if code == "" || code == "0" {
				return fmt.Errorf("%s: %s: code %q is not an error", v, rates.name, code)
			}
			if v != event.Volc {
				if _, err := strconv.Atoi(code); err != nil {
					return fmt.Errorf("%s: %s: code %q is not a number", v, rates.name, code)
				}
			}
			sum += p
		}
		if sum > 1+1e-9 {
			return fmt.Errorf("%s: %s sum to %v > 1", v, rates.name, sum)
		}
	}
	for name, p := range map[string]float64{"http_5xx_rate": f.HTTP5xxRate, "timeout_rate": f.TimeoutRate} {
		if err := prob(name, p); err != nil {
			return err
		}
	}
	if f.HTTPStatus != 0 && (f.HTTPStatus < 500 || f.HTTPStatus > 599) {
		return fmt.Errorf("%s: http_status %d is not 5xx", v, f.HTTPStatus)
	}
	if f.Latency < 0 || f.Jitter < 0 || f.OutageFor < 0 {
		return fmt.Errorf("%s: negative latency, jitter or outage_for", v)
	}
	for _, o := range f.Outages {
		if o.Until.IsZero() || (!o.From.IsZero() && !o.From.Before(o.Until)) {
			return fmt.Errorf("%s: outage %v..%v is empty", v, o.From, o.Until)
		}
	}
	return nil
}

// rated is a cumulative table for drawing one code.
type rated struct {
	codes []string
	cum   []float64
}

func newRated(m map[string]float64) rated {
	var r rated
	sum := 0.0
	for _, code := range slices.Sorted(maps.Keys(m)) {
		if m[code] <= 0 {
			continue
		}
		sum += m[code]
		r.codes = append(r.codes, code)
		r.cum = append(r.cum, sum)
	}
	return r
}

func (r rated) pick(x float64) string {
	for i, c := range r.cum {
		if x < c {
			return r.codes[i]
		}
	}
	return ""
}

// faults is an installed FaultSpec with its generator.
type faults struct {
	spec  FaultSpec
	whole rated
	item  rated
	mu    sync.Mutex
	rng   *rand.Rand
}

func newFaults(spec FaultSpec, now time.Time) *faults {
	if spec.OutageFor > 0 {
		spec.Outages = append(slices.Clone(spec.Outages), Outage{From: now, Until: now.Add(time.Duration(spec.OutageFor))})
		spec.OutageFor = 0
	}
	if spec.HTTPStatus == 0 {
		spec.HTTPStatus = http.StatusBadGateway
	}
	return &faults{
		spec:  spec,
		whole: newRated(spec.ErrorRates),
		item:  newRated(spec.ItemErrorRates),
		rng:   rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15)),
	}
}

func (f *faults) float() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64()
}

func (f *faults) inOutage(now time.Time) bool {
	for _, o := range f.spec.Outages {
		if (o.From.IsZero() || !now.Before(o.From)) && now.Before(o.Until) {
			return true
		}
	}
	return false
}

func (f *faults) latency() time.Duration {
	d := time.Duration(f.spec.Latency)
	if f.spec.Jitter > 0 {
		f.mu.Lock()
		d += time.Duration(f.rng.Int64N(int64(f.spec.Jitter)))
		f.mu.Unlock()
	}
	return d
}

func (f *faults) chance(p float64) bool {
	return p > 0 && f.float() < p
}

// wholeCode draws the whole-call error code, "" for none.
func (f *faults) wholeCode() string {
	if len(f.whole.codes) == 0 {
		return ""
	}
	return f.whole.pick(f.float())
}

// itemCode draws one item's error code, "" for none.
func (f *faults) itemCode() string {
	if f == nil || len(f.item.codes) == 0 {
		return ""
	}
	return f.item.pick(f.float())
}
