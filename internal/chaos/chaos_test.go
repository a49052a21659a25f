package chaos

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/versions"
)

// TestReliabilityShort is the CI-sized run of the suite: three cmd/worker
// subprocesses, ≥10 kill -9s, a NATS restart, 5 s of Redis unreachable, a
// 5 s Volcengine outage, 20% 5xx and timeouts, a 30008 and throttle storm
// and a burst, on the run's own NATS, Redis and simulator. It fails on any
// broken invariant and prints the report.
func TestReliabilityShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildWorker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	rep, err := Run(ctx, Options{Short: true, WorkerBin: bin, WorkDir: dir,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, logs.String())
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\nreport:\n%s", logs.String(), md.String())
	for _, f := range rep.Failures() {
		t.Errorf("invariant broken: %s", f)
	}
	if len(rep.Kills) < 10 {
		t.Errorf("%d kills, want ≥ 10", len(rep.Kills))
	}
	if rep.Verdict.Fields == 0 || rep.Verdict.Poison != 4 {
		t.Errorf("verdict checked %d fields and %d poison events, want > 0 and 4", rep.Verdict.Fields, rep.Verdict.Poison)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeState is a simulator state for check.
type fakeState map[[3]string]vendorsim.Friend

func (f fakeState) get(app, from, to string) (vendorsim.Friend, bool) {
	fr, ok := f[[3]string{app, from, to}]
	return fr, ok
}

// applyAll is the state a correct cluster leaves: every non-poison event
// applied in version order, except those in skip.
func applyAll(w *workload, skip map[int]bool) fakeState {
	st := fakeState{}
	for k, idx := range w.histories() {
		key := [3]string{k.app, k.from, k.to}
		f := st[key]
		for _, i := range idx {
			if skip[i] {
				continue
			}
			f = setField(f, k.field, w.valueOf(i, k.field))
		}
		st[key] = f
	}
	return st
}

// setField sets one field of f with the simulator's semantics.
func setField(f vendorsim.Friend, field, val string) vendorsim.Friend {
	switch {
	case field == event.FieldRemark:
		f.Remark = val
	case field == event.FieldGroups:
		f.Groups = nil
		if val != "" {
			f.Groups = strings.Split(val, "\x1f")
		}
	default:
		attrs := map[string]string{}
		for k, v := range f.Attrs {
			attrs[k] = v
		}
		attr := strings.TrimPrefix(field, event.AttrFieldPrefix)
		if val == "" {
			delete(attrs, attr)
		} else {
			attrs[attr] = val
		}
		f.Attrs = attrs
	}
	return f
}

func poisonLetters(w *workload) []deadLetter {
	var dls []deadLetter
	for i := range w.events {
		if p := w.events[i]; p.poison != "" {
			dls = append(dls, deadLetter{EventID: p.ev.ID, Reason: poisonReasons[p.poison][0], Detail: "x"})
		}
	}
	return dls
}

// newestWithHistory returns a field written by at least two events with
// different values, whose newest event sets no other field, and the index
// of that event.
func newestWithHistory(t *testing.T, w *workload) (fieldKey, int) {
	t.Helper()
	for k, idx := range w.histories() {
		last := idx[len(idx)-1]
		if len(idx) >= 2 && len(eventFields(&w.events[last].ev)) == 1 && w.valueOf(last, k.field) != w.valueOf(idx[len(idx)-2], k.field) {
			return k, idx[len(idx)-1]
		}
	}
	t.Fatal("no field with two different values in the workload")
	return fieldKey{}, 0
}

func TestCheck(t *testing.T) {
	w := newWorkload(3, 300, 2, 200, time.Unix(1_800_000_000, 0))
	key, newest := newestWithHistory(t, w)

	cases := []struct {
		name       string
		state      fakeState
		dls        []deadLetter
		wantViol   []string // kinds
		wantDead   int
		wantClean  bool
		wantMissed int
	}{
		{name: "everything applied", state: applyAll(w, nil), dls: poisonLetters(w), wantClean: true},
		{name: "newest lost, not dead-lettered", state: applyAll(w, map[int]bool{newest: true}), dls: poisonLetters(w),
			wantViol: []string{lostUpdate}},
		{name: "newest dead-lettered, older value held", state: applyAll(w, map[int]bool{newest: true}),
			dls: append(poisonLetters(w), deadLetter{EventID: w.events[newest].ev.ID, Reason: jobs.ReasonMaxDeliver}), wantDead: 1, wantClean: true},
		{name: "poison event not dead-lettered", state: applyAll(w, nil), dls: poisonLetters(w)[1:], wantMissed: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := check(w, tc.state.get, tc.dls)
			var kinds []string
			for _, vi := range v.Violations {
				kinds = append(kinds, vi.Kind)
				if vi.Key != key || vi.Newest != newest {
					t.Errorf("violation at %s (newest %d), want %s (newest %d)", vi.Key, vi.Newest, key, newest)
				}
				if vi.Writer < 0 {
					t.Errorf("violation names no writer for the held value %q", vi.Got)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.wantViol, ",") {
				t.Errorf("violations %v, want %v", kinds, tc.wantViol)
			}
			if v.DeadLettered != tc.wantDead {
				t.Errorf("dead-lettered fields %d, want %d", v.DeadLettered, tc.wantDead)
			}
			if len(v.PoisonMissing) != tc.wantMissed {
				t.Errorf("poison missing %v, want %d", v.PoisonMissing, tc.wantMissed)
			}
			if v.clean() != tc.wantClean {
				t.Errorf("clean %t, want %t", v.clean(), tc.wantClean)
			}
			if v.Fields == 0 || v.Applied+v.DeadLettered+len(v.Violations) != v.Fields {
				t.Errorf("fields %d ≠ applied %d + dead-lettered %d + violations %d", v.Fields, v.Applied, v.DeadLettered, len(v.Violations))
			}
		})
	}

	t.Run("a value no event wrote, newest dead-lettered", func(t *testing.T) {
		st := applyAll(w, nil)
		fk := [3]string{key.app, key.from, key.to}
		st[fk] = setField(st[fk], key.field, "bogus")
		v := check(w, st.get, append(poisonLetters(w), deadLetter{EventID: w.events[newest].ev.ID, Reason: jobs.ReasonVendor}))
		if len(v.Violations) != 1 || v.Violations[0].Kind != wrongFallback || v.Violations[0].Writer != -1 || v.Violations[0].Got != "bogus" {
			t.Fatalf("violations %+v, want one %q with no writer", v.Violations, wrongFallback)
		}
	})
}

func TestWorkload(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a, b := newWorkload(9, 500, 2, 300, t0), newWorkload(9, 500, 2, 300, t0)
	if len(a.events) != len(b.events) {
		t.Fatalf("same seed, %d and %d events", len(a.events), len(b.events))
	}
	for i := range a.events {
		if a.events[i].ev.ID != b.events[i].ev.ID || a.events[i].ev.TS != b.events[i].ev.TS || a.events[i].ev.To != b.events[i].ev.To {
			t.Fatalf("same seed, event %d differs: %+v vs %+v", i, a.events[i].ev, b.events[i].ev)
		}
	}
	rules := map[string]event.Rules{appT1: {Vendor: event.Tencent}, appT2: {Vendor: event.Tencent},
		appVolc: {Vendor: event.Volc, VolcAlias: true}, appZego: {Vendor: event.Zego}}
	ids, ts := map[string]bool{}, map[int64]bool{}
	poison, burst := map[string]int{}, 0
	for i := range a.events {
		p := &a.events[i]
		if ids[p.ev.ID] {
			t.Errorf("duplicate id %s", p.ev.ID)
		}
		ids[p.ev.ID] = true
		if p.poison != "" {
			poison[p.poison]++
			continue
		}
		if err := p.ev.ValidateFor(rules[p.ev.App]); err != nil {
			t.Errorf("workload event %s invalid: %v", p.ev.ID, err)
		}
		if p.ev.TS != 0 {
			if ts[p.ev.TS] {
				t.Errorf("duplicate ts %d", p.ev.TS)
			}
			ts[p.ev.TS] = true
			if p.ev.TS >= a.t0 {
				t.Errorf("event %s: ts %d not before t0 %d", p.ev.ID, p.ev.TS, a.t0)
			}
		}
		if p.burst {
			burst++
			if p.ev.TS == 0 {
				t.Errorf("burst event %s without ts (its publish order is not kept)", p.ev.ID)
			}
		}
	}
	if burst != 300 {
		t.Errorf("%d burst events, want 300", burst)
	}
	for _, kind := range []string{poisonGarbage, poisonRemark, poisonVolcID, poisonRogue} {
		if poison[kind] != 2 {
			t.Errorf("%d poison events %q, want 2", poison[kind], kind)
		}
	}
	// Every value (but clears) names one event, so a held value names its writer.
	writers := map[string]int{}
	for k, idx := range a.histories() {
		for _, i := range idx {
			if v := a.valueOf(i, k.field); v != "" {
				if j, dup := writers[k.field+"="+v]; dup && j != i {
					t.Fatalf("value %q of %s written by events %d and %d", v, k.field, j, i)
				}
				writers[k.field+"="+v] = i
			}
		}
		for n := 1; n < len(idx); n++ {
			if a.version(idx[n-1]) >= a.version(idx[n]) {
				t.Fatalf("history of %s not in version order", k)
			}
		}
	}
}

func TestMergeFaults(t *testing.T) {
	got := mergeFaults(baseFaults, faultSpecs(0.2)[event.Tencent], stormSpecs()[event.Tencent],
		vendorsim.FaultSpec{ErrorRates: map[string]float64{codeTencentConflict: 0.9}, Outages: []vendorsim.Outage{{Until: time.Unix(2, 0)}}})
	if got.Latency != baseFaults.Latency || got.Jitter != baseFaults.Jitter {
		t.Errorf("latency %v+%v, want the base %v+%v", got.Latency, got.Jitter, baseFaults.Latency, baseFaults.Jitter)
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(got.HTTP5xxRate, 0.1) || !near(got.TimeoutRate, 0.1) || got.HTTPStatus != 502 {
		t.Errorf("5xx %v timeout %v status %d, want 0.1 0.1 502", got.HTTP5xxRate, got.TimeoutRate, got.HTTPStatus)
	}
	sum := 0.0
	for _, p := range got.ErrorRates {
		sum += p
	}
	if sum > 1+1e-9 || got.ErrorRates[codeTencentConflict] <= got.ErrorRates[codeTencentThrottle] {
		t.Errorf("error rates %v: want scaled to sum ≤ 1, 30008 above 60007", got.ErrorRates)
	}
	if len(got.Outages) != 1 {
		t.Errorf("outages %v, want the one", got.Outages)
	}
	sim, err := newSim()
	if err != nil {
		t.Fatal(err)
	}
	board, err := newFaultBoard(sim, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := board.set("storm", stormSpecs()); err != nil {
		t.Fatalf("the simulator refuses the storm: %v", err)
	}
	if err := board.set("faults", faultSpecs(1)); err != nil {
		t.Fatalf("the simulator refuses 100%% faults: %v", err)
	}
	if f := sim.Faults(event.Zego); f.ErrorRates[codeZegoThrottle] == 0 || f.HTTP5xxRate == 0 {
		t.Errorf("zego faults %+v lack the storm or the 5xx", f)
	}
	if err := board.clear("storm"); err != nil {
		t.Fatal(err)
	}
	if err := board.clear("faults"); err != nil {
		t.Fatal(err)
	}
	if f := sim.Faults(event.Tencent); len(f.ErrorRates) != 0 || f.HTTP5xxRate != 0 || f.Latency != baseFaults.Latency {
		t.Errorf("after clearing, tencent faults %+v, want the base latency only", f)
	}
}

func TestReportChecks(t *testing.T) {
	w := newWorkload(1, 50, 1, 0, time.Unix(1_800_000_000, 0))
	for i := range w.events {
		w.events[i].published = true
	}
	pass := func() *Report {
		r := &Report{Options: Options{Kills: 2, DrainTimeout: time.Minute, Poison: 1}, Workload: w, Drained: true,
			Kills: []Kill{{N: 1}, {N: 2}}, Phases: make([]Phase, 5)}
		r.Verdict = verdict{Fields: 10, Applied: 10, Poison: 4}
		r.Counters.Tencent.Budgets = map[string]vendorsim.BudgetCounters{"tencent:1": {Limit: 200, Calls: 500, MaxWindow: 190}}
		return r
	}
	if f := pass().Failures(); len(f) != 0 {
		t.Fatalf("a clean run fails: %v", f)
	}
	cases := []struct {
		name    string
		breakIt func(*Report)
		want    string
	}{
		{"over budget", func(r *Report) {
			r.Counters.Tencent.Budgets["tencent:1"] = vendorsim.BudgetCounters{Limit: 200, Calls: 500, MaxWindow: 203, OverBudgetWindows: 3}
		}, "budget tencent:1"},
		{"overlap", func(r *Report) { r.Counters.Zego.Overlaps = 1 }, "overlapping"},
		{"real conflict", func(r *Report) { r.Counters.Volc.Conflicts = 1 }, "write conflicts"},
		{"lost update", func(r *Report) { r.Verdict.Violations = []violation{{Kind: lostUpdate}} }, "newest value"},
		{"too few kills", func(r *Report) { r.Kills = r.Kills[:1] }, "kill -9"},
		{"not drained", func(r *Report) { r.Drained = false }, "drained"},
		{"panic", func(r *Report) { r.Exits = []exitRecord{{Worker: "w1", Panic: true}} }, "crashes"},
		{"poison kept", func(r *Report) { r.Verdict.PoisonMissing = []string{"x"} }, "poison"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pass()
			tc.breakIt(r)
			f := r.Failures()
			if len(f) != 1 || !strings.Contains(f[0], tc.want) {
				t.Fatalf("failures %q, want one about %q", f, tc.want)
			}
			var md bytes.Buffer
			if err := r.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(md.String(), "Reliability run: FAIL") || !strings.Contains(md.String(), "**FAIL**") {
				t.Errorf("report does not say FAIL:\n%s", md.String())
			}
		})
	}
}

// TestEvidence: a lost update is described with the field's events, the
// version the store holds (read from a real Redis) and the event it names,
// the kill of the worker holding the partition, and the workers' log lines
// about the partition, repeats collapsed.
func TestEvidence(t *testing.T) {
	w := newWorkload(5, 200, 0, 0, time.Unix(1_800_000_000, 0))
	for i := range w.events {
		w.events[i].published, w.events[i].seq, w.events[i].pubAt = true, uint64(i+1), time.Duration(i)*time.Millisecond
	}
	key, newest := newestWithHistory(t, w)
	v := check(w, applyAll(w, map[int]bool{newest: true}).get, nil)
	if len(v.Violations) != 1 {
		t.Fatalf("violations %+v, want 1", v.Violations)
	}
	vi := v.Violations[0]
	older := vi.History[len(vi.History)-2]

	prefix := testenv.Unique("chaos") + ":"
	rdb := testenv.Redis(t, prefix)
	hk := prefix + "v:" + key.app + ":" + key.from
	ver := jobs.Version{TS: w.version(older), Seq: w.events[older].seq}
	if err := rdb.HSet(context.Background(), hk, versions.Field(key.to, key.field), ver.String()).Err(); err != nil {
		t.Fatal(err)
	}

	const partitions = 8
	part := event.Partition(key.app, key.from, partitions)
	start := time.Now().Add(-time.Minute)
	at := start.Add(w.events[newest].pubAt)
	logPath := filepath.Join(t.TempDir(), "w1.log")
	lines := []string{
		fmt.Sprintf("time=%s level=INFO msg=\"lease acquired\" worker=w1 partition=%d revision=7", at.Add(-time.Second).Format(time.RFC3339Nano), part),
		fmt.Sprintf("time=%s level=INFO msg=\"lease acquired\" worker=w1 partition=%d revision=8", at.Add(-time.Second).Format(time.RFC3339Nano), part+partitions), // another partition
		fmt.Sprintf("time=%s level=WARN msg=\"versions: redis unavailable; answering from the cache, raises kept in memory\" worker=w1", at.Format(time.RFC3339Nano)),
		fmt.Sprintf("time=%s level=WARN msg=\"deliver: load versions failed\" worker=w1 error=\"redis unavailable\"", at.Format(time.RFC3339Nano)), // noise
		fmt.Sprintf("time=%s level=INFO msg=\"queue: partition started\" worker=w1 partition=%d", at.Format(time.RFC3339Nano), part),
		fmt.Sprintf("time=%s level=INFO msg=\"queue: partition started\" worker=w1 partition=%d", at.Format(time.RFC3339Nano), part),
		fmt.Sprintf("time=%s level=INFO msg=\"queue: partition started\" worker=w1 partition=%d", at.Format(time.RFC3339Nano), part),
		fmt.Sprintf("time=%s level=INFO msg=\"lease acquired\" worker=w1 partition=%d revision=9", at.Add(5*time.Minute).Format(time.RFC3339Nano), part), // outside the window
	}
	lines = append(lines, fmt.Sprintf("=== fschaos: start 2 of w1 at %s (+1s)", at.Add(2*time.Second).Format(time.RFC3339Nano)))
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherLog := filepath.Join(t.TempDir(), "w2.log") // never held the partition: its restart is noise
	if err := os.WriteFile(otherLog, []byte(fmt.Sprintf("=== fschaos: start 5 of w2 at %s (+1s)\n", at.Format(time.RFC3339Nano))), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Report{Kills: []Kill{{N: 3, At: w.events[newest].pubAt + time.Second, Worker: "w1", Inflight: 12, PendingRaises: 4, Partitions: []int{part}}}}
	got := evidence(w, vi, v, r, partitions, start, []*proc{{id: "w1", logPath: logPath}, {id: "w2", logPath: otherLog}}, evidenceSources{
		redisAddr:  testenv.RedisAddr(),
		versionKey: func(app, from string) string { return prefix + "v:" + app + ":" + from },
	})
	for _, want := range []string{
		lostUpdate, key.String(), w.events[newest].ev.ID,
		"holds version " + ver.String() + " (event " + w.events[older].ev.ID + ")",
		fmt.Sprintf("kill 3 of w1 at +%s, holding partition %d", fmtDur(r.Kills[0].At), part),
		"4 version raises pending in memory",
		fmt.Sprintf("partition=%d revision=7", part),
		"raises kept in memory",
		"(and 2 more like it)",
		"start 2 of w1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("evidence lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"revision=8", "revision=9", "load versions failed", "start 5 of w2"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("evidence holds %q (another partition or outside the window):\n%s", unwanted, got)
		}
	}
}
