package deliver

import (
	"strings"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
	"github.com/friendsync/friendsync/internal/vendors"
)

type fieldKind uint8

const (
	fieldRemark fieldKind = iota
	fieldGroups
	fieldAttr
)

// slotKey names one (to, field) of the batch: the item index of the To and
// the field.
type slotKey struct {
	item int32
	kind fieldKind
	attr string
}

// slot is one (to, field) the batch touches.
type slot struct {
	key    slotKey
	stored jobs.Version // last applied (from Versions.Load)
	winner int32        // env index of the newest value, -1: none newer than stored
	ver    jobs.Version // the winner's version
	res    jobs.Outcome // what happened to the winner's value (Kind 0: not sent)
}

// ref is one field of one env.
type ref struct {
	slot       int32
	superseded bool // not newer than the stored version
}

type envState struct {
	valid      bool
	item       int32
	start, end int32 // its refs
	ver        jobs.Version
}

// batch is the working state of one Deliver, pooled to keep allocations
// per event low.
type batch struct {
	items     map[string]int32 // To → item index
	slotIndex map[slotKey]int32
	tos       []string   // item index → To
	fixed     [][2]int32 // item index → slot of its remark and groups (-1: none)
	attrMaps  []map[string]string
	attrUsed  int
	slots     []slot
	names     []string // slot index → "<to>/<field>"
	refs      []ref
	envs      []envState
	nameBuf   strings.Builder
	lane      event.Lane
	partition int
	warmed    int64

	vitems     []vendors.Item // item index → merged item
	hasWinner  []bool
	send       []vendors.Item // the items handed to Split
	itemEvents []int32
	callRes    []jobs.Outcome
	pending    []int
	sub        []vendors.Item
	raiseNames []string
	raiseVers  []jobs.Version
}

func newBatch() *batch {
	return &batch{items: make(map[string]int32), slotIndex: make(map[slotKey]int32)}
}

// reset clears the batch for reuse, dropping references to the previous
// batch's events.
func (b *batch) reset() {
	clear(b.items)
	clear(b.slotIndex)
	clear(b.tos)
	b.tos = b.tos[:0]
	b.fixed = b.fixed[:0]
	for _, m := range b.attrMaps[:b.attrUsed] {
		clear(m)
	}
	b.attrUsed = 0
	clear(b.slots)
	b.slots = b.slots[:0]
	clear(b.names)
	b.names = b.names[:0]
	b.refs = b.refs[:0]
	b.envs = b.envs[:0]
	b.lane = event.LaneBulk
	b.partition = 0
	clear(b.vitems)
	b.vitems = b.vitems[:0]
	b.hasWinner = b.hasWinner[:0]
	clear(b.send)
	b.send = b.send[:0]
	b.itemEvents = b.itemEvents[:0]
	clear(b.sub)
	clear(b.raiseNames)
	b.raiseNames = b.raiseNames[:0]
}

func fieldName(k slotKey) (prefix, attr string) {
	switch k.kind {
	case fieldRemark:
		return event.FieldRemark, ""
	case fieldGroups:
		return event.FieldGroups, ""
	default:
		return event.AttrFieldPrefix, k.attr
	}
}

