package chaos

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/versions"
)

// maxEvidence bounds the violations reported with full evidence.
const maxEvidence = 10

// Report is one run: what was injected, what the cluster did, and the
// invariants checked at the end.
type Report struct {
	// Command is the command line, for the report's header (set by the
	// caller).
	Command string
	Options Options
	Started time.Time
	Machine string
	// MachineEnd is the load when the run ended.
	MachineEnd string
	// WorkDir holds the worker logs; "" when it was removed (a passing run).
	WorkDir string

	Phases []Phase
	Kills  []Kill
	// Exits are worker processes that ended without being killed (each
	// was restarted); Starts counts processes started per worker.
	Exits  []exitRecord
	Starts map[string]int

	Workload *workload
	Verdict  verdict
	Counters vendorsim.Counters

	// Offsets from the start of publishing: publishing done, kills done,
	// everything done; DrainedAt: nothing pending any more.
	PublishEnd, KillEnd, ChaosEnd, DrainedAt time.Duration
	Drained                                  bool
	// BurstAt and BurstEnd bound the burst's publishing.
	BurstAt, BurstEnd time.Duration

	// Evidence holds one Markdown block per violation (at most
	// maxEvidence).
	Evidence []string
}

// Phase is one fault phase as it ran.
type Phase struct {
	Name, Detail string
	Planned      time.Duration
	// Start and End are offsets from the start of publishing.
	Start, End    time.Duration
	before, after vendorsim.Counters
}

// Kill is one kill -9.
type Kill struct {
	N      int
	At     time.Duration // offset from the start of publishing
	Worker string
	// Inflight is the worker's in-flight account gauge read just before
	// the kill, PendingRaises its version raises kept in memory while
	// Redis did not answer (lost with the process); -1 unknown. Partitions
	// are the partitions it held.
	Inflight      float64
	PendingRaises float64
	Partitions    []int
}

// Check is one invariant with its result.
type Check struct {
	Name, Got, Want string
	Pass            bool
}

// Checks evaluates every invariant.
func (r *Report) Checks() []Check {
	var cs []Check
	add := func(name, got, want string, pass bool) { cs = append(cs, Check{name, got, want, pass}) }
	o := r.Options
	add("kill -9 of a worker during the run", strconv.Itoa(len(r.Kills)), "≥ "+strconv.Itoa(o.Kills), len(r.Kills) >= o.Kills)
	add("fault phases run (NATS restart, Redis, 5xx/timeouts, vendor outage, storm)", strconv.Itoa(len(r.Phases)), "5", len(r.Phases) == 5)
	pub, total := r.published()
	add("events published (retried with the same id while NATS was away)", fmt.Sprintf("%d / %d", pub, total), "all", pub == total)
	drain := "not within " + o.DrainTimeout.String()
	if r.Drained {
		drain = fmtDur(r.DrainedAt-r.ChaosEnd) + " after the last fault"
	}
	add("drained: no message pending or unacknowledged", drain, "≤ "+o.DrainTimeout.String(), r.Drained)
	v := r.Verdict
	add("every field holds its newest value, or that event is dead-lettered (and the newest value not dead-lettered is held)",
		fmt.Sprintf("%d violations of %d fields", len(v.Violations), v.Fields), "0", len(v.Violations) == 0)
	add("poison events dead-lettered with their reason", fmt.Sprintf("%d of %d", v.Poison-len(v.PoisonMissing)-len(v.PoisonReason), v.Poison),
		"all", len(v.PoisonMissing) == 0 && len(v.PoisonReason) == 0)
	add("dead letters carry a reason", fmt.Sprintf("%d without", v.DLQNoReason), "0", v.DLQNoReason == 0)
	var overlaps, conflicts int64
	for _, vd := range allVendors {
		vc := r.Counters.Vendor(vd)
		overlaps += vc.Overlaps
		conflicts += vc.Conflicts
	}
	add("overlapping writes for one account at the simulator", strconv.FormatInt(overlaps, 10), "0", overlaps == 0)
	add("write conflicts caused by the workers (injected ones apart)", strconv.FormatInt(conflicts, 10), "0", conflicts == 0)
	for _, b := range r.budgets() {
		add("budget "+b.name+": calls in any 1-s window / arrivals over the limit",
			fmt.Sprintf("%d / %d", b.c.MaxWindow, b.c.OverBudgetWindows), fmt.Sprintf("≤ %d / 0", b.c.Limit),
			b.c.MaxWindow <= b.c.Limit && b.c.OverBudgetWindows == 0 && !b.c.Saturated)
	}
	panics := 0
	for _, e := range r.Exits {
		if e.Panic {
			panics++
		}
	}
	add("worker crashes (panic or fatal error)", strconv.Itoa(panics), "0", panics == 0)
	return cs
}

