package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/prooftest"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// deadLetter is one entry of the dead-letter stream.
type deadLetter struct {
	Subject   string
	EventID   string
	Reason    string
	Detail    string
	Code      string
	Worker    string
	Delivered string
}

// readDLQ reads the whole dead-letter stream of layout (none when the
// stream does not exist yet).
func readDLQ(ctx context.Context, js jetstream.JetStream, layout event.Layout) ([]deadLetter, error) {
	ms, err := prooftest.ReadDLQ(ctx, js, layout)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	var out []deadLetter
	for _, m := range ms {
		out = append(out, deadLetter{
			Subject: m.Subject, EventID: m.Header.Get(jobs.HdrEventID), Reason: m.Header.Get(jobs.HdrReason),
			Detail: m.Header.Get(jobs.HdrDetail), Code: m.Header.Get(jobs.HdrVendorCode),
			Worker: m.Header.Get(jobs.HdrWorker), Delivered: m.Header.Get(jobs.HdrDelivered),
		})
	}
	return out, nil
}

// friendState reads one friend from the simulator.
type friendState func(app, from, to string) (vendorsim.Friend, bool)

func simState(sim *vendorsim.Sim) friendState {
	return func(app, from, to string) (vendorsim.Friend, bool) {
		return apps.Friend(sim, prooftest.FriendKey{App: app, From: from, To: to})
	}
}

// Violation kinds.
const (
	// lostUpdate: the newest value is not held and its event is not
	// dead-lettered.
	lostUpdate = "lost update"
	// wrongFallback: the newest value's event is dead-lettered, but the
	// field holds neither its value nor the newest value not dead-lettered.
	wrongFallback = "wrong value after a dead letter"
)

// violation is one field whose final value breaks the invariant.
type violation struct {
	Kind    string
	Key     fieldKey
	Want    string // the value the field must hold
	Got     string
	Newest  int   // index of the newest event
	Writer  int   // index of the event whose value is held; -1 none found
	History []int // the field's events, oldest version first
}

// verdict is the end state checked against the workload.
type verdict struct {
	Fields       int // fields written by the workload
	Applied      int // fields holding their newest value
	DeadLettered int // fields whose newest event is dead-lettered (holding the newest value not dead-lettered)
	Violations   []violation

	Poison        int
	PoisonMissing []string // "kind id": poison events not dead-lettered
	PoisonReason  []string // "kind id: reason got, want": dead-lettered with another reason

	DLQ          int
	DLQByReason  map[string]int
	DLQCodes     map[string]int // vendor code of vendor dead letters
	DLQNoReason  int            // entries without a reason header
	DLQUnknown   int            // entries naming no event of the workload
	DLQWorkload  int            // entries of workload (not poison) events
	dlqByEventID map[string]deadLetter
}

// check compares the end state with the workload: per field, the newest
// value is held, or the newest event is dead-lettered and the newest value
// not dead-lettered is held; every poison event is dead-lettered.
func check(w *workload, state friendState, dls []deadLetter) verdict {
	v := verdict{DLQ: len(dls), DLQByReason: map[string]int{}, DLQCodes: map[string]int{}, dlqByEventID: map[string]deadLetter{}}
	index := map[string]int{}
	for i := range w.events {
		index[w.events[i].ev.ID] = i
	}
	for _, d := range dls {
		if d.Reason == "" {
			v.DLQNoReason++
		}
		v.DLQByReason[d.Reason]++
		if d.Code != "" {
			v.DLQCodes[d.Code]++
		}
		i, ok := index[d.EventID]
		switch {
		case !ok:
			v.DLQUnknown++
		case w.events[i].poison == "":
			v.DLQWorkload++
		}
		if _, dup := v.dlqByEventID[d.EventID]; !dup {
			v.dlqByEventID[d.EventID] = d
		}
	}
	dead := func(i int) bool { _, ok := v.dlqByEventID[w.events[i].ev.ID]; return ok }

	hist := w.histories()
	keys := slices.SortedFunc(maps.Keys(hist), func(a, b fieldKey) int {
		for _, c := range [][2]string{{a.app, b.app}, {a.from, b.from}, {a.to, b.to}, {a.field, b.field}} {
			if c[0] != c[1] {
				if c[0] < c[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	for _, k := range keys {
		idx := hist[k]
		v.Fields++
		f, _ := state(k.app, k.from, k.to)
		got := friendValue(f, k.field)
		newest := idx[len(idx)-1]
		want := w.valueOf(newest, k.field)
		if got == want {
			v.Applied++
			continue
		}
		kind := lostUpdate
		if dead(newest) {
			fallback := "" // nothing not dead-lettered: the field was never set
			for j := len(idx) - 1; j >= 0; j-- {
				if !dead(idx[j]) {
					fallback = w.valueOf(idx[j], k.field)
					break
				}
			}
			if got == fallback {
				v.DeadLettered++
				continue
			}
			kind, want = wrongFallback, fallback
		}
		writer := -1
		for j := len(idx) - 1; j >= 0; j-- {
			if w.valueOf(idx[j], k.field) == got {
				writer = idx[j]
				break
			}
		}
		v.Violations = append(v.Violations, violation{Kind: kind, Key: k, Want: want, Got: got,
			Newest: newest, Writer: writer, History: idx})
	}

	for i := range w.events {
		p := &w.events[i]
		if p.poison == "" {
			continue
		}
		v.Poison++
		d, ok := v.dlqByEventID[p.ev.ID]
		switch {
		case !ok:
			v.PoisonMissing = append(v.PoisonMissing, p.poison+" "+p.ev.ID)
		case !slices.Contains(poisonReasons[p.poison], d.Reason):
			v.PoisonReason = append(v.PoisonReason, fmt.Sprintf("%s %s: reason %q, want one of %q", p.poison, p.ev.ID, d.Reason, poisonReasons[p.poison]))
		}
	}
	return v
}

// clean reports whether the end state holds every invariant of check.
func (v verdict) clean() bool {
	return len(v.Violations) == 0 && len(v.PoisonMissing) == 0 && len(v.PoisonReason) == 0 && v.DLQNoReason == 0
}
