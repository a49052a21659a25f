package enqueue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
)

// CSV columns. app, from and to are required in the header; the others are
// optional and may come in any order.
const (
	colApp = iota
	colFrom
	colTo
	colRemark
	colGroups
	colAttrs
	colTS
	colID
	numCols
)

var colNames = [numCols]string{"app", "from", "to", "remark", "groups", "attrs", "ts", "id"}

// clearToken is the cell value that clears a remark or an attribute: the
// two characters `""`, which a spreadsheet writes to the file as `""""""`.
// An empty cell leaves the field unchanged.
const clearToken = `""`

// csvHeader maps each known column to its index in a record (-1: absent).
type csvHeader [numCols]int

// parseCSVHeader reads the header row.
func parseCSVHeader(rec []string) (csvHeader, error) {
	var h csvHeader
	for i := range h {
		h[i] = -1
	}
	for i, name := range rec {
		name = strings.ToLower(strings.TrimSpace(name))
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a spreadsheet's byte order mark
		}
		found := false
		for c, cn := range colNames {
			if name == cn {
				if h[c] >= 0 {
					return h, fmt.Errorf("header: column %q appears twice", name)
				}
				h[c] = i
				found = true
				break
			}
		}
		if !found {
			return h, fmt.Errorf("header: unknown column %q (want %s)", name, strings.Join(colNames[:], ", "))
		}
	}
	for _, c := range []int{colApp, colFrom, colTo} {
		if h[c] < 0 {
			return h, fmt.Errorf("header: missing column %q (a header row naming the columns is required: %s)", colNames[c], strings.Join(colNames[:], ","))
		}
	}
	return h, nil
}

// parseCSVRecord turns one CSV record into an event. Cell semantics:
//
//   - an empty cell: the field is absent (unchanged);
//   - remark: the text; the literal `""` clears the remark;
//   - groups: names separated by '|'; the literal `[]` clears the groups;
//   - attrs: key=value pairs separated by ';'; `key=` or `key=""` clears
//     that attribute;
//   - ts: Unix nanoseconds or an RFC 3339 time;
//   - in groups and attrs a backslash escapes the next character, so
//     `\|`, `\;`, `\=` and `\\` stand for themselves.
func parseCSVRecord(h csvHeader, rec []string) (event.Event, error) {
	cell := func(c int) string {
		if h[c] < 0 || h[c] >= len(rec) {
			return ""
		}
		return rec[h[c]]
	}
	ev := event.Event{App: cell(colApp), From: cell(colFrom), To: cell(colTo), ID: cell(colID)}
	switch r := cell(colRemark); r {
	case "":
	case clearToken:
		ev.Remark = event.Ptr("")
	default:
		ev.Remark = event.Ptr(r)
	}
	switch g := cell(colGroups); g {
	case "":
	case "[]":
		ev.Groups = &[]string{}
	default:
		parts, err := splitEscaped(g, '|')
		if err != nil {
			return ev, fmt.Errorf("groups: %w", err)
		}
		ev.Groups = &parts
	}
	if a := cell(colAttrs); a != "" {
		attrs, err := parseAttrs(a)
		if err != nil {
			return ev, fmt.Errorf("attrs: %w", err)
		}
		ev.Attrs = attrs
	}
	if s := cell(colTS); s != "" {
		ts, err := parseTS(s)
		if err != nil {
			return ev, err
		}
		ev.TS = ts
	}
	return ev, nil
}

// parseAttrs parses k=v;k2=v2.
func parseAttrs(s string) (map[string]string, error) {
	pairs, err := splitEscaped(s, ';')
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		if p == "" {
			continue // a trailing or doubled ';'
		}
		// splitEscaped removed the escapes, so split the raw pair again on
		// an unescaped '='.
		k, v, ok := strings.Cut(p, "\x00")
		if !ok {
			return nil, fmt.Errorf("pair %q has no '=' (write key=value; key= clears)", strings.ReplaceAll(p, "\x00", "="))
		}
		if k == "" {
			return nil, fmt.Errorf("pair %q has an empty key", "="+v)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %q appears twice", k)
		}
		if v == clearToken {
			v = ""
		}
		m[k] = v
	}
	if len(m) == 0 {
		return nil, errors.New("no key=value pair")
	}
	return m, nil
}

// splitEscaped splits s on unescaped sep and removes the backslash escapes.
// For attrs (sep ';') the first unescaped '=' of each part is replaced by
// NUL so the caller can split key and value after unescaping; a NUL in
// the input is rejected.
func splitEscaped(s string, sep byte) ([]string, error) {
	var (
		parts []string
		b     strings.Builder
		eq    bool // an unescaped '=' was marked in this part
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			return nil, errors.New("contains a NUL byte")
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New(`ends with a lone '\' (write \\ for a backslash)`)
			}
			i++
			if s[i] == 0 {
				return nil, errors.New("contains a NUL byte")
			}
			b.WriteByte(s[i])
		case c == sep:
			parts = append(parts, b.String())
			b.Reset()
			eq = false
		case c == '=' && sep == ';' && !eq:
			b.WriteByte(0)
			eq = true
		default:
			b.WriteByte(c)
		}
	}
	return append(parts, b.String()), nil
}

// minTS is 2001-09-09 in Unix nanoseconds: a smaller positive ts is almost
// certainly seconds or milliseconds, and as a version it would lose to
// every live update.
const minTS = 1_000_000_000_000_000_000

// parseTS reads Unix nanoseconds or an RFC 3339 time.
func parseTS(s string) (int64, error) {
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("ts: %q is not Unix nanoseconds (want an integer or RFC 3339)", s)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("ts: %q is neither Unix nanoseconds nor RFC 3339", s)
	}
	if t.Year() < 1970 || t.Year() > 2262 {
		return 0, fmt.Errorf("ts: %q is out of range", s)
	}
	return t.UnixNano(), nil
}
