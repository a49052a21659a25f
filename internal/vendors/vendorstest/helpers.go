package vendorstest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendors"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

type suite struct {
	f         Features
	newClient NewClient
	vendor    demoVendor
}

// env is one case's simulator and client.
type env struct {
	s   *suite
	sim *vendorsim.Sim
	c   Client
	rec *recorder
}

// start builds a simulator (demo credentials, no QPS limit, then
// Features.SimConfig, then opts) and a client reaching it in memory. Call it
// inside the synctest bubble the case runs in, so that the simulator's and
// the client's clocks are the bubble's.
func (s *suite) start(t *testing.T, opts ...func(*vendorsim.Config)) *env {
	t.Helper()
	sim := s.newSim(t, opts...)
	return s.connect(t, sim, "http://sim.invalid/"+string(s.f.Vendor), sim.Transport())
}

func (s *suite) newSim(t *testing.T, opts ...func(*vendorsim.Config)) *vendorsim.Sim {
	t.Helper()
	cfg := vendorsim.DemoConfig()
	s.vendor.qps(&cfg, -1)
	if s.f.SimConfig != nil {
		s.f.SimConfig(&cfg)
	}
	for _, o := range opts {
		o(&cfg)
	}
	sim, err := vendorsim.New(cfg)
	if err != nil {
		t.Fatalf("vendorsim.New: %v", err)
	}
	return sim
}

func (s *suite) connect(t *testing.T, sim *vendorsim.Sim, baseURL string, next http.RoundTripper) *env {
	t.Helper()
	rec := &recorder{next: next}
	c := s.newClient(t, baseURL, &http.Client{Transport: rec}, sim)
	if c == nil {
		t.Fatal("newClient returned nil")
	}
	if got := c.Vendor(); got != string(s.f.Vendor) {
		t.Fatalf("Vendor() = %q, want %q", got, s.f.Vendor)
	}
	return &env{s: s, sim: sim, c: c, rec: rec}
}

// Simulator options.

func (s *suite) withQPS(n int) func(*vendorsim.Config) {
	return func(cfg *vendorsim.Config) { s.vendor.qps(cfg, n) }
}

func (s *suite) withFaults(spec vendorsim.FaultSpec) func(*vendorsim.Config) {
	return func(cfg *vendorsim.Config) {
		if cfg.Faults == nil {
			cfg.Faults = map[event.Vendor]vendorsim.FaultSpec{}
		}
		cfg.Faults[s.f.Vendor] = spec
	}
}

func (s *suite) withSecret(secret string) func(*vendorsim.Config) {
	return func(cfg *vendorsim.Config) { s.vendor.wrong(cfg, secret) }
}

// recorder is the client's RoundTripper: it counts every request and keeps
// its URL and headers (the signing material), then passes it on.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	u := *req.URL
	kept := &http.Request{Method: req.Method, URL: &u, Host: req.Host, Header: req.Header.Clone()}
	r.mu.Lock()
	r.reqs = append(r.reqs, kept)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// calls is the number of requests the simulator received for the vendor.
func (e *env) calls() int64 { return e.sim.Counters().Vendor(e.s.f.Vendor).Calls }

func (e *env) counters() vendorsim.VendorCounters { return e.sim.Counters().Vendor(e.s.f.Vendor) }

// friend reads the simulator's stored data of (from, to).
func (e *env) friend(from string) func(to string) (vendorsim.Friend, bool) {
	return func(to string) (vendorsim.Friend, bool) {
		return e.sim.Friend(e.s.f.Vendor, e.s.vendor.app, from, to)
	}
}

// secrets are the values no error or message may hold: the demo secret,
// extra ones, and the credentials of every request sent so far.
func (e *env) secrets(extra ...string) []string {
	out := append([]string{e.s.vendor.secret}, extra...)
	for _, r := range e.rec.requests() {
		out = append(out, e.s.f.Credentials(r)...)
	}
	return out
}

// leaks returns a description of every secret found in text.
func leaks(text string, secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(text, s) {
			out = append(out, fmt.Sprintf("a %d-byte secret", len(s)))
		}
	}
	return out
}

// sendAll sends every call once and returns the item results by Ref; a
// whole-call error or a result of the wrong length fails the test.
func (e *env) sendAll(t *testing.T, ctx context.Context, calls []vendors.Call) map[int][]vendors.ItemResult {
	t.Helper()
	out := map[int][]vendors.ItemResult{}
	for i, call := range calls {
		res, err := e.c.Send(ctx, call)
		if err != nil {
			t.Fatalf("call %d (%s, %d items): whole-call error: %v", i, call.API, len(call.Items), err)
		}
		if len(res.Items) != len(call.Items) {
			t.Fatalf("call %d (%s): %d results for %d items", i, call.API, len(res.Items), len(call.Items))
		}
		for j, it := range call.Items {
			out[it.Ref] = append(out[it.Ref], res.Items[j])
		}
	}
	return out
}