// Failures lists the failed checks; empty means the run passed.
func (r *Report) Failures() []string {
	var out []string
	for _, c := range r.Checks() {
		if !c.Pass {
			out = append(out, fmt.Sprintf("%s: got %s, want %s", c.Name, c.Got, c.Want))
		}
	}
	return out
}

func (r *Report) published() (int, int) {
	if r.Workload == nil {
		return 0, 0
	}
	n := 0
	for i := range r.Workload.events {
		if r.Workload.events[i].published {
			n++
		}
	}
	return n, len(r.Workload.events)
}

type namedBudget struct {
	name string
	c    vendorsim.BudgetCounters
}

// budgets lists the simulator budgets that received calls, by name.
func (r *Report) budgets() []namedBudget {
	var out []namedBudget
	for _, vd := range allVendors {
		bs := r.Counters.Vendor(vd).Budgets
		for _, n := range slices.Sorted(maps.Keys(bs)) {
			if bs[n].Calls > 0 && bs[n].Limit > 0 {
				out = append(out, namedBudget{maskBudget(n), bs[n]})
			}
		}
	}
	return out
}

// maskBudget shortens a Volcengine budget name (it holds the access key).
func maskBudget(n string) string {
	if strings.HasPrefix(n, "volc:") && len(n) > 11 {
		return n[:11] + "…"
	}
	return n
}