// collect indexes the fields of every valid env and names the slots for
// Versions.Load. Invalid envs get their outcome in out.
func (b *batch) collect(key jobs.Key, envs []*jobs.Envelope, out []jobs.Outcome) {
	if cap(b.envs) < len(envs) {
		b.envs = make([]envState, len(envs))
	}
	b.envs = b.envs[:len(envs)]
	b.warm(envs)
	first := true
	for i, e := range envs {
		b.envs[i] = envState{}
		if e == nil {
			out[i] = jobs.Outcome{Kind: jobs.Invalid, Reason: "nil envelope"}
			continue
		}
		ev := &e.Event
		if ev.App != key.App || ev.From != key.From {
			out[i] = jobs.Outcome{Kind: jobs.Invalid, Reason: reasonOtherKey}
			continue
		}
		if ev.Remark == nil && ev.Groups == nil && len(ev.Attrs) == 0 {
			out[i] = jobs.Outcome{Kind: jobs.Invalid, Reason: reasonNothing}
			continue
		}
		v := e.Version
		if v.IsZero() {
			v = jobs.VersionOf(ev, e.Meta)
		}
		if v.TS <= 0 { // neither ts nor a publish time
			out[i] = jobs.Outcome{Kind: jobs.Invalid, Reason: reasonNoVersion}
			continue
		}
		// Live unless every event is on the bulk lane (an unknown lane
		// counts as live: never starve it behind the bulk reserve).
		if b.lane != event.LaneLive && e.Meta.Lane != event.LaneBulk {
			b.lane = event.LaneLive
		}
		if first {
			b.partition = e.Meta.Partition
			first = false
		}
		item, ok := b.items[ev.To]
		if !ok {
			item = int32(len(b.tos))
			b.items[ev.To] = item
			b.tos = append(b.tos, ev.To)
			b.fixed = append(b.fixed, [2]int32{-1, -1})
		}
		st := envState{valid: true, item: item, start: int32(len(b.refs)), ver: v}
		if ev.Remark != nil {
			b.refs = append(b.refs, ref{slot: b.slotOf(slotKey{item: item, kind: fieldRemark})})
		}
		if ev.Groups != nil {
			b.refs = append(b.refs, ref{slot: b.slotOf(slotKey{item: item, kind: fieldGroups})})
		}
		if len(ev.Attrs) > 0 { // ranging over a nil map still costs a call
			for k := range ev.Attrs {
				b.refs = append(b.refs, ref{slot: b.slotOf(slotKey{item: item, kind: fieldAttr, attr: k})})
			}
		}
		st.end = int32(len(b.refs))
		b.envs[i] = st
	}
	if len(b.slots) == 0 {
		return
	}
	// All names in one string: one allocation for the whole batch.
	n := 0
	for i := range b.slots {
		p, a := fieldName(b.slots[i].key)
		n += len(b.tos[b.slots[i].key.item]) + 1 + len(p) + len(a)
	}
	b.nameBuf.Reset()
	b.nameBuf.Grow(n)
	for i := range b.slots {
		p, a := fieldName(b.slots[i].key)
		b.nameBuf.WriteString(b.tos[b.slots[i].key.item])
		b.nameBuf.WriteByte('/')
		b.nameBuf.WriteString(p)
		b.nameBuf.WriteString(a)
	}
	all := b.nameBuf.String()
	off := 0
	for i := range b.slots {
		p, a := fieldName(b.slots[i].key)
		l := len(b.tos[b.slots[i].key.item]) + 1 + len(p) + len(a)
		b.names = append(b.names, all[off:off+l])
		off += l
	}
}

// warm reads the parts of every envelope collect uses in one pass of
// independent loads, so that the processor fetches the (usually cold)
// envelopes in parallel instead of one miss at a time in the dependent
// loop that follows.
func (b *batch) warm(envs []*jobs.Envelope) {
	var n int64
	for _, e := range envs {
		if e != nil {
			n += int64(len(e.Event.From)+len(e.Event.Attrs)) + e.Event.TS + e.Version.TS
		}
	}
	b.warmed = n // keeps the loads
}

// slotOf returns the slot of k, adding it if needed.
func (b *batch) slotOf(k slotKey) int32 {
	if s, ok := b.find(k); ok {
		return s
	}
	s := int32(len(b.slots))
	if k.kind == fieldAttr {
		b.slotIndex[k] = s
	} else {
		b.fixed[k.item][k.kind] = s
	}
	b.slots = append(b.slots, slot{key: k, winner: -1})
	return s
}

// find returns the slot of k. Remark and groups slots are found without
// hashing: they are the common case.
func (b *batch) find(k slotKey) (int32, bool) {
	if k.kind != fieldAttr {
		s := b.fixed[k.item][k.kind]
		return s, s >= 0
	}
	s, ok := b.slotIndex[k]
	return s, ok
}

// attrMap returns an empty map for an item's attributes, reused across
// batches (a Sender must not retain items).
func (b *batch) attrMap() map[string]string {
	if b.attrUsed < len(b.attrMaps) {
		b.attrUsed++
		return b.attrMaps[b.attrUsed-1]
	}
	m := make(map[string]string, 1)
	b.attrMaps = append(b.attrMaps, m)
	b.attrUsed++
	return m
}

// fillValid sets o for every env collect accepted.
func (b *batch) fillValid(out []jobs.Outcome, o jobs.Outcome) {
	for i := range b.envs {
		if b.envs[i].valid {
			out[i] = o
		}
	}
}

// merge marks the fields whose version is not newer than the stored one
// and picks, per slot, the newest remaining value (Version.Less breaks ties
// by stream sequence). It returns the number of field values that will not
// be sent.
func (b *batch) merge(stored []jobs.Version) int {
	for i := range b.slots {
		b.slots[i].stored = stored[i]
	}
	dropped := 0
	for i := range b.envs {
		st := &b.envs[i]
		if !st.valid {
			continue
		}
		for r := st.start; r < st.end; r++ {
			s := &b.slots[b.refs[r].slot]
			if !s.stored.Less(st.ver) {
				b.refs[r].superseded = true // equal: this very value was applied
				dropped++
				continue
			}
			if s.winner < 0 {
				s.winner, s.ver = int32(i), st.ver
				continue
			}
			dropped++ // one of the two values loses
			if s.ver.Less(st.ver) {
				s.winner, s.ver = int32(i), st.ver
			}
		}
	}
	return dropped
}

