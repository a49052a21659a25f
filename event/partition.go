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

// Stream layout shared by producers and workers.
const (
	// Stream is the JetStream stream that holds pending events.
	Stream = "FRIENDSYNC"
	// SubjectPrefix starts every event subject: friendsync.ev.<lane>.<p>.
	SubjectPrefix = "friendsync.ev"
	// MetaBucket is the KV bucket holding stream-wide settings.
	MetaBucket = "friendsync-meta"
	// PartitionsKey holds the decimal partition count P in MetaBucket. It is
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

// Subject returns friendsync.ev.<lane>.<p>.
func Subject(lane Lane, p int) string {
	var b strings.Builder
	b.Grow(len(SubjectPrefix) + 1 + len(lane) + 1 + 4)
	b.WriteString(SubjectPrefix)
	b.WriteByte('.')
	b.WriteString(string(lane))
	b.WriteByte('.')
	b.WriteString(strconv.Itoa(p))
	return b.String()
}

// SubjectFor returns the subject of e on lane with P partitions.
func SubjectFor(e *Event, lane Lane, partitions int) string {
	return Subject(lane, Partition(e.App, e.From, partitions))
}

// ParseSubject splits friendsync.ev.<lane>.<p> into its lane and partition.
func ParseSubject(subject string) (Lane, int, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
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