// WriteMarkdown writes the report.
func (r *Report) WriteMarkdown(out io.Writer) error {
	bw := bufio.NewWriter(out)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	o := r.Options
	fails := r.Failures()
	result := "PASS"
	if len(fails) > 0 {
		result = "FAIL"
	}
	p("## Reliability run: %s\n\n", result)
	if r.Command != "" {
		p("```\n%s\n```\n\n", r.Command)
	}
	p("Started %s, seed %d. Machine: %s; at the end: %s.\n\n", r.Started.UTC().Format(time.RFC3339), o.Seed, r.Machine, r.MachineEnd)
	p("Cluster: %d `cmd/worker` subprocesses (lease TTL 6 s, failover 0.9 s, ack wait 6 s, retry budget 2 s, max deliver 10, vendor timeout %s), "+
		"%d partitions, in-process nats-server (file store), redis-server (AOF) behind a TCP proxy, the vendor simulator over HTTP "+
		"(10–30 ms per call; limits Tencent 200/s per SDKAppID, ZEGO 20/s per API, Volcengine %d/s). Publishing window %s.\n\n",
		o.Workers, vendorTimeout, o.Partitions, volcLimit, fmtDur(o.Duration))

	p("### Invariants\n\n| check | got | want | result |\n|---|---|---|---|\n")
	for _, c := range r.Checks() {
		res := "PASS"
		if !c.Pass {
			res = "**FAIL**"
		}
		p("| %s | %s | %s | %s |\n", c.Name, c.Got, c.Want, res)
	}
	p("\n")

	p("### Faults injected and survived\n\n| fault | from | to | lasted | what it did |\n|---|---|---|---|---|\n")
	for _, ph := range r.Phases {
		p("| %s | +%s | +%s | %s | %s; %s |\n", ph.Name, fmtDur(ph.Start), fmtDur(ph.End), fmtDur(ph.End-ph.Start), ph.Detail, ph.seen())
	}
	p("| kill -9 of a random ready worker, then restart | +%s | +%s | | %s |\n",
		fmtDur(firstKill(r.Kills)), fmtDur(r.KillEnd), r.killSummary())
	p("\n")
	if len(r.Exits) > 0 {
		p("Workers that exited without being killed (restarted after 1 s):\n\n")
		for _, e := range r.Exits {
			last := e.Tail
			if i := strings.LastIndexByte(strings.TrimRight(last, "\n"), '\n'); i >= 0 {
				last = last[i+1:]
			}
			p("- %s at +%s, exit code %d, panic %t: `%s`\n", e.Worker, fmtDur(e.At), e.Code, e.Panic, truncate(last, 200))
		}
		p("\n")
	}

	p("### Workload\n\n")
	r.writeWorkload(p)

	p("### Outcome\n\n")
	v := r.Verdict
	p("- Fields written by the workload: %d; holding their newest value: %d; newest event dead-lettered (the newest value not dead-lettered held): %d; violations: %d.\n",
		v.Fields, v.Applied, v.DeadLettered, len(v.Violations))
	p("- Dead letters: %d (%s); of workload events %d, of poison events %d, naming no event of the run %d.\n",
		v.DLQ, fmtCounts(v.DLQByReason), v.DLQWorkload, v.DLQ-v.DLQWorkload-v.DLQUnknown, v.DLQUnknown)
	if len(v.DLQCodes) > 0 {
		p("- Vendor codes of dead letters: %s.\n", fmtCounts(v.DLQCodes))
	}
	for _, m := range v.PoisonMissing {
		p("- Poison event not dead-lettered: %s.\n", m)
	}
	for _, m := range v.PoisonReason {
		p("- Poison event with another reason: %s.\n", m)
	}
	if r.Drained {
		p("- Publishing ended at +%s, the kills at +%s, everything (publishing, kills, faults) at +%s; nothing pending from +%s: drained %s after everything ended.\n",
			fmtDur(r.PublishEnd), fmtDur(r.KillEnd), fmtDur(r.ChaosEnd), fmtDur(r.DrainedAt), fmtDur(r.DrainedAt-r.ChaosEnd))
	} else {
		p("- Not drained within %s after everything ended (+%s).\n", o.DrainTimeout, fmtDur(r.ChaosEnd))
	}
	p("\n")

	p("### Vendor calls\n\n| vendor | calls | items | applied | injected faults | overlaps | conflicts (real) | QPS refusals (real) | answers |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, vd := range allVendors {
		vc := r.Counters.Vendor(vd)
		p("| %s | %d | %d | %d | %d | %d | %d | %d | %s; items: %s |\n", vd, vc.Calls, vc.Items, vc.Applied, vc.Faults,
			vc.Overlaps, vc.Conflicts, vc.Throttles, fmtCounts64(vc.Codes), fmtCounts64(vc.ItemCodes))
	}
	p("\nInjected codes are counted apart from real ones: the simulator counts a real write conflict (two writes for one account " +
		"at once, answered 30008 / UPDATE_FREQUENT) under conflicts and its own QPS refusals under QPS refusals; every other " +
		"30008, 60007, UPDATE_FREQUENT, FlowLimitExceeded, 660300005, http_5xx and timeout answer was injected.\n\n")

	p("### Budgets\n\n| budget | limit/s | calls | max calls in any 1-s window | arrivals over the limit |\n|---|---|---|---|---|\n")
	for _, b := range r.budgets() {
		p("| %s | %d | %d | %d | %d |\n", b.name, b.c.Limit, b.c.Calls, b.c.MaxWindow, b.c.OverBudgetWindows)
	}
	p("\n")

	if len(r.Evidence) > 0 {
		p("### Violations: evidence\n\n")
		if n := len(v.Violations); n > len(r.Evidence) {
			p("The first %d of %d violations.\n\n", len(r.Evidence), n)
		}
		for _, e := range r.Evidence {
			p("%s\n", e)
		}
	}
	if len(r.Kills) > 0 {
		p("<details><summary>The %d kills</summary>\n\n| # | at | worker | in-flight accounts | version raises pending | partitions held |\n|---|---|---|---|---|---|\n", len(r.Kills))
		for _, k := range r.Kills {
			p("| %d | +%s | %s | %s | %s | %v |\n", k.N, fmtDur(k.At), k.Worker, fmtInflight(k.Inflight), fmtInflight(k.PendingRaises), k.Partitions)
		}
		p("\n</details>\n\n")
	}
	if r.WorkDir != "" {
		p("Worker logs: `%s/logs`.\n", r.WorkDir)
	}
	return bw.Flush()
}