// requireAllOK fails unless every item has at least one result and all its
// results are OK.
func requireAllOK(t *testing.T, items []vendors.Item, results map[int][]vendors.ItemResult) {
	t.Helper()
	var problems []string
	for _, it := range items {
		rs := results[it.Ref]
		if len(rs) == 0 {
			problems = append(problems, fmt.Sprintf("item ref %d (to %s): no result", it.Ref, it.To))
		}
		for _, r := range rs {
			if r.Class != vendors.OK {
				problems = append(problems, fmt.Sprintf("item ref %d (to %s): %s code %q %q, want ok", it.Ref, it.To, r.Class, r.Code, r.Message))
			}
		}
	}
	report(t, "results", problems)
}

// Items.

// ref is the Ref the suite gives the i-th item: not its index, so a client
// that renumbers items is caught.
func ref(i int) int { return 7*i + 3 }

func ptr[T any](v T) *T { return &v }

// fullItem returns item i of a round: round 1 sets every supported field;
// round 2 clears some fields, changes some and leaves some unchanged:
//
//	i%3 == 0: remark "", groups [], attr 0 "", attr 1 changed
//	i%3 == 1: remark and groups changed, attr 0 changed, attr 1 unchanged
//	i%3 == 2: remark and groups unchanged, attr 1 ""
//
// ok is false when the item would carry no field.
func (s *suite) fullItem(i, round int) (vendors.Item, bool) {
	f := s.f
	it := vendors.Item{Ref: ref(i), To: f.ID(1 + i)}
	var remark *string
	var groups *[]string
	attrs := map[string]string{}
	switch {
	case round == 1:
		remark = ptr(fmt.Sprintf("remark-%d", i))
		groups = &[]string{"group-a", fmt.Sprintf("group-%d", i%5)}
		if f.Attrs {
			attrs[f.AttrKey(0)] = fmt.Sprintf("v1-%d", i)
			attrs[f.AttrKey(1)] = fmt.Sprintf("w1-%d", i)
		}
	case i%3 == 0:
		remark = ptr("")
		groups = &[]string{}
		if f.Attrs {
			attrs[f.AttrKey(0)] = ""
			attrs[f.AttrKey(1)] = fmt.Sprintf("w2-%d", i)
		}
	case i%3 == 1:
		remark = ptr(fmt.Sprintf("remark2-%d", i))
		groups = &[]string{"group-b"}
		if f.Attrs {
			attrs[f.AttrKey(0)] = fmt.Sprintf("v2-%d", i)
		}
	default:
		if f.Attrs {
			attrs[f.AttrKey(1)] = ""
		}
	}
	if f.Remark {
		it.Remark = remark
	}
	if f.Groups {
		it.Groups = groups
	}
	if f.Attrs && len(attrs) > 0 {
		it.Attrs = attrs
	}
	return it, it.Remark != nil || it.Groups != nil || it.Attrs != nil
}

// batchItem is item i with a remark only, or with one attribute only when
// the vendor has no remarks: it fits the BatchAPI.
func (s *suite) batchItem(i int) vendors.Item {
	it := vendors.Item{Ref: ref(i), To: s.f.ID(1 + i)}
	if s.f.Remark {
		it.Remark = ptr(fmt.Sprintf("remark-%d", i))
	} else {
		it.Attrs = map[string]string{s.f.AttrKey(0): fmt.Sprintf("v-%d", i)}
	}
	return it
}

// oneCall splits items that fit one BatchAPI call and returns that call.
func (e *env) oneCall(t *testing.T, from string, items ...vendors.Item) vendors.Call {
	t.Helper()
	calls := e.c.Split(from, items)
	if len(calls) != 1 || calls[0].API != e.s.f.BatchAPI || len(calls[0].Items) != len(items) {
		t.Fatalf("Split of %d batch items gave %s, want one %s call with all of them", len(items), describeCalls(calls), e.s.f.BatchAPI)
	}
	return calls[0]
}

func describeCalls(calls []vendors.Call) string {
	parts := make([]string, len(calls))
	for i, c := range calls {
		parts[i] = fmt.Sprintf("%s×%d", c.API, len(c.Items))
	}
	return fmt.Sprintf("%d calls [%s]", len(calls), strings.Join(parts, " "))
}

// The expected state.

// model is the friend data the vendor should hold per To, built by applying
// items with the field semantics of package vendors.
type model map[string]vendorsim.Friend

