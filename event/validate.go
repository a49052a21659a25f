package event

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Vendor is the kind of chat platform an app profile talks to.
type Vendor string

const (
	Tencent Vendor = "tencent" // Tencent Cloud Chat, v4/sns/friend_update
	Volc    Vendor = "volc"    // Volcengine RTC IM, UpdateFriend
	Zego    Vendor = "zego"    // ZEGOCLOUD ZIM, UpdateFriendsAlias + UpdateFriendAttributes
)

// Valid reports whether v is a known vendor kind.
func (v Vendor) Valid() bool { return v == Tencent || v == Volc || v == Zego }

// Rules are what validation needs to know about an event's app.
type Rules struct {
	Vendor Vendor
	// VolcAlias lets a Volcengine app set Remark (sent as FriendInfo.Alias,
	// which the current API and SDK accept but the original page does not
	// list). When false a remark for a Volcengine app is an error.
	VolcAlias bool
}

// Documented vendor limits (../docs/CONTRACT.md cites each source).
const (
	MaxIDBytes    = 128 // event id (Nats-Msg-Id)
	MaxAppBytes   = 64
	MaxAttrKeyLen = 64 // our own bound on attribute keys

	TencentMaxAccountBytes = 32
	TencentMaxRemarkBytes  = 96
	TencentMaxGroups       = 32
	TencentMaxGroupBytes   = 30
	TencentMaxAttrBytes    = 500

	ZegoMaxUserIDBytes = 32
	ZegoMaxAliasBytes  = 256
	ZegoMaxAttrBytes   = 1024 // sum of key+value over one friend's attributes

	VolcMaxAliasBytes = 256 // not documented; our conservative bound
	VolcMaxExtBytes   = 1024
)

// ErrInvalid is matched (errors.Is) by every validation error.
var ErrInvalid = errors.New("invalid event")

// FieldError names the field that failed and why.
type FieldError struct {
	Field  string // JSON path, e.g. "remark", "groups[3]", "attrs.k9"
	Reason string
}

