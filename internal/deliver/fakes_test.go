package deliver

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

// memVersions is an in-memory Versions with max-CAS Raise.
type memVersions struct {
	mu       sync.Mutex
	v        map[jobs.Key]map[string]jobs.Version
	loadErr  error
	raiseErr error
	loads    int
	raises   [][]string    // fields of every Raise call
	noRecord bool          // do not record raises (benchmarks)
	delay    time.Duration // each Load takes this long
}

func newMemVersions() *memVersions { return &memVersions{v: map[jobs.Key]map[string]jobs.Version{}} }

func (m *memVersions) Load(_ context.Context, key jobs.Key, fields []string) ([]jobs.Version, error) {
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	out := make([]jobs.Version, len(fields))
	kv := m.v[key]
	for i, f := range fields {
		out[i] = kv[f]
	}
	return out, nil
}

func (m *memVersions) Raise(_ context.Context, key jobs.Key, fields []string, vs []jobs.Version) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.noRecord {
		m.raises = append(m.raises, slices.Clone(fields))
	}
	if m.raiseErr != nil {
		return m.raiseErr
	}
	kv := m.v[key]
	if kv == nil {
		kv = map[string]jobs.Version{}
		m.v[key] = kv
	}
	for i, f := range fields {
		if kv[f].Less(vs[i]) {
			kv[f] = vs[i]
		}
	}
	return nil
}

func (m *memVersions) set(key jobs.Key, field string, v jobs.Version) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v[key] == nil {
		m.v[key] = map[string]jobs.Version{}
	}
	m.v[key][field] = v
}

func (m *memVersions) get(key jobs.Key, field string) jobs.Version {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.v[key][field]
}

// fakeLimiter grants at once (or fails or blocks) and records what it saw.
type fakeLimiter struct {
	mu        sync.Mutex
	waits     []event.Lane
	budgets   []string
	throttled []throttle
	waitErr   error
	block     bool          // block until ctx is done
	delay     time.Duration // each Wait takes this long (a token further ahead)
}

type throttle struct {
	budget     string
	retryAfter time.Duration
}

func (l *fakeLimiter) Wait(ctx context.Context, budget string, lane event.Lane) error {
	l.mu.Lock()
	l.waits = append(l.waits, lane)
	l.budgets = append(l.budgets, budget)
	err, block, delay := l.waitErr, l.block, l.delay
	l.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (l *fakeLimiter) budgetsWaited() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.budgets)
}

func (l *fakeLimiter) Throttled(budget string, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.throttled = append(l.throttled, throttle{budget, retryAfter})
}

func (l *fakeLimiter) stats() (waits []event.Lane, throttled []throttle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.waits), slices.Clone(l.throttled)
}

// fakeSender splits by a cap and answers with a scripted function. It
// records every call and the most calls it saw at once.
type fakeSender struct {
	cap    int
	split  func(from string, items []vendors.Item) []vendors.Call // nil: chunk by cap
	answer func(n int, call vendors.Call) (vendors.Result, error) // n counts Sends from 0; nil: all OK
	delay  time.Duration                                          // each Send takes this long

	mu      sync.Mutex
	calls   []vendors.Call
	cur     int
	maxCur  int
	applied map[string]map[string]string // to → field → value, from OK items
}

const fakeBudget = "fake:1:update"

func (s *fakeSender) Vendor() string { return "fake" }

func (s *fakeSender) Split(from string, items []vendors.Item) []vendors.Call {
	if s.split != nil {
		return s.split(from, items)
	}
	var calls []vendors.Call
	for c := range slices.Chunk(items, max(s.cap, 1)) {
		calls = append(calls, vendors.Call{API: "update", Budget: fakeBudget, From: from, Items: c})
	}
	return calls
}

func (s *fakeSender) Send(ctx context.Context, call vendors.Call) (vendors.Result, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, cloneCall(call))
	s.cur++
	s.maxCur = max(s.maxCur, s.cur)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur--
		s.mu.Unlock()
	}()
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return vendors.Result{}, &vendors.Error{Vendor: "fake", API: call.API, Class: vendors.Retry, Err: ctx.Err()}
		}
	}
	res, err := vendors.Whole(len(call.Items), vendors.ItemResult{Class: vendors.OK, Code: "0"}), error(nil)
	if s.answer != nil {
		res, err = s.answer(n, call)
	}
	if err == nil {
		s.mu.Lock()
		if s.applied == nil {
			s.applied = map[string]map[string]string{}
		}
		for i, it := range call.Items {
			if i < len(res.Items) && res.Items[i].Class == vendors.OK {
				for f, v := range itemFields(it) {
					if s.applied[it.To] == nil {
						s.applied[it.To] = map[string]string{}
					}
					s.applied[it.To][f] = v
				}
			}
		}
		s.mu.Unlock()
	}
	return res, err
}

func (s *fakeSender) sent() []vendors.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func cloneCall(c vendors.Call) vendors.Call {
	items := make([]vendors.Item, len(c.Items))
	for i, it := range c.Items {
		items[i] = it
		if it.Remark != nil {
			items[i].Remark = event.Ptr(*it.Remark)
		}
		if it.Groups != nil {
			items[i].Groups = event.Ptr(slices.Clone(*it.Groups))
		}
		items[i].Attrs = maps.Clone(it.Attrs)
	}
	c.Items = items
	return c
}

// itemFields renders an item's fields as field name → value (groups joined
// with ",").
func itemFields(it vendors.Item) map[string]string {
	m := map[string]string{}
	if it.Remark != nil {
		m[event.FieldRemark] = *it.Remark
	}
	if it.Groups != nil {
		m[event.FieldGroups] = joinGroups(*it.Groups)
	}
	for k, v := range it.Attrs {
		m[event.AttrFieldPrefix+k] = v
	}
	return m
}

func joinGroups(g []string) string {
	s := ""
	for i, x := range g {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

var errBoom = errors.New("boom")

// value reads a counter or gauge (testutil would need another module).
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	n := 0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		n++
		switch {
		case pb.Counter != nil:
			sum += pb.Counter.GetValue()
		case pb.Gauge != nil:
			sum += pb.Gauge.GetValue()
		case pb.Histogram != nil:
			sum += float64(pb.Histogram.GetSampleCount())
		}
	}
	return sum
}
