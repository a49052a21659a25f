package versions

import (
	"container/list"

	"github.com/friendsync/friendsync/internal/jobs"
)

// cache is the bounded write-through copy of versions seen while Redis
// answered (and raised since). A field present in an entry is known: its
// version, or the zero Version when Redis had none. Values only rise. Not
// safe for concurrent use; Store guards it.
type cache struct {
	max  int // fields
	size int
	m    map[jobs.Key]*list.Element
	lru  *list.List // front: most recently used; values *entry
}

type entry struct {
	key    jobs.Key
	fields map[string]jobs.Version
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[jobs.Key]*list.Element), lru: list.New()}
}

// merge raises the cached fields of key to vs (never lowers) and marks the
// key recently used, then evicts least recently used keys over the bound.
// The key just merged is never evicted by its own merge.
func (c *cache) merge(key jobs.Key, fields []string, vs []jobs.Version) {
	el, ok := c.m[key]
	if !ok {
		el = c.lru.PushFront(&entry{key: key, fields: make(map[string]jobs.Version, len(fields))})
		c.m[key] = el
	} else {
		c.lru.MoveToFront(el)
	}
	e := el.Value.(*entry)
	for i, f := range fields {
		cur, ok := e.fields[f]
		if !ok {
			c.size++
		}
		if !ok || cur.Less(vs[i]) {
			e.fields[f] = vs[i]
		}
	}
	for c.size > c.max && c.lru.Len() > 1 {
		c.remove(c.lru.Back())
	}
}

// raise raises the fields of key that are already cached; it adds none.
func (c *cache) raise(key jobs.Key, fields []string, vs []jobs.Version) {
	el, ok := c.m[key]
	if !ok {
		return
	}
	e := el.Value.(*entry)
	for i, f := range fields {
		if cur, ok := e.fields[f]; ok && cur.Less(vs[i]) {
			e.fields[f] = vs[i]
		}
	}
}

// lookup returns the cached versions of fields and whether every one of
// them is cached.
func (c *cache) lookup(key jobs.Key, fields []string) ([]jobs.Version, bool) {
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	vs := make([]jobs.Version, len(fields))
	for i, f := range fields {
		v, ok := e.fields[f]
		if !ok {
			return nil, false
		}
		vs[i] = v
	}
	c.lru.MoveToFront(el)
	return vs, true
}

// get returns one cached field.
func (c *cache) get(key jobs.Key, field string) (jobs.Version, bool) {
	el, ok := c.m[key]
	if !ok {
		return jobs.Version{}, false
	}
	v, ok := el.Value.(*entry).fields[field]
	return v, ok
}

// forget drops every key keep rejects.
func (c *cache) forget(keep func(jobs.Key) bool) {
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if !keep(el.Value.(*entry).key) {
			c.remove(el)
		}
		el = next
	}
}

func (c *cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.m, e.key)
	c.size -= len(e.fields)
}