func (r *Report) writeWorkload(p func(string, ...any)) {
	w := r.Workload
	if w == nil {
		return
	}
	perVendor := map[event.Vendor]int{}
	var bulk, withTS, poison, retries, retried, burst int
	accounts := map[string]bool{}
	for i := range w.events {
		e := &w.events[i]
		retries += max(0, e.attempts-1)
		if e.attempts > 1 {
			retried++
		}
		if e.poison != "" {
			poison++
			continue
		}
		perVendor[apps.Find(e.ev.App).Vendor]++
		if e.burst {
			burst++
		}
		accounts[e.ev.App+"\x00"+e.ev.From] = true
		if e.lane == event.LaneBulk {
			bulk++
		}
		if e.ev.TS != 0 {
			withTS++
		}
	}
	n := len(w.events) - poison
	p("- %d events for %d accounts (%s); %d on the bulk lane; %d with an explicit ts (backfills 1–2 h old, live rows 1–2 min old, out of order), %d versioned by their publish time.\n",
		n, len(accounts), fmtVendorCounts(perVendor), bulk, withTS, n-withTS)
	p("- Paced over the window, one at a time (each ack awaited), except a burst of %d events with a ts 1–2 min old published at once from +%s (acks by +%s) to fill every budget.\n",
		burst, fmtDur(r.BurstAt), fmtDur(r.BurstEnd))
	p("- %d poison events: %d each of %s.\n", poison, r.Options.Poison,
		strings.Join([]string{poisonGarbage, poisonRemark, poisonVolcID, poisonRogue + " (Tencent 30001)"}, ", "))
	p("- %d events needed more than one publish attempt (%d retries, same event id) while NATS was away.\n\n", retried, retries)
}

