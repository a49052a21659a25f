package vendorsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/friendsync/friendsync/event"
)

// API names, as used in budget names and Counters.
const (
	APITencentFriendUpdate = "friend_update"
	APIVolcUpdateFriend    = "UpdateFriend"
	APIZegoAlias           = "UpdateFriendsAlias"
	APIZegoAttributes      = "UpdateFriendAttributes"
)

var vendors = [...]event.Vendor{event.Tencent, event.Volc, event.Zego}

func vendorIndex(v event.Vendor) int {
	for i, x := range vendors {
		if x == v {
			return i
		}
	}
	return -1
}

// Sim is the vendor simulator. It is safe for concurrent use.
type Sim struct {
	cfg   Config
	log   *slog.Logger
	epoch time.Time
	store *store
	// budgets is built by New and read-only afterwards.
	budgets  map[string]*budget
	volcApps map[string]map[int64]bool
	stats    [len(vendors)]atomic.Pointer[vendorStats]
	faults   [len(vendors)]atomic.Pointer[faults]
	reqID    atomic.Uint64
	handler  http.Handler
}

// New validates cfg and returns a simulator with empty state.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Sim{
		cfg:      cfg,
		log:      cfg.Logger,
		epoch:    time.Now(),
		store:    newStore(cfg.MaxFriends),
		budgets:  map[string]*budget{},
		volcApps: map[string]map[int64]bool{},
	}
	for id := range cfg.Tencent {
		n := tencentBudget(id)
		s.budgets[n] = newBudget(n, cfg.TencentQPS)
	}
	for ak, acc := range cfg.Volc {
		n := volcBudget(ak)
		s.budgets[n] = newBudget(n, cfg.VolcQPS)
		s.volcApps[ak] = map[int64]bool{}
		for _, id := range acc.AppIDs {
			s.volcApps[ak][id] = true
		}
	}
	for id := range cfg.Zego {
		for _, api := range []string{APIZegoAlias, APIZegoAttributes} {
			n := zegoBudget(id, api)
			s.budgets[n] = newBudget(n, cfg.ZegoQPS)
		}
	}
	for i := range vendors {
		s.stats[i].Store(new(vendorStats))
	}
	for v, spec := range cfg.Faults {
		s.faults[vendorIndex(v)].Store(newFaults(spec, cfg.Now()))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/tencent/", s.serveTencent)
	mux.HandleFunc("/volc/", s.serveVolc)
	mux.HandleFunc("/zego/", s.serveZego)
	mux.HandleFunc("/admin/", s.serveAdmin)
	s.handler = mux
	return s, nil
}

func tencentBudget(id uint64) string { return "tencent:" + strconv.FormatUint(id, 10) }
func volcBudget(ak string) string    { return "volc:" + ak }
func zegoBudget(id uint32, api string) string {
	return "zego:" + strconv.FormatUint(uint64(id), 10) + ":" + api
}

// Handler serves the three vendor APIs and the admin API:
// /tencent/v4/sns/friend_update, /volc/, /zego/ and /admin/....
func (s *Sim) Handler() http.Handler { return s.handler }

// Friend returns the stored data of (vendor, app, from, to); app is the
// decimal SDKAppID / AppId. ok is false when nothing is stored.
func (s *Sim) Friend(vendor event.Vendor, app, from, to string) (Friend, bool) {
	return s.store.get(acctKey{vendor, app, from}, to)
}

// Friends returns up to limit stored friends of (vendor, app, from), and
// whether more exist.
func (s *Sim) Friends(vendor event.Vendor, app, from string, limit int) (map[string]Friend, bool) {
	return s.store.list(acctKey{vendor, app, from}, limit)
}

// AddFriends makes each of to a friend of from (one direction: from's
// friend list). It matters only with Config.RequireFriendship.
func (s *Sim) AddFriends(vendor event.Vendor, app, from string, to ...string) error {
	if vendorIndex(vendor) < 0 {
		return fmt.Errorf("vendorsim: add friends: unknown vendor %q", vendor)
	}
	if app == "" || from == "" {
		return fmt.Errorf("vendorsim: add friends: empty app or from")
	}
	s.store.addFriends(acctKey{vendor, app, from}, to)
	return nil
}

// Counters returns a snapshot of the counters.
func (s *Sim) Counters() Counters {
	c := Counters{
		Tencent:      s.stats[0].Load().snapshot(),
		Volc:         s.stats[1].Load().snapshot(),
		Zego:         s.stats[2].Load().snapshot(),
		StateEntries: s.store.entries.Load(),
		StateDropped: s.store.dropped.Load(),
	}
	for name, b := range s.budgets {
		bc := b.snapshot()
		switch name[:4] {
		case "tenc":
			c.Tencent.Budgets[name] = bc
		case "volc":
			c.Volc.Budgets[name] = bc
		case "zego":
			c.Zego.Budgets[name] = bc
		}
	}
	return c
}

// SetFaults installs spec for vendor, replacing the previous one; a zero
// FaultSpec removes all faults. The generator restarts from spec.Seed.
func (s *Sim) SetFaults(vendor event.Vendor, spec FaultSpec) error {
	if err := spec.validate(vendor); err != nil {
		return fmt.Errorf("vendorsim: set faults: %w", err)
	}
	s.faults[vendorIndex(vendor)].Store(newFaults(spec, s.cfg.Now()))
	return nil
}

