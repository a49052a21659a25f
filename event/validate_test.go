package event

import (
	"errors"
	"strings"
	"testing"
)

func valid() Event {
	return Event{ID: "e1", App: "demo", From: "alice", To: "bob", Remark: Ptr("Bobby")}
}

func TestValidateFor(t *testing.T) {
	tencent := Rules{Vendor: Tencent}
	volc := Rules{Vendor: Volc}
	volcAlias := Rules{Vendor: Volc, VolcAlias: true}
	zego := Rules{Vendor: Zego}
	tests := []struct {
		name  string
		rules Rules
		edit  func(*Event)
		field string // "" = valid
		want  string
	}{
		{"tencent valid remark", tencent, func(e *Event) {}, "", ""},
		{"tencent remark at 96 bytes", tencent, func(e *Event) { e.Remark = Ptr(strings.Repeat("x", 96)) }, "", ""},
		{"tencent remark over 96 bytes", tencent, func(e *Event) { e.Remark = Ptr(strings.Repeat("x", 97)) }, "remark", "limit of 96 bytes"},
		{"tencent remark counts bytes not runes", tencent, func(e *Event) { e.Remark = Ptr(strings.Repeat("好", 33)) }, "remark", "99 bytes"},
		{"tencent clear remark", tencent, func(e *Event) { e.Remark = Ptr("") }, "", ""},
		{"tencent clear groups", tencent, func(e *Event) { e.Remark = nil; e.Groups = &[]string{} }, "", ""},
		{"tencent 33 groups", tencent, func(e *Event) {
			g := make([]string, 33)
			for i := range g {
				g[i] = "g"
			}
			e.Groups = &g
		}, "groups", "limit of 32"},
		{"tencent empty group name", tencent, func(e *Event) { e.Groups = &[]string{"a", ""} }, "groups[1]", "empty group name"},
		{"tencent group name 31 bytes", tencent, func(e *Event) { e.Groups = &[]string{strings.Repeat("g", 31)} }, "groups[0]", "limit of 30 bytes"},
		{"tencent attr key charset", tencent, func(e *Event) { e.Attrs = map[string]string{"bad-key": "v"} }, "attrs.bad-key", "letters, digits"},
		{"tencent attr value 501 bytes", tencent, func(e *Event) { e.Attrs = map[string]string{"Level": strings.Repeat("v", 501)} }, "attrs.Level", "limit of 500"},
		{"tencent account 33 bytes", tencent, func(e *Event) { e.From = strings.Repeat("a", 33) }, "from", "limit of 32"},
		{"volc ids must be integers", volc, func(e *Event) { e.Remark = nil; e.Attrs = map[string]string{"k": "v"} }, "from", "int64"},
		{"volc ext valid", volc, func(e *Event) { e.From, e.To, e.Remark, e.Attrs = "10001", "10002", nil, map[string]string{"k": "v"} }, "", ""},
		{"volc remark needs alias switch", volc, func(e *Event) { e.From, e.To = "10001", "10002" }, "remark", "enable alias"},
		{"volc remark with alias switch", volcAlias, func(e *Event) { e.From, e.To = "10001", "10002" }, "", ""},
		{"volc groups unsupported", volcAlias, func(e *Event) { e.From, e.To, e.Groups = "10001", "10002", &[]string{"g"} }, "groups", "no friend groups"},
		{"volc id overflows int64", volc, func(e *Event) {
			e.From, e.To, e.Remark, e.Attrs = "99999999999999999999", "2", nil, map[string]string{"k": "v"}
		}, "from", "int64"},
		{"zego valid alias", zego, func(e *Event) {}, "", ""},
		{"zego alias 257 bytes", zego, func(e *Event) { e.Remark = Ptr(strings.Repeat("a", 257)) }, "remark", "limit of 256"},
		{"zego id charset", zego, func(e *Event) { e.To = "bob smith" }, "to", "may not contain ' '"},
		{"zego id punctuation allowed", zego, func(e *Event) { e.To = "b!#$%&()+-:;<=.>?@[]^_{}|~" }, "", ""},
		{"zego id 33 bytes", zego, func(e *Event) { e.To = strings.Repeat("b", 33) }, "to", "limit of 32"},
		{"zego attr keys k0..k4", zego, func(e *Event) { e.Attrs = map[string]string{"k5": "v"} }, "attrs.k5", "k0..k4"},
		{"zego attrs over 1024 bytes", zego, func(e *Event) {
			e.Attrs = map[string]string{"k0": strings.Repeat("v", 600), "k1": strings.Repeat("v", 500)}
		}, "attrs", "limit of 1024"},
		{"zego groups unsupported", zego, func(e *Event) { e.Groups = &[]string{"g"} }, "groups", "no friend groups"},
		{"unknown vendor", Rules{Vendor: "wechat"}, func(e *Event) {}, "app", "unknown vendor"},
		{"missing app", tencent, func(e *Event) { e.App = "" }, "app", "required"},
		{"app charset", tencent, func(e *Event) { e.App = "a.b" }, "app", "letters"},
		{"missing from", tencent, func(e *Event) { e.From = "" }, "from", "required"},
		{"missing to", tencent, func(e *Event) { e.To = "" }, "to", "required"},
		{"self friend", tencent, func(e *Event) { e.To = e.From }, "to", "own friend"},
		{"nothing to update", tencent, func(e *Event) { e.Remark = nil }, "remark", "nothing to update"},
		{"future schema", tencent, func(e *Event) { e.Schema = 2 }, "schema", "unsupported"},
		{"negative ts", tencent, func(e *Event) { e.TS = -1 }, "ts", "negative"},
		{"invalid utf-8", tencent, func(e *Event) { e.Remark = Ptr("\xff") }, "remark", "UTF-8"},
		{"long id", tencent, func(e *Event) { e.ID = strings.Repeat("i", 129) }, "id", "limit of 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := valid()
			tc.edit(&e)
			err := e.ValidateFor(tc.rules)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v: want a *FieldError matching ErrInvalid", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.want) {
				t.Fatalf("got field %q reason %q; want field %q reason containing %q", fe.Field, fe.Reason, tc.field, tc.want)
			}
		})
	}
}

