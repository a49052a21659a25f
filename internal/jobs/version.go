package jobs

import (
	"fmt"
	"strconv"
)

// Version orders writes to one (app, from, to, field): the event's ts, else
// its publish time, both in Unix nanoseconds; ties go to the higher stream
// sequence.
type Version struct {
	TS  int64
	Seq uint64
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.TS != w.TS {
		return v.TS < w.TS
	}
	return v.Seq < w.Seq
}

// IsZero reports whether v is the zero version (nothing applied).
func (v Version) IsZero() bool { return v.TS == 0 && v.Seq == 0 }

// versionLen is the width of the encoded form: 19 digits of ts, '.', 20
// digits of seq. Fixed width makes byte order equal version order, so a
// Redis Lua script can compare encoded versions as strings (Lua numbers are
// doubles and cannot hold nanosecond timestamps exactly).
const versionLen = 19 + 1 + 20

// String returns the fixed-width, order-preserving encoding of v.
func (v Version) String() string {
	return fmt.Sprintf("%019d.%020d", v.TS, v.Seq)
}

// ParseVersion reverses Version.String.
func ParseVersion(s string) (Version, error) {
	if len(s) != versionLen || s[19] != '.' {
		return Version{}, fmt.Errorf("jobs: parse version %q: want %d characters ts.seq", s, versionLen)
	}
	ts, err := strconv.ParseInt(s[:19], 10, 64)
	if err != nil || ts < 0 {
		return Version{}, fmt.Errorf("jobs: parse version %q: bad ts", s)
	}
	seq, err := strconv.ParseUint(s[20:], 10, 64)
	if err != nil {
		return Version{}, fmt.Errorf("jobs: parse version %q: bad seq", s)
	}
	return Version{TS: ts, Seq: seq}, nil
}
