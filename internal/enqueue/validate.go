package enqueue

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/friendsync/friendsync/event"
)

// maxFutureTS bounds how far in the future a row's ts may be: a future
// version would win over every live update until then.
const maxFutureTS = 24 * time.Hour

// checker validates events for their apps and fills the backfill ts.
type checker struct {
	rules map[string]event.Rules
	asOf  int64 // ts for rows without one, Unix nanoseconds
	now   time.Time
}

// fill sets the ts of a row without one to the as-of time, so a backfilled
// value never overwrites a newer live one.
func (c *checker) fill(ev *event.Event) {
	if ev.TS == 0 {
		ev.TS = c.asOf
	}
}

// check validates a filled event.
func (c *checker) check(ev *event.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if ev.TS < minTS {
		return &event.FieldError{Field: "ts", Reason: fmt.Sprintf("%d is before 2001 in Unix nanoseconds (seconds or milliseconds?); want nanoseconds", ev.TS)}
	}
	if limit := c.now.Add(maxFutureTS).UnixNano(); ev.TS > limit {
		return &event.FieldError{Field: "ts", Reason: fmt.Sprintf("%s is more than %s in the future; it would win over live updates until then",
			time.Unix(0, ev.TS).UTC().Format(time.RFC3339), maxFutureTS)}
	}
	r, ok := c.rules[ev.App]
	if !ok {
		return &event.FieldError{Field: "app", Reason: fmt.Sprintf("%q has no profile (known apps: %s)", ev.App, c.appNames())}
	}
	return ev.ValidateFor(r)
}

func (c *checker) appNames() string {
	names := make([]string, 0, len(c.rules))
	for n := range c.rules {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > 10 {
		names = append(names[:10], "…")
	}
	return strings.Join(names, ", ")
}

// reason is the one-line text printed after "line N: ".
func reason(err error) string {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		return fe.Field + ": " + fe.Reason
	}
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, "event: decode: "); ok {
		return "invalid JSON: " + rest
	}
	return s
}

// rejectLine is one entry of the reject file (NDJSON).
type rejectLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Text   string `json:"text"`
}

func marshalReject(line int, why, text string) []byte {
	b, _ := json.Marshal(rejectLine{Line: line, Reason: why, Text: text})
	return append(b, '\n')
}