func (e *FieldError) Error() string { return "event: " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks what holds for every vendor: schema, required fields,
// UTF-8, at least one field to set. It does not know the app's vendor.
func (e *Event) Validate() error {
	if e.Schema != 0 && e.Schema != SchemaVersion {
		return fieldErr("schema", "unsupported contract version %d (this build reads %d)", e.Schema, SchemaVersion)
	}
	if len(e.ID) > MaxIDBytes {
		return fieldErr("id", "%d bytes exceeds the limit of %d", len(e.ID), MaxIDBytes)
	}
	if e.App == "" {
		return fieldErr("app", "required")
	}
	if len(e.App) > MaxAppBytes || !isName(e.App) {
		return fieldErr("app", "must be 1-%d letters, digits, '-' or '_'", MaxAppBytes)
	}
	if e.From == "" {
		return fieldErr("from", "required")
	}
	if e.To == "" {
		return fieldErr("to", "required")
	}
	if e.From == e.To {
		return fieldErr("to", "equals from; an account cannot be its own friend")
	}
	for _, f := range [...]struct{ name, s string }{{"id", e.ID}, {"from", e.From}, {"to", e.To}} {
		if !utf8.ValidString(f.s) {
			return fieldErr(f.name, "not valid UTF-8")
		}
	}
	if e.Remark == nil && e.Groups == nil && len(e.Attrs) == 0 {
		return fieldErr("remark", "nothing to update: set at least one of remark, groups, attrs")
	}
	if e.Remark != nil && !utf8.ValidString(*e.Remark) {
		return fieldErr("remark", "not valid UTF-8")
	}
	if e.Groups != nil {
		for i, g := range *e.Groups {
			if !utf8.ValidString(g) {
				return fieldErr(fmt.Sprintf("groups[%d]", i), "not valid UTF-8")
			}
		}
	}
	for k, v := range e.Attrs {
		if k == "" {
			return fieldErr("attrs", "empty attribute key")
		}
		if len(k) > MaxAttrKeyLen {
			return fieldErr("attrs."+k, "key is %d bytes, limit %d", len(k), MaxAttrKeyLen)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fieldErr("attrs."+k, "not valid UTF-8")
		}
	}
	if e.TS < 0 {
		return fieldErr("ts", "negative")
	}
	return nil
}

// ValidateFor runs Validate, then checks the event against the documented
// limits of the app's vendor, naming the field and the limit on failure.
func (e *Event) ValidateFor(r Rules) error {
	if err := e.Validate(); err != nil {
		return err
	}
	switch r.Vendor {
	case Tencent:
		return e.validateTencent()
	case Volc:
		return e.validateVolc(r)
	case Zego:
		return e.validateZego()
	default:
		return fieldErr("app", "unknown vendor kind %q for app %q", r.Vendor, e.App)
	}
}

func (e *Event) validateTencent() error {
	for _, f := range e.accounts() {
		name, s := f.name, f.s
		if len(s) > TencentMaxAccountBytes {
			return fieldErr(name, "%d bytes exceeds tencent's UserID limit of %d bytes", len(s), TencentMaxAccountBytes)
		}
	}
	if e.Remark != nil && len(*e.Remark) > TencentMaxRemarkBytes {
		return fieldErr("remark", "%d bytes exceeds tencent's Tag_SNS_IM_Remark limit of %d bytes", len(*e.Remark), TencentMaxRemarkBytes)
	}
	if e.Groups != nil {
		gs := *e.Groups
		if len(gs) > TencentMaxGroups {
			return fieldErr("groups", "%d groups exceeds tencent's limit of %d", len(gs), TencentMaxGroups)
		}
		for i, g := range gs {
			f := fmt.Sprintf("groups[%d]", i)
			if g == "" {
				return fieldErr(f, "empty group name (tencent requires non-empty names)")
			}
			if len(g) > TencentMaxGroupBytes {
				return fieldErr(f, "%d bytes exceeds tencent's group name limit of %d bytes", len(g), TencentMaxGroupBytes)
			}
		}
	}
	for k, v := range e.Attrs {
		if !isTencentKey(k) {
			return fieldErr("attrs."+k, "tencent custom field keys may hold only letters, digits and '_'")
		}
		if len(v) > TencentMaxAttrBytes {
			return fieldErr("attrs."+k, "%d bytes exceeds tencent's custom field limit of %d bytes", len(v), TencentMaxAttrBytes)
		}
	}
	return nil
}

func (e *Event) validateVolc(r Rules) error {
	for _, f := range e.accounts() {
		name, s := f.name, f.s
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return fieldErr(name, "volcengine user ids must be decimal int64 integers, got %q", s)
		}
	}
	if e.Groups != nil {
		return fieldErr("groups", "volcengine UpdateFriend has no friend groups")
	}
	if e.Remark != nil {
		if !r.VolcAlias {
			return fieldErr("remark", "this volcengine app does not send Alias (enable alias in its profile)")
		}
		if len(*e.Remark) > VolcMaxAliasBytes {
			return fieldErr("remark", "%d bytes exceeds the alias limit of %d bytes", len(*e.Remark), VolcMaxAliasBytes)
		}
	}
	total := 0
	for k, v := range e.Attrs {
		total += len(k) + len(v)
	}
	if total > VolcMaxExtBytes {
		return fieldErr("attrs", "%d bytes of keys and values exceeds the Ext limit of %d bytes", total, VolcMaxExtBytes)
	}
	return nil
}

func (e *Event) validateZego() error {
	for _, f := range e.accounts() {
		name, s := f.name, f.s
		if len(s) > ZegoMaxUserIDBytes {
			return fieldErr(name, "%d bytes exceeds zego's UserId limit of %d bytes", len(s), ZegoMaxUserIDBytes)
		}
		if i := badZegoChar(s); i >= 0 {
			return fieldErr(name, "zego user ids may not contain %q (byte %d)", s[i], i)
		}
	}
	if e.Groups != nil {
		return fieldErr("groups", "zego has no friend groups")
	}
	if e.Remark != nil && len(*e.Remark) > ZegoMaxAliasBytes {
		return fieldErr("remark", "%d bytes exceeds zego's FriendAlias limit of %d bytes", len(*e.Remark), ZegoMaxAliasBytes)
	}
	total := 0
	for k, v := range e.Attrs {
		if len(k) != 2 || k[0] != 'k' || k[1] < '0' || k[1] > '4' {
			return fieldErr("attrs."+k, "zego attribute keys must be k0..k4")
		}
		total += len(k) + len(v)
	}
	if total > ZegoMaxAttrBytes {
		return fieldErr("attrs", "%d bytes of keys and values exceeds zego's limit of %d bytes", total, ZegoMaxAttrBytes)
	}
	return nil
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isTencentKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// zegoIDChars are the documented punctuation allowed in ZEGO user ids,
// besides letters and digits.
const zegoIDChars = "!#$%&()+-:;<=.>?@[]^_{}|~"

func badZegoChar(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		ok := false
		for j := 0; j < len(zegoIDChars); j++ {
			if zegoIDChars[j] == c {
				ok = true
				break
			}
		}
		if !ok {
			return i
		}
	}
	return -1
}

func (e *Event) accounts() [2]struct{ name, s string } {
	return [2]struct{ name, s string }{{"from", e.From}, {"to", e.To}}
}
