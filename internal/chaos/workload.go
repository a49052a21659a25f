package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// Poison kinds and the dead-letter reason each must get.
const (
	poisonGarbage = "not JSON"
	poisonRemark  = "Tencent remark over the limit"
	poisonVolcID  = "Volcengine id not a number"
	poisonRogue   = "attribute the vendor refuses"
)

// The refused attribute may also run out of deliveries when every attempt
// met an injected transient fault first.
var poisonReasons = map[string][]string{
	poisonGarbage: {jobs.ReasonInvalid},
	poisonRemark:  {jobs.ReasonInvalid},
	poisonVolcID:  {jobs.ReasonInvalid},
	poisonRogue:   {jobs.ReasonVendor, jobs.ReasonMaxDeliver},
}

// planned is one event to publish, in order, and what became of its
// publishing.
type planned struct {
	ev   event.Event
	lane event.Lane
	// poison is the poison kind ("" for a workload event); raw, when set,
	// is published as is (bypassing the producer's validation) on the
	// subject of ev's app and from.
	poison string
	raw    []byte

	// burst events are published all at once, asynchronously, at the
	// burst's offset (they carry an explicit ts, so publish order does not
	// matter); the others are paced in order.
	burst bool

	// Filled by the publisher.
	published bool
	pubAt     time.Duration // since the run started, when the ack came
	seq       uint64        // stream sequence
	attempts  int
}

// workload is the events of a run in publish order.
type workload struct {
	events []planned
	// t0 is later than every explicit ts and earlier than every publish
	// time: an event without ts (versioned by its publish time) beats every
	// event with one, and publish order decides among them.
	t0 int64
}

// fieldKey names one field of one friend.
type fieldKey struct{ app, from, to, field string }

func (k fieldKey) String() string { return k.app + "/" + k.from + "→" + k.to + " " + k.field }

// account shares per app, in the order t1, t2, volc, zego.
var accountShares = []struct {
	app   string
	share float64
}{{appT1, 0.30}, {appT2, 0.30}, {appVolc, 0.32}, {appZego, 0.08}}