func (m model) apply(items ...vendors.Item) {
	for _, it := range items {
		f := m[it.To]
		if it.Remark != nil {
			f.Remark = *it.Remark
		}
		if it.Groups != nil {
			f.Groups = slices.Clone(*it.Groups)
		}
		for k, v := range it.Attrs {
			if f.Attrs == nil {
				f.Attrs = map[string]string{}
			}
			if v == "" {
				delete(f.Attrs, k)
			} else {
				f.Attrs[k] = v
			}
		}
		m[it.To] = f
	}
}

// diffState compares the stored friends with m (Remark, Groups and Attrs;
// nil and empty are equal) and returns one line per difference.
func diffState(m model, stored func(to string) (vendorsim.Friend, bool)) []string {
	var out []string
	for _, to := range slices.Sorted(maps.Keys(m)) {
		want := m[to]
		got, ok := stored(to)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("to %s: nothing stored, want %s", to, showFriend(want)))
		case got.Remark != want.Remark || !slices.Equal(got.Groups, want.Groups) || !maps.Equal(got.Attrs, want.Attrs):
			out = append(out, fmt.Sprintf("to %s: stored %s, want %s", to, showFriend(got), showFriend(want)))
		}
	}
	return out
}

func showFriend(f vendorsim.Friend) string {
	return fmt.Sprintf("{remark %q groups %q attrs %v}", f.Remark, f.Groups, f.Attrs)
}

// Split coverage.

// fieldsOf lists an item's fields with their values as text, named like
// event.(*Event).Fields: "remark", "groups", "attr:<key>".
func fieldsOf(it vendors.Item) map[string]string {
	out := map[string]string{}
	if it.Remark != nil {
		out["remark"] = *it.Remark
	}
	if it.Groups != nil {
		out["groups"] = fmt.Sprintf("%q", *it.Groups)
	}
	for k, v := range it.Attrs {
		out["attr:"+k] = v
	}
	return out
}

// checkSplit returns every way calls fail to be a faithful split of items
// (whose Refs are distinct) for from under the caps of f.
func checkSplit(f Features, from string, items []vendors.Item, calls []vendors.Call) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	byRef := make(map[int]vendors.Item, len(items))
	for _, it := range items {
		byRef[it.Ref] = it
	}
	seen := map[int]map[string]int{} // ref → field → times covered
	for ci, c := range calls {
		caps, ok := f.APIs[c.API]
		switch {
		case !ok:
			bad("call %d: API %q is not one of the vendor's", ci, c.API)
		case len(c.Items) == 0 || len(c.Items) > caps.MaxItems:
			bad("call %d (%s): %d items, want 1..%d", ci, c.API, len(c.Items), caps.MaxItems)
		}
		if c.From != from {
			bad("call %d: From %q, want %q", ci, c.From, from)
		}
		if c.Budget == "" {
			bad("call %d: empty Budget", ci)
		}
		attrBytes := 0
		for _, part := range c.Items {
			in, ok := byRef[part.Ref]
			if !ok {
				bad("call %d: item with unknown Ref %d", ci, part.Ref)
				continue
			}
			if part.To != in.To {
				bad("call %d: Ref %d carries To %q, want %q", ci, part.Ref, part.To, in.To)
			}
			if caps.MaxAttrs > 0 && len(part.Attrs) > caps.MaxAttrs {
				bad("call %d (%s): Ref %d carries %d attributes, cap %d", ci, c.API, part.Ref, len(part.Attrs), caps.MaxAttrs)
			}
			for k, v := range part.Attrs {
				attrBytes += len(k) + len(v)
			}
			want := fieldsOf(in)
			if seen[part.Ref] == nil {
				seen[part.Ref] = map[string]int{}
			}
			for name, v := range fieldsOf(part) {
				seen[part.Ref][name]++
				if w, ok := want[name]; !ok {
					bad("call %d: Ref %d carries field %s the item does not have", ci, part.Ref, name)
				} else if v != w {
					bad("call %d: Ref %d field %s is %q, want %q", ci, part.Ref, name, v, w)
				}
			}
		}
		if caps.MaxAttrBytes > 0 && attrBytes > caps.MaxAttrBytes {
			bad("call %d (%s): %d bytes of attribute keys and values, cap %d", ci, c.API, attrBytes, caps.MaxAttrBytes)
		}
	}
	for _, it := range items {
		for _, name := range slices.Sorted(maps.Keys(fieldsOf(it))) {
			if n := seen[it.Ref][name]; n != 1 {
				bad("Ref %d field %s is carried %d times, want once", it.Ref, name, n)
			}
		}
	}
	return out
}