// Faults returns the installed fault spec of vendor.
func (s *Sim) Faults(vendor event.Vendor) FaultSpec {
	i := vendorIndex(vendor)
	if i < 0 {
		return FaultSpec{}
	}
	if f := s.faults[i].Load(); f != nil {
		return f.spec
	}
	return FaultSpec{}
}

// Reset clears the stored state (friendships included), the counters and
// the QPS windows, and reinstalls the configured faults.
func (s *Sim) Reset() {
	s.store.reset()
	for i := range vendors {
		s.stats[i].Store(new(vendorStats))
		s.faults[i].Store(nil)
	}
	for v, spec := range s.cfg.Faults {
		s.faults[vendorIndex(v)].Store(newFaults(spec, s.cfg.Now()))
	}
	for _, b := range s.budgets {
		b.reset()
	}
}

func (s *Sim) st(v event.Vendor) *vendorStats { return s.stats[vendorIndex(v)].Load() }

func (s *Sim) requestID() string {
	return "sim-" + strconv.FormatUint(s.reqID.Add(1), 10)
}

// front runs what every vendor call goes through before its own checks:
// QPS accounting on b (nil when the call names no known budget), then the
// outage, latency, timeout and 5xx faults. done means the call has been
// answered (or abandoned); throttled means it is over its budget and must
// be answered with the vendor's QPS code.
func (s *Sim) front(w http.ResponseWriter, r *http.Request, v event.Vendor, b *budget) (throttled, done bool) {
	admitted := b.arriveNow(s.epoch)
	st := s.st(v)
	if f := s.faults[vendorIndex(v)].Load(); f != nil {
		// Read the body before any fault makes the handler wait: net/http
		// notices a client that went away only once the body is consumed,
		// so a hung handler over a real listener would never end.
		if body, err := s.readBody(w, r); err == nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if f.inOutage(s.cfg.Now()) {
			st.faults.Add(1)
			s.plain(w, v, http.StatusServiceUnavailable, "vendorsim: outage")
			return false, true
		}
		if d := f.latency(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				incr(&st.codes, "canceled")
				return false, true
			}
		}
		if f.chance(f.spec.TimeoutRate) {
			st.faults.Add(1)
			incr(&st.codes, "timeout")
			<-r.Context().Done()
			return false, true
		}
		if f.chance(f.spec.HTTP5xxRate) {
			st.faults.Add(1)
			s.plain(w, v, f.spec.HTTPStatus, "vendorsim: injected gateway failure")
			return false, true
		}
	}
	if !admitted {
		st.throttles.Add(1)
		return true, false
	}
	return false, false
}

// plain answers a bare HTTP status with a text body.
func (s *Sim) plain(w http.ResponseWriter, v event.Vendor, status int, msg string) {
	incr(&s.st(v).codes, "http_"+strconv.Itoa(status))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for the response types used here
		http.Error(w, "vendorsim: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// readBody reads the request body, bounded by Config.MaxBodyBytes.
func (s *Sim) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
}

// write applies changes for one account: it waits WriteTime (the vendor
// applying the call), then stores the changes.
func (s *Sim) write(k acctKey, changes []change, notFriendCode, notFriendMsg string) {
	started := time.Now()
	if s.cfg.WriteTime > 0 {
		time.Sleep(s.cfg.WriteTime)
	}
	st := s.st(k.vendor)
	applied := s.store.end(k, changes, s.cfg.RequireFriendship, notFriendCode, notFriendMsg)
	if s.cfg.OnWrite != nil {
		ended := time.Now()
		for i := range changes {
			c := &changes[i]
			s.cfg.OnWrite(Write{Vendor: k.vendor, App: k.app, From: k.from, To: c.to, Remark: c.remark,
				Groups: c.groups, Attrs: c.attrs, Fail: c.fail, Started: started, Ended: ended})
		}
	}
	st.applied.Add(int64(applied))
	for i := range changes {
		if changes[i].fail != "" {
			st.itemFailures.Add(1)
			incr(&st.itemCodes, changes[i].fail)
		}
	}
}

// itemFault draws an injected per-item failure for each change not
// already failed.
func (s *Sim) itemFaults(v event.Vendor, changes []change) {
	f := s.faults[vendorIndex(v)].Load()
	if f == nil || len(f.item.codes) == 0 {
		return
	}
	for i := range changes {
		if changes[i].fail != "" {
			continue
		}
		if code := f.itemCode(); code != "" {
			changes[i].fail, changes[i].msg = code, "vendorsim: injected item failure"
			s.st(v).faults.Add(1)
		}
	}
}

// wholeFault draws an injected whole-call error code, "" for none.
func (s *Sim) wholeFault(v event.Vendor) string {
	f := s.faults[vendorIndex(v)].Load()
	if f == nil {
		return ""
	}
	code := f.wholeCode()
	if code != "" {
		s.st(v).faults.Add(1)
	}
	return code
}

func (s *Sim) reject(ctx context.Context, v event.Vendor, app, code, reason string) {
	s.log.LogAttrs(ctx, slog.LevelInfo, "vendorsim: call rejected",
		slog.String("vendor", string(v)), slog.String("app", app),
		slog.String("code", code), slog.String("reason", reason))
}
