package vendorsim

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The request parsers decode a body once into generic values (objects as
// map[string]any, numbers as json.Number) and read fields through these
// helpers rather than struct tags: encoding/json matches struct field names
// case-insensitively, and a strict simulator must notice a client that
// sends "from_account" for "From_Account". Keys are matched exactly;
// unknown keys are ignored; a missing key and null read the same (absent).

type jobject = map[string]any

// parseJSON decodes exactly one JSON value (trailing whitespace only).
func parseJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return nil, false
	}
	return v, true
}

// asObject reads v as a JSON object (not null).
func asObject(v any) (jobject, bool) {
	o, ok := v.(map[string]any)
	return o, ok
}

// asArray reads v as a JSON array (not null).
func asArray(v any) ([]any, bool) {
	a, ok := v.([]any)
	return a, ok
}

// asString reads v as a JSON string (not null, not a number).
func asString(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// asInt reads v as a JSON integer literal that fits int64 (no fraction,
// no exponent, no quotes).
func asInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// absent reports whether a field is missing or null.
func absent(v any) bool { return v == nil }