func TestDecodeSemantics(t *testing.T) {
	tests := []struct {
		name, json string
		check      func(t *testing.T, e Event)
		wantErr    string
	}{
		{"absent fields are unchanged", `{"app":"a","from":"x","to":"y","remark":"r"}`, func(t *testing.T, e Event) {
			if e.Groups != nil || e.Attrs != nil || e.Remark == nil || *e.Remark != "r" {
				t.Errorf("got %+v", e)
			}
			if got := e.Fields(); len(got) != 1 || got[0] != FieldRemark {
				t.Errorf("fields %v", got)
			}
		}, ""},
		{"empty list clears groups", `{"app":"a","from":"x","to":"y","groups":[]}`, func(t *testing.T, e Event) {
			if e.Groups == nil || len(*e.Groups) != 0 {
				t.Errorf("groups %v", e.Groups)
			}
		}, ""},
		{"empty string clears remark", `{"app":"a","from":"x","to":"y","remark":""}`, func(t *testing.T, e Event) {
			if e.Remark == nil || *e.Remark != "" {
				t.Errorf("remark %v", e.Remark)
			}
		}, ""},
		{"attrs are separate fields, sorted", `{"app":"a","from":"x","to":"y","attrs":{"b":"","a":"1"}}`, func(t *testing.T, e Event) {
			got := strings.Join(e.Fields(), ",")
			if got != "attr:a,attr:b" {
				t.Errorf("fields %s", got)
			}
		}, ""},
		{"unknown field", `{"app":"a","from":"x","to":"y","remarks":"r"}`, nil, "unknown field"},
		{"wrong type", `{"app":"a","from":1,"to":"y"}`, nil, "cannot unmarshal"},
		{"trailing data", `{"app":"a","from":"x","to":"y","remark":"r"} {}`, nil, "trailing data"},
		{"not json", `app=a`, nil, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, e)
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	e := Event{ID: "x", App: "a", From: "f", To: "t", Remark: Ptr(""), Groups: &[]string{}, Attrs: map[string]string{"k": ""}, TS: 42}
	b, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"x","app":"a","from":"f","to":"t","remark":"","groups":[],"attrs":{"k":""},"ts":42}`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	back, err := Decode(b)
	if err != nil || back.Remark == nil || back.Groups == nil || len(*back.Groups) != 0 || back.Attrs["k"] != "" || back.TS != 42 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func FuzzDecodeValidate(f *testing.F) {
	for _, s := range []string{`{"app":"a","from":"x","to":"y","remark":"r"}`, `{"groups":[]}`, `{"attrs":{"k0":""}}`, `[]`, `null`, `{"ts":-5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			return
		}
		for _, v := range []Vendor{Tencent, Volc, Zego} {
			if err := e.ValidateFor(Rules{Vendor: v, VolcAlias: true}); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("validation error does not match ErrInvalid: %v", err)
			}
		}
		_ = e.Fields()
		if _, err := Encode(&e); err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
	})
}
