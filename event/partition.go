package event

import (
	"strconv"
	"strings"
)

// Lane separates live traffic from backfills. Workers drain the bulk lane
// only with the rate budget that live traffic leaves.
type Lane string

const (
	LaneLive Lane = "live"
	LaneBulk Lane = "bulk"
)

// Valid reports whether l is a known lane.
func (l Lane) Valid() bool { return l == LaneLive || l == LaneBulk }

// Partition settings shared by producers and workers.
const (
	// PartitionsKey holds the decimal partition count P in the meta bucket. It is
	// written once, when the stream is created, and read by every producer
	// and worker at connect.
	PartitionsKey = "partitions"
	// DefaultPartitions is P for a new stream unless configured otherwise.
	DefaultPartitions = 32
	// MaxPartitions bounds P.
	MaxPartitions = 4096
)

// Partition returns p = fnv1a32(app + "\x00" + from) mod partitions.
// Partitions must be at least 1.
func Partition(app, from string, partitions int) int {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(app); i++ {
		h ^= uint32(app[i])
		h *= prime32
	}
	h ^= 0
	h *= prime32
	for i := 0; i < len(from); i++ {
		h ^= uint32(from[i])
		h *= prime32
	}
	return int(h % uint32(partitions))
}

// Layout derives every stream, subject and bucket name from one base name,
// so that tests (and several deployments on one NATS account) can run side
// by side. The zero Layout and DefaultLayout are the production names.
type Layout struct {
	// Base is a lowercase name of letters, digits, '_' and '-'; "" means
	// "friendsync".
	Base string
}

// DefaultLayout is the production layout: streams FRIENDSYNC_P<p>,
// subjects friendsync.ev.<lane>.<p>, bucket friendsync-meta.
var DefaultLayout = Layout{Base: "friendsync"}

func (l Layout) base() string {
	if l.Base == "" {
		return DefaultLayout.Base
	}
	return l.Base
}

// StreamBase is the upper-cased base (FRIENDSYNC) that every stream name
// of the layout starts with. No stream has this name: the events of
// partition p live in PartitionStream(p), dead letters in StreamBase()+"_DLQ".
func (l Layout) StreamBase() string { return strings.ToUpper(strings.ReplaceAll(l.base(), "-", "_")) }

// PartitionStream is the events stream of partition p, <STREAM>_P<p>
// (FRIENDSYNC_P7). It holds both lanes of p: subjects
// PartitionSubjects(p). One stream per partition keeps the server's cost
// per message flat in P (one stream with a filtered consumer per lane and
// partition cost nats-server 1.5x per message, docs/BENCHMARKS.md).
func (l Layout) PartitionStream(p int) string {
	return l.StreamBase() + "_P" + strconv.Itoa(p)
}

// ParsePartitionStream returns the partition of a PartitionStream name.
func (l Layout) ParsePartitionStream(name string) (int, bool) {
	ps, ok := strings.CutPrefix(name, l.StreamBase()+"_P")
	if !ok || ps == "" || (len(ps) > 1 && ps[0] == '0') {
		return 0, false
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p >= MaxPartitions {
		return 0, false
	}
	return p, true
}

// SubjectPrefix is <base>.ev.
func (l Layout) SubjectPrefix() string { return l.base() + ".ev" }

// Subjects is the filter of every event subject, <base>.ev.>.
func (l Layout) Subjects() string { return l.SubjectPrefix() + ".>" }

// PartitionSubjects is the subject filter of partition p's stream,
// <base>.ev.*.<p>.
func (l Layout) PartitionSubjects(p int) string { return l.SubjectPrefix() + ".*." + strconv.Itoa(p) }

// MetaBucket is the KV bucket with stream-wide settings, <base>-meta.
func (l Layout) MetaBucket() string { return l.base() + "-meta" }

// Subject returns <base>.ev.<lane>.<p>.
func (l Layout) Subject(lane Lane, p int) string {
	prefix := l.SubjectPrefix()
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(lane) + 1 + 4)
	b.WriteString(prefix)
	b.WriteByte('.')
	b.WriteString(string(lane))
	b.WriteByte('.')
	b.WriteString(strconv.Itoa(p))
	return b.String()
}

// SubjectFor returns the subject of e on lane with P partitions.
func (l Layout) SubjectFor(e *Event, lane Lane, partitions int) string {
	return l.Subject(lane, Partition(e.App, e.From, partitions))
}

// ParseSubject splits <base>.ev.<lane>.<p> into its lane and partition.
func (l Layout) ParseSubject(subject string) (Lane, int, bool) {
	rest, ok := strings.CutPrefix(subject, l.SubjectPrefix()+".")
	if !ok {
		return "", 0, false
	}
	lane, ps, ok := strings.Cut(rest, ".")
	if !ok || !Lane(lane).Valid() {
		return "", 0, false
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p >= MaxPartitions {
		return "", 0, false
	}
	return Lane(lane), p, true
}

// Subject returns friendsync.ev.<lane>.<p> in the default layout.
func Subject(lane Lane, p int) string { return DefaultLayout.Subject(lane, p) }

// ParseSubject parses a subject of the default layout.
func ParseSubject(subject string) (Lane, int, bool) { return DefaultLayout.ParseSubject(subject) }