// seen summarizes what the simulator answered during the phase.
func (ph Phase) seen() string {
	var parts []string
	for _, vd := range allVendors {
		b, a := ph.before.Vendor(vd), ph.after.Vendor(vd)
		codes := diffCounts(b.Codes, a.Codes)
		delete(codes, "0")
		items := diffCounts(b.ItemCodes, a.ItemCodes)
		calls := a.Calls - b.Calls
		if calls == 0 {
			continue
		}
		s := fmt.Sprintf("%s %d calls, %d injected", vd, calls, a.Faults-b.Faults)
		if len(codes) > 0 {
			s += " (" + fmtCounts64(codes) + ")"
		}
		if len(items) > 0 {
			s += ", items " + fmtCounts64(items)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "simulator: no calls"
	}
	return "simulator meanwhile: " + strings.Join(parts, "; ")
}

func (r *Report) killSummary() string {
	if len(r.Kills) == 0 {
		return "no kills"
	}
	mid, withRaises, raises := 0, 0, 0.0
	per := map[string]int{}
	var gaps []time.Duration
	for i, k := range r.Kills {
		if k.Inflight > 0 {
			mid++
		}
		if k.PendingRaises > 0 {
			withRaises++
			raises += k.PendingRaises
		}
		per[k.Worker]++
		if i > 0 {
			gaps = append(gaps, k.At-r.Kills[i-1].At)
		}
	}
	lost := "none with version raises pending in memory"
	if withRaises > 0 {
		lost = fmt.Sprintf("%d with %.0f version raises pending in memory, lost with the process", withRaises, raises)
	}
	s := fmt.Sprintf("%d kills (%d with accounts in flight; %s), per worker %s", len(r.Kills), mid, lost, fmtCountsInt(per))
	if len(gaps) > 0 {
		slices.Sort(gaps)
		s += fmt.Sprintf("; gaps min %s, median %s, max %s", fmtDur(gaps[0]), fmtDur(gaps[len(gaps)/2]), fmtDur(gaps[len(gaps)-1]))
	}
	total := 0
	for _, n := range r.Starts {
		total += n
	}
	return s + fmt.Sprintf("; %d worker processes started in all", total)
}

func firstKill(ks []Kill) time.Duration {
	if len(ks) == 0 {
		return 0
	}
	return ks[0].At
}

func diffCounts(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func fmtCounts64(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = "(no reason)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

func fmtCountsInt(m map[string]int) string { return fmtCounts(m) }

func fmtVendorCounts(m map[event.Vendor]int) string {
	var parts []string
	for _, vd := range allVendors {
		parts = append(parts, fmt.Sprintf("%s %d", vd, m[vd]))
	}
	return strings.Join(parts, ", ")
}

func fmtInflight(f float64) string {
	if f < 0 {
		return "?"
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second || d <= -time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// machineInfo is the CPU count, load average and Go version.
func machineInfo() string {
	load := "n/a"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%d CPUs, load %s, %s", runtime.NumCPU(), load, runtime.Version())
}

// evidence describes one violation: the field's events, the value found
// and its writer, the faults and kills around the newest event's publish,
// and the workers' log lines about its partition then.
// evidenceSources are where evidence reads the end state: the simulator
// and the redis-server itself (not through the proxy).
type evidenceSources struct {
	sim       *vendorsim.Sim
	redisAddr string
	// versionKey is the version store's hash of an account.
	versionKey func(app, from string) string
}

func evidence(w *workload, vi violation, v verdict, r *Report, partitions int, start time.Time, procs []*proc, src evidenceSources) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	k := vi.Key
	part := event.Partition(k.app, k.from, partitions)
	newest := &w.events[vi.Newest]
	p("#### %s: %s (partition %d)\n\n", vi.Kind, k, part)
	writer := "no event of the run (never written)"
	if vi.Writer >= 0 {
		writer = w.events[vi.Writer].ev.ID
	}
	p("Want %q (event %s), got %q, written by %s.", vi.Want, newest.ev.ID, vi.Got, writer)
	if src.sim != nil {
		if f, ok := apps.Friend(src.sim, prooftest.FriendKey{App: k.app, From: k.from, To: k.to}); ok {
			p(" The simulator applied %d items to this friend in all (every field).", f.Updates)
		}
	}
	if src.redisAddr != "" {
		hk, hf := src.versionKey(k.app, k.from), versions.Field(k.to, k.field)
		val, ok, err := redisHGet(src.redisAddr, hk, hf)
		switch {
		case err != nil:
			p(" Redis %s %s: %v.", hk, hf, err)
		case !ok:
			p(" Redis %s field %s: not set (no version was ever raised).", hk, hf)
		default:
			who := "no event of this field"
			if ver, err := jobs.ParseVersion(val); err == nil {
				for _, i := range vi.History {
					if w.events[i].seq == ver.Seq {
						who = "event " + w.events[i].ev.ID
					}
				}
			}
			p(" Redis %s field %s holds version %s (%s).", hk, hf, val, who)
		}
	}
	p("\n\n")
	p("| event | version | lane | published at | attempts | stream seq | value | dead letter |\n|---|---|---|---|---|---|---|---|\n")
	for _, i := range vi.History {
		e := &w.events[i]
		ver := fmt.Sprintf("publish time (order %d)", i)
		if e.ev.TS != 0 {
			ver = fmt.Sprintf("ts %d (t0%+.3fs)", e.ev.TS, float64(e.ev.TS-w.t0)/1e9)
		}
		dl := ""
		if d, ok := v.dlqByEventID[e.ev.ID]; ok {
			dl = fmt.Sprintf("%s (%s; delivered %s; by %s)", d.Reason, truncate(d.Detail, 80), d.Delivered, d.Worker)
		}
		p("| %s | %s | %s | +%s | %d | %d | %q | %s |\n", e.ev.ID, ver, e.lane, fmtDur(e.pubAt), e.attempts, e.seq, w.valueOf(i, k.field), dl)
	}
	wins := []window{{newest.pubAt - 10*time.Second, newest.pubAt + 30*time.Second}}
	around := fmt.Sprintf("From 10 s before to 30 s after the newest event's publish (+%s)", fmtDur(newest.pubAt))
	if vi.Writer >= 0 && vi.Writer != vi.Newest {
		wp := w.events[vi.Writer].pubAt
		wins = append(wins, window{wp - 10*time.Second, wp + 10*time.Second})
		around += fmt.Sprintf(", and 10 s either side of the held value's publish (+%s)", fmtDur(wp))
	}
	p("\n%s:\n\n", around)
	for _, ph := range r.Phases {
		for _, wn := range wins {
			if ph.End >= wn.from && ph.Start <= wn.to {
				p("- fault %s from +%s to +%s\n", ph.Name, fmtDur(ph.Start), fmtDur(ph.End))
				break
			}
		}
	}
	others := 0
	for _, kl := range r.Kills {
		if !inWindows(wins, kl.At) {
			continue
		}
		if !slices.Contains(kl.Partitions, part) {
			others++
			continue
		}
		p("- kill %d of %s at +%s, holding partition %d (partitions %v, %s accounts in flight, %s version raises pending in memory)\n",
			kl.N, kl.Worker, fmtDur(kl.At), part, kl.Partitions, fmtInflight(kl.Inflight), fmtInflight(kl.PendingRaises))
	}
	if others > 0 {
		p("- %d other kills of workers not holding partition %d\n", others, part)
	}
	lines := logLines(procs, wins, part, start)
	if len(lines) > 0 {
		p("\nWorker log lines then about partition %d, the version store's Redis outages and NATS, and the (re)starts of the workers that held partition %d:\n\n```\n%s\n```\n",
			part, part, strings.Join(lines, "\n"))
	}
	return b.String()
}

// window is a span of offsets from the start of publishing.
type window struct{ from, to time.Duration }

func inWindows(ws []window, at time.Duration) bool {
	for _, w := range ws {
		if at >= w.from && at <= w.to {
			return true
		}
	}
	return false
}

// logLines returns the workers' log lines inside the windows that name
// partition part, the version store's outage and recovery, or a NATS
// connection event, and the (re)starts of the workers that named part
// then; each is prefixed with the worker and its offset from start, a
// message repeated back to back by one worker is shown once with its
// count, and at most 120 lines are returned.
func logLines(procs []*proc, wins []window, part int, start time.Time) []string {
	type line struct {
		at     time.Time
		worker string
		start  bool
		text   string
	}
	var out []line
	held := map[string]bool{}
	needle := "partition=" + strconv.Itoa(part) + " "
	for _, pr := range procs {
		f, err := os.Open(pr.logPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		last, lastMsg, repeats := -1, "", 0
		for sc.Scan() {
			s := sc.Text()
			var at time.Time
			marker := strings.HasPrefix(s, "=== fschaos: start")
			if rest, ok := strings.CutPrefix(s, "time="); ok {
				ts, _, _ := strings.Cut(rest, " ")
				at, _ = time.Parse(time.RFC3339Nano, ts)
			} else if marker {
				if fs := strings.Fields(s); len(fs) >= 8 {
					at, _ = time.Parse(time.RFC3339Nano, fs[7])
				}
			}
			if at.IsZero() || !inWindows(wins, at.Sub(start)) {
				continue
			}
			msg := s
			if i := strings.Index(s, " msg="); i >= 0 {
				msg = s[i:]
			}
			names := strings.Contains(s+" ", needle)
			if names {
				held[pr.id] = true
			}
			if !(names || marker || strings.HasPrefix(msg, ` msg="versions:`) || strings.HasPrefix(msg, ` msg="nats`)) {
				continue
			}
			if last >= 0 && msg == lastMsg {
				repeats++
				out[last].text = fmt.Sprintf("%s (and %d more like it)", strings.SplitN(out[last].text, " (and ", 2)[0], repeats)
				continue
			}
			out = append(out, line{at, pr.id, marker, fmt.Sprintf("%s +%s %s", pr.id, fmtDur(at.Sub(start)), truncate(s, 300))})
			last, lastMsg, repeats = len(out)-1, msg, 0
		}
		f.Close()
	}
	out = slices.DeleteFunc(out, func(l line) bool { return l.start && !held[l.worker] })
	slices.SortStableFunc(out, func(a, b line) int { return a.at.Compare(b.at) })
	if len(out) > 120 {
		out = out[:120]
	}
	texts := make([]string, len(out))
	for i, l := range out {
		texts[i] = l.text
	}
	return texts
}
