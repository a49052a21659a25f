package prooftest

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// Planned is one event to publish, in order, and its lane.
type Planned struct {
	Ev   event.Event
	Lane event.Lane
}

// FriendKey names one (app, from, to) at the simulator.
type FriendKey struct{ App, From, To string }

// Workload is a list of events in publish order.
type Workload struct {
	Events []Planned
	// T0 is earlier than every publish time and later than every explicit
	// ts, so an event without ts (versioned by its publish time) beats
	// every event with one, and publish order decides among them.
	T0 int64
}

// Versioning decides each event's lane and explicit ts.
type Versioning int

const (
	// MostlyPublishTime: 10 % backfill rows on the bulk lane with a ts one
	// to two hours old, 10 % live rows with a ts a minute or two old (out
	// of order), the rest live without ts (versioned by publish time).
	MostlyPublishTime Versioning = iota
	// AllExplicit: every event carries an explicit ts, unrelated to the
	// publish order (so it can be published asynchronously): live within
	// the last ten minutes, 10 % on the bulk lane one to two hours old.
	AllExplicit
)

// Mix describes a workload: how many accounts, their shares over Apps
// (normalized; accounts are assigned in Apps order), and the versioning.
type Mix struct {
	Accounts int
	Apps     Apps
	Shares   []float64
	Versions Versioning
}

// NewWorkload generates a mixed workload from r: per account 1–2 friends
// (an app's MostlyOneFriend: mostly 1), per friend 1–3 updates of remark,
// groups (Tencent) and attributes, with clears, versioned as m.Versions
// says; explicit ts are made unique (ties would be decided by stream
// sequence, which Expected does not model); shuffled. The same r state and
// m give the same events, but for T0 (the time of the call).
func NewWorkload(r Rand, m Mix) *Workload {
	w := &Workload{T0: time.Now().UnixNano()}
	total := 0.0
	for _, s := range m.Shares {
		total += s
	}
	cut := make([]float64, len(m.Shares))
	cum := 0.0
	for i, s := range m.Shares {
		cum += s
		cut[i] = cum / total
	}
	var evs []Planned
	seen := map[int64]bool{}
	for a := 0; a < m.Accounts; a++ {
		x := float64(a) / float64(m.Accounts)
		app := m.Apps[len(m.Apps)-1]
		for i := 0; i < len(m.Apps)-1; i++ {
			if x < cut[i] {
				app = m.Apps[i]
				break
			}
		}
		from, friendIDs := AccountIDs(app.Vendor, a)
		nf := 1 + r.IntN(2)
		if app.MostlyOneFriend && r.IntN(5) != 0 {
			nf = 1
		}
		for f := 0; f < nf; f++ {
			to := friendIDs(f)
			for u, n := 0, 1+r.IntN(3); u < n; u++ {
				p := Planned{Ev: event.Event{App: app.Name, From: from, To: to}, Lane: event.LaneLive}
				FillFields(r, app.Vendor, &p.Ev, len(evs))
				switch m.Versions {
				case AllExplicit:
					p.Ev.TS = w.T0 - r.Int64N(int64(10*time.Minute))
					if r.IntN(10) == 0 { // a backfill row
						p.Lane = event.LaneBulk
						p.Ev.TS = w.T0 - int64(time.Hour) - r.Int64N(int64(time.Hour))
					}
				default:
					switch k := r.IntN(10); {
					case k == 0: // backfill: bulk lane, ts one to two hours old
						p.Lane = event.LaneBulk
						p.Ev.TS = w.T0 - 2*int64(time.Hour) + int64(r.IntN(3_600_000))*int64(time.Millisecond)
					case k == 1: // live with an explicit ts a minute or so old
						p.Ev.TS = w.T0 - int64(time.Minute) - int64(r.IntN(60_000))*int64(time.Millisecond)
					}
				}
				for p.Ev.TS != 0 && seen[p.Ev.TS] {
					p.Ev.TS--
				}
				seen[p.Ev.TS] = true
				evs = append(evs, p)
			}
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	w.Events = evs
	return w
}

// FillFields sets at least one field of ev, an event of a vendor v app,
// with values unique to n (so a value found at the vendor names the event
// that wrote it): a remark, groups (Tencent) and attributes of AttrKeys(v),
// with clears.
func FillFields(r Rand, v event.Vendor, ev *event.Event, n int) {
	s := strconv.Itoa(n)
	keys := AttrKeys(v)
	for ev.Remark == nil && ev.Groups == nil && len(ev.Attrs) == 0 {
		if r.IntN(10) < 6 {
			remark := "r" + s
			if r.IntN(10) == 0 {
				remark = "" // clear
			}
			ev.Remark = &remark
		}
		if v == event.Tencent && r.IntN(10) < 3 {
			gs := []string{}
			if r.IntN(7) != 0 { // else clear
				for range 1 + r.IntN(2) {
					gs = append(gs, "g"+strconv.Itoa(r.IntN(5))+"_"+s)
				}
			}
			ev.Groups = &gs
		}
		if r.IntN(10) < 4 {
			ev.Attrs = map[string]string{}
			for range 1 + r.IntN(2) {
				val := "a" + s
				if r.IntN(7) == 0 {
					val = "" // delete
				}
				ev.Attrs[keys[r.IntN(len(keys))]] = val
			}
		}
	}
}

// Version is the order a worker must apply the i-th published event in:
// its explicit ts, else (its publish time, hence) t0 + i + 1. Publish order
// is the version order of events without ts only when each publish waits
// for its ack.
func Version(ts, t0 int64, i int) int64 {
	if ts != 0 {
		return ts
	}
	return t0 + int64(i) + 1
}

// Version is event i's Version.
func (w *Workload) Version(i int) int64 { return Version(w.Events[i].Ev.TS, w.T0, i) }

// Expected applies every event in version order, field by field, with the
// simulator's semantics ("" clears a remark, [] clears groups, an
// attribute "" deletes it).
func (w *Workload) Expected() map[FriendKey]vendorsim.Friend {
	order := make([]int, len(w.Events))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(w.Version(a), w.Version(b)) })
	out := map[FriendKey]vendorsim.Friend{}
	for _, i := range order {
		ev := &w.Events[i].Ev
		k := FriendKey{ev.App, ev.From, ev.To}
		f := out[k]
		if ev.Remark != nil {
			f.Remark = *ev.Remark
		}
		if ev.Groups != nil {
			f.Groups = slices.Clone(*ev.Groups)
			if len(f.Groups) == 0 {
				f.Groups = nil
			}
		}
		for ak, av := range ev.Attrs {
			if av == "" {
				delete(f.Attrs, ak)
				continue
			}
			if f.Attrs == nil {
				f.Attrs = map[string]string{}
			}
			f.Attrs[ak] = av
		}
		if len(f.Attrs) == 0 {
			f.Attrs = nil
		}
		out[k] = f
	}
	return out
}

// Accounts counts the workload's distinct (app, from).
func (w *Workload) Accounts() int {
	seen := map[jobs.Key]bool{}
	for _, p := range w.Events {
		seen[jobs.Key{App: p.Ev.App, From: p.Ev.From}] = true
	}
	return len(seen)
}
