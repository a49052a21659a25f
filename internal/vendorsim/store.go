package vendorsim

import (
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/friendsync/friendsync/event"
)

// Friend is the data stored for one (vendor, app, from, to).
type Friend struct {
	Remark string            `json:"remark"`
	Groups []string          `json:"groups,omitempty"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	// Added is true when the pair was made friends with AddFriends.
	Added bool `json:"added,omitempty"`
	// Updates counts the items applied to this friend.
	Updates int `json:"updates"`
}

func (f *Friend) clone() Friend {
	c := *f
	c.Groups = slices.Clone(f.Groups)
	c.Attrs = maps.Clone(f.Attrs)
	return c
}

// change is one item's validated update; nil pointers leave a field as it
// is, "" clears the remark, an empty groups list clears the groups, an
// attribute value "" deletes the attribute.
type change struct {
	to     string
	remark *string
	groups *[]string
	attrs  map[string]string
	// fail, when non-empty, is the item's failure code (not applied).
	fail string
	msg  string
}

func (c *change) applyTo(f *Friend) {
	if c.remark != nil {
		f.Remark = *c.remark
	}
	if c.groups != nil {
		if len(*c.groups) == 0 {
			f.Groups = nil
		} else {
			f.Groups = slices.Clone(*c.groups)
		}
	}
	for k, v := range c.attrs {
		if v == "" {
			delete(f.Attrs, k)
			continue
		}
		if f.Attrs == nil {
			f.Attrs = map[string]string{}
		}
		f.Attrs[k] = v
	}
	if len(f.Attrs) == 0 {
		f.Attrs = nil
	}
	f.Updates++
}

type acctKey struct {
	vendor    event.Vendor
	app, from string
}

type account struct {
	inflight int
	friends  map[string]*Friend
}

const shardCount = 128

type shard struct {
	mu       sync.Mutex
	accounts map[acctKey]*account
}

// store is the friend state, sharded by account so that calls for
// different accounts rarely share a lock.
type store struct {
	seed    maphash.Seed
	shards  [shardCount]shard
	max     int64
	entries atomic.Int64
	dropped atomic.Int64
}

func newStore(max int) *store {
	s := &store{seed: maphash.MakeSeed(), max: int64(max)}
	for i := range s.shards {
		s.shards[i].accounts = map[acctKey]*account{}
	}
	return s
}

func (s *store) shard(k acctKey) *shard {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(string(k.vendor))
	h.WriteByte(0)
	h.WriteString(k.app)
	h.WriteByte(0)
	h.WriteString(k.from)
	return &s.shards[h.Sum64()%shardCount]
}

// begin marks a write for k as in flight. When another write is in flight
// it reports overlap; the write is then started only if allowOverlap.
func (s *store) begin(k acctKey, allowOverlap bool) (overlap, started bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[k]
	if a == nil {
		a = &account{}
		sh.accounts[k] = a
	}
	overlap = a.inflight > 0
	if overlap && !allowOverlap {
		return true, false
	}
	a.inflight++
	return overlap, true
}

// end applies the changes of a write begun with begin and marks it done.
// It sets fail on each change whose pair is not friends (when
// requireFriend) and reports how many changes were applied.
func (s *store) end(k acctKey, changes []change, requireFriend bool, notFriendCode, notFriendMsg string) (applied int) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[k]
	if a == nil { // Reset ran meanwhile
		a = &account{inflight: 1}
		sh.accounts[k] = a
	}
	for i := range changes {
		c := &changes[i]
		if c.fail != "" {
			continue
		}
		f := a.friends[c.to]
		if requireFriend && (f == nil || !f.Added) {
			c.fail, c.msg = notFriendCode, notFriendMsg
			continue
		}
		if f == nil {
			f = s.newEntry(a, c.to)
		}
		if f != nil {
			c.applyTo(f)
		}
		applied++
	}
	a.inflight--
	if a.inflight <= 0 && len(a.friends) == 0 {
		delete(sh.accounts, k)
	}
	return applied
}

// newEntry stores an empty friend entry, or returns nil (and counts a
// drop) when the store is full. The caller holds the shard lock.
func (s *store) newEntry(a *account, to string) *Friend {
	if s.entries.Add(1) > s.max {
		s.entries.Add(-1)
		s.dropped.Add(1)
		return nil
	}
	if a.friends == nil {
		a.friends = map[string]*Friend{}
	}
	f := &Friend{}
	a.friends[to] = f
	return f
}

func (s *store) addFriends(k acctKey, tos []string) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[k]
	if a == nil {
		a = &account{}
		sh.accounts[k] = a
	}
	for _, to := range tos {
		f := a.friends[to]
		if f == nil {
			f = s.newEntry(a, to)
		}
		if f != nil {
			f.Added = true
		}
	}
	if a.inflight <= 0 && len(a.friends) == 0 {
		delete(sh.accounts, k)
	}
}

func (s *store) get(k acctKey, to string) (Friend, bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[k]
	if a == nil || a.friends[to] == nil {
		return Friend{}, false
	}
	return a.friends[to].clone(), true
}

// list returns up to limit friends of k and whether more exist.
func (s *store) list(k acctKey, limit int) (map[string]Friend, bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := map[string]Friend{}
	a := sh.accounts[k]
	if a == nil {
		return out, false
	}
	for _, to := range slices.Sorted(maps.Keys(a.friends)) {
		if len(out) == limit {
			return out, true
		}
		out[to] = a.friends[to].clone()
	}
	return out, false
}

// reset drops every friend entry; writes in flight stay marked.
func (s *store) reset() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, a := range sh.accounts {
			s.entries.Add(-int64(len(a.friends)))
			a.friends = nil
			if a.inflight <= 0 {
				delete(sh.accounts, k)
			}
		}
		sh.mu.Unlock()
	}
	s.dropped.Store(0)
}