// buildItems makes one item per To with the winning values, in order of
// first appearance. Ref is the item index.
func (b *batch) buildItems(envs []*jobs.Envelope) []vendors.Item {
	n := len(b.tos)
	if cap(b.vitems) < n {
		b.vitems = make([]vendors.Item, n)
		b.hasWinner = make([]bool, n)
	}
	b.vitems = b.vitems[:n]
	b.hasWinner = b.hasWinner[:n]
	for i := range b.hasWinner {
		b.hasWinner[i] = false
	}
	for i := range b.slots {
		s := &b.slots[i]
		if s.winner < 0 {
			continue
		}
		ev := &envs[s.winner].Event
		it := &b.vitems[s.key.item]
		if !b.hasWinner[s.key.item] {
			b.hasWinner[s.key.item] = true
			*it = vendors.Item{Ref: int(s.key.item), To: b.tos[s.key.item]}
		}
		switch s.key.kind {
		case fieldRemark:
			it.Remark = ev.Remark
		case fieldGroups:
			it.Groups = ev.Groups
		default:
			if it.Attrs == nil {
				it.Attrs = b.attrMap()
			}
			it.Attrs[s.key.attr] = ev.Attrs[s.key.attr]
		}
	}
	for i := range b.vitems {
		if b.hasWinner[i] {
			b.send = append(b.send, b.vitems[i])
		}
	}
	return b.send
}

// apply records the outcome of one call item for the fields it carried.
func (b *batch) apply(ci *vendors.Item, o *jobs.Outcome) {
	if ci.Ref < 0 || ci.Ref >= len(b.tos) {
		return
	}
	item := int32(ci.Ref)
	if ci.Remark != nil {
		b.applySlot(slotKey{item: item, kind: fieldRemark}, o)
	}
	if ci.Groups != nil {
		b.applySlot(slotKey{item: item, kind: fieldGroups}, o)
	}
	if len(ci.Attrs) > 0 {
		for k := range ci.Attrs {
			b.applySlot(slotKey{item: item, kind: fieldAttr, attr: k}, o)
		}
	}
}

func (b *batch) applySlot(k slotKey, o *jobs.Outcome) {
	s, ok := b.find(k)
	if !ok || b.slots[s].winner < 0 {
		return
	}
	if r := &b.slots[s].res; r.Kind == 0 || (r.Kind != o.Kind && jobs.Worse(*r, *o).Kind == o.Kind) {
		*r = *o
	}
}

// markUnsent gives every winning value no call carried an Invalid outcome:
// the vendor cannot store that field (validation should have caught it).
func (b *batch) markUnsent() {
	for i := range b.slots {
		s := &b.slots[i]
		if s.winner >= 0 && s.res.Kind == 0 {
			s.res = jobs.Outcome{Kind: jobs.Invalid, Reason: reasonUnsupported}
		}
	}
}

var (
	outcomeStored = jobs.Outcome{Kind: jobs.Superseded, Reason: reasonStored}
	outcomeMerged = jobs.Outcome{Kind: jobs.Superseded, Reason: reasonMerged}
)

// finish combines every valid env's field outcomes with jobs.Worse.
func (b *batch) finish(out []jobs.Outcome, m *Metrics) {
	if cap(b.itemEvents) < len(b.tos) {
		b.itemEvents = make([]int32, len(b.tos))
	}
	b.itemEvents = b.itemEvents[:len(b.tos)]
	clear(b.itemEvents)
	for i := range b.envs {
		st := &b.envs[i]
		if !st.valid {
			continue
		}
		var o *jobs.Outcome // points into slots or at the fixed outcomes below
		linked := false
		for r := st.start; r < st.end; r++ {
			var f *jobs.Outcome
			if b.refs[r].superseded {
				f = &outcomeStored
			} else {
				linked = true
				s := &b.slots[b.refs[r].slot]
				f = &s.res
				if s.winner != int32(i) && s.res.Kind == jobs.Applied {
					f = &outcomeMerged
				}
			}
			if o == nil || (f.Kind != o.Kind && jobs.Worse(*o, *f).Kind == f.Kind) {
				o = f
			}
		}
		if linked {
			b.itemEvents[st.item]++
		}
		out[i] = *o
	}
	for i, n := range b.itemEvents {
		if n > 0 && b.hasWinner[i] {
			m.itemEvents.Observe(float64(n))
		}
	}
}
