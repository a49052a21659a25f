package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// SchemaVersion is the contract version this package writes and accepts.
const SchemaVersion = 1

// Event is one friend update: set some metadata that From keeps about To.
//
// JSON names are the contract (docs/CONTRACT.md, docs/event.schema.json).
type Event struct {
	// Schema is the contract version; 0 or absent means 1.
	Schema int `json:"schema,omitempty"`
	// ID is the producer's idempotency key, used as Nats-Msg-Id. When it is
	// empty the producer library generates a random one; it is never derived
	// from the content.
	ID string `json:"id,omitempty"`
	// App names a configured vendor profile (vendor kind, credentials, limits).
	App string `json:"app"`
	// From is the account whose friend list is updated (Tencent From_Account).
	From string `json:"from"`
	// To is the friend being updated (Tencent To_Account).
	To string `json:"to"`
	// Remark is the remark / alias. nil: unchanged; "": cleared.
	Remark *string `json:"remark,omitempty"`
	// Groups is the friend's group list. nil: unchanged; empty: cleared.
	Groups *[]string `json:"groups,omitempty"`
	// Attrs are custom friend attributes. A missing key is unchanged; a key
	// with value "" is cleared.
	Attrs map[string]string `json:"attrs,omitempty"`
	// TS is the version in Unix nanoseconds; 0 means "use the publish time".
	TS int64 `json:"ts,omitempty"`
}

// Field names used for merging and versions. An attribute's field is
// AttrFieldPrefix + key.
const (
	FieldRemark     = "remark"
	FieldGroups     = "groups"
	AttrFieldPrefix = "attr:"
)

// Fields lists the fields the event sets, in a stable order: remark,
// groups, then attributes sorted by key.
func (e *Event) Fields() []string {
	var fs []string
	if e.Remark != nil {
		fs = append(fs, FieldRemark)
	}
	if e.Groups != nil {
		fs = append(fs, FieldGroups)
	}
	if len(e.Attrs) > 0 {
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fs = append(fs, AttrFieldPrefix+k)
		}
	}
	return fs
}

// Decode parses one event strictly: unknown fields, trailing data and
// values of the wrong type are errors. It does not validate; call
// Validate or ValidateFor. The common shape (the contract's lowercase keys,
// ASCII strings without escapes, integer numbers) takes a parser about six
// times faster than encoding/json; everything else, including every error,
// goes through encoding/json (FuzzDecodeFast checks that both agree).
func Decode(data []byte) (Event, error) {
	if e, ok := decodeFast(data); ok {
		return e, nil
	}
	return decodeJSON(data)
}

// decodeJSON is Decode's definition: encoding/json, strict. decodeFast
// only takes a shortcut for inputs on which it agrees with decodeJSON.
func decodeJSON(data []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("event: decode: %w", err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("event: decode: trailing data after the event object")
	}
	// A JSON null inside groups would decode as "", which the vendor would
	// reject later with a less helpful message; Validate catches "" too.
	return e, nil
}

// Encode returns the canonical JSON form of e.
func Encode(e *Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event: encode: %w", err)
	}
	return b, nil
}

// Ptr returns a pointer to v; handy for Remark and Groups literals.
func Ptr[T any](v T) *T { return &v }
