package vendorsim

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The request parsers read JSON through these helpers rather than struct
// tags: encoding/json matches field names case-insensitively, and a strict
// simulator must notice a client that sends "from_account" for
// "From_Account". Keys are matched exactly; unknown keys are ignored.

type jobject map[string]json.RawMessage

// asObject decodes raw as a JSON object (not null).
func asObject(raw json.RawMessage) (jobject, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var o jobject
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, false
	}
	return o, true
}

// asArray decodes raw as a JSON array (not null).
func asArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, false
	}
	return a, true
}

// asString decodes raw as a JSON string (not null, not a number).
func asString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// asInt decodes raw as a JSON integer literal that fits int64 (no
// fraction, no exponent, no quotes).
func asInt(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// absent reports whether a field is missing or null.
func absent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