// newWorkload generates a mixed workload over accounts accounts: per
// account 1–2 friends (ZEGO mostly 1), per friend 1–3 updates of remark,
// groups (Tencent) and attributes, with clears; 10% backfill rows on the
// bulk lane with a ts one to two hours old, 10% live rows with a ts a
// minute or two old (out of order), the rest live without ts. poison
// events of each kind are mixed in.
//
// burst more events with an explicit ts a minute or two old (a late replay
// from another system) are appended to be published at once, 70% for a
// new account each (one more vendor call: enough to fill every budget),
// the rest for a random friend of an existing account.
func newWorkload(seed uint64, accounts, poison, burst int, t0 time.Time) *workload {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	w := &workload{t0: t0.UnixNano()}
	type account struct {
		app, from string
		friend    func(int) string
		friends   int
	}
	var accts []account
	var evs []planned
	a := 0
	for si, s := range accountShares {
		n := int(float64(accounts)*s.share + 0.5)
		if si == len(accountShares)-1 {
			n = max(1, accounts-a)
		}
		for range n {
			from, friend := prooftest.AccountIDs(apps.Find(s.app).Vendor, a)
			a++
			nf := 1 + r.IntN(2)
			if s.app == appZego && r.IntN(5) != 0 {
				nf = 1
			}
			accts = append(accts, account{s.app, from, friend, nf})
			for f := range nf {
				to := friend(f)
				for range 1 + r.IntN(3) {
					p := planned{ev: event.Event{App: s.app, From: from, To: to}, lane: event.LaneLive}
					prooftest.FillFields(r, apps.Find(s.app).Vendor, &p.ev, len(evs))
					switch k := r.IntN(10); k {
					case 0: // backfill: bulk lane, ts one to two hours old
						p.lane = event.LaneBulk
						p.ev.TS = w.t0 - 2*int64(time.Hour) + r.Int64N(int64(time.Hour))
					case 1: // live with an explicit ts a minute or two old
						p.ev.TS = w.t0 - int64(time.Minute) - r.Int64N(int64(time.Minute))
					}
					evs = append(evs, p)
				}
			}
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for range burst {
		ac := accts[r.IntN(len(accts))]
		if r.IntN(10) < 7 { // a new account: one more vendor call
			app := accountShares[len(accountShares)-1].app
			x, cum := r.Float64(), 0.0
			for _, s := range accountShares {
				if cum += s.share; x < cum {
					app = s.app
					break
				}
			}
			from, friend := prooftest.AccountIDs(apps.Find(app).Vendor, a)
			a++
			ac = account{app, from, friend, 1}
			accts = append(accts, ac)
		}
		p := planned{ev: event.Event{App: ac.app, From: ac.from, To: ac.friend(r.IntN(ac.friends))}, lane: event.LaneLive, burst: true}
		prooftest.FillFields(r, apps.Find(ac.app).Vendor, &p.ev, len(evs))
		p.ev.TS = w.t0 - int64(time.Minute) - r.Int64N(int64(time.Minute))
		evs = append(evs, p)
	}
	// Unique explicit ts: ties would be decided by stream sequence, which
	// the expected state does not model.
	seen := map[int64]bool{}
	for i := range evs {
		for evs[i].ev.TS != 0 && seen[evs[i].ev.TS] {
			evs[i].ev.TS--
		}
		seen[evs[i].ev.TS] = true
	}
	paced := len(evs) - burst
	for n := range poison {
		for _, p := range poisonEvents(n) {
			at := r.IntN(paced + 1)
			paced++
			evs = slices.Insert(evs, at, p)
		}
	}
	for i := range evs {
		if evs[i].ev.ID == "" {
			evs[i].ev.ID = fmt.Sprintf("ev-%d-%06d", seed, i)
		}
	}
	w.events = evs
	return w
}

// poisonEvents are the n-th poison event of each kind, each for an
// account and friend of its own (a vendor refusal dead-letters every
// event merged into the refused item).
func poisonEvents(n int) []planned {
	ns := strconv.Itoa(n)
	long := strings.Repeat("x", event.TencentMaxRemarkBytes+1)
	remark := event.Event{ID: "poison-remark-" + ns, App: appT1, From: "pr" + ns, To: "prf" + ns, Remark: &long}
	remarkRaw, _ := event.Encode(&remark) // cannot fail for this type
	volc := event.Event{ID: "poison-volcid-" + ns, App: appVolc, From: "not-a-number-" + ns, To: "20999999", Remark: event.Ptr("x")}
	volcRaw, _ := event.Encode(&volc)
	garbage := event.Event{ID: "poison-garbage-" + ns, App: appT2, From: "pg" + ns, To: "pgf" + ns}
	return []planned{
		{ev: garbage, lane: event.LaneLive, poison: poisonGarbage, raw: []byte(`{"app": "t2", "from": "pg` + ns + `", "to": `)},
		{ev: remark, lane: event.LaneLive, poison: poisonRemark, raw: remarkRaw},
		{ev: volc, lane: event.LaneLive, poison: poisonVolcID, raw: volcRaw},
		{ev: event.Event{ID: "poison-rogue-" + ns, App: appT2, From: "pv" + ns, To: "pvf" + ns,
			Attrs: map[string]string{"Rogue": "x" + ns}}, lane: event.LaneLive, poison: poisonRogue},
	}
}

// version orders event i among the writes of a field: its explicit ts,
// else t0 + its publish index (its version is its publish time, which
// follows publish order because the publisher waits for each ack).
func (w *workload) version(i int) int64 { return prooftest.Version(w.events[i].ev.TS, w.t0, i) }

// fieldValue is one field an event sets and its value in a comparable
// form: a remark's text, the groups joined by \x1f, an attribute's value
// ("" clears, as at the vendors).
type fieldValue struct{ field, value string }

func eventFields(ev *event.Event) []fieldValue {
	var out []fieldValue
	if ev.Remark != nil {
		out = append(out, fieldValue{event.FieldRemark, *ev.Remark})
	}
	if ev.Groups != nil {
		out = append(out, fieldValue{event.FieldGroups, strings.Join(*ev.Groups, "\x1f")})
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Attrs)) {
		out = append(out, fieldValue{event.AttrFieldPrefix + k, ev.Attrs[k]})
	}
	return out
}

// friendValue is a field's value in the simulator's state (zero Friend
// when nothing is stored).
func friendValue(f vendorsim.Friend, field string) string {
	switch {
	case field == event.FieldRemark:
		return f.Remark
	case field == event.FieldGroups:
		return strings.Join(f.Groups, "\x1f")
	default:
		return f.Attrs[strings.TrimPrefix(field, event.AttrFieldPrefix)]
	}
}

// histories maps every field the workload writes to the indexes of the
// events writing it, oldest version first. Poison events are left out.
func (w *workload) histories() map[fieldKey][]int {
	out := map[fieldKey][]int{}
	for i := range w.events {
		p := &w.events[i]
		if p.poison != "" {
			continue
		}
		for _, fv := range eventFields(&p.ev) {
			k := fieldKey{p.ev.App, p.ev.From, p.ev.To, fv.field}
			out[k] = append(out[k], i)
		}
	}
	for k, idx := range out {
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(w.version(a), w.version(b)) })
		out[k] = idx
	}
	return out
}

// valueOf is event i's value for field.
func (w *workload) valueOf(i int, field string) string {
	for _, fv := range eventFields(&w.events[i].ev) {
		if fv.field == field {
			return fv.value
		}
	}
	return ""
}
