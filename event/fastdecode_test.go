package event

import (
	"reflect"
	"testing"
)

func TestDecodeFastMatchesDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		fast bool
	}{
		{`{"app":"demo","from":"a","to":"b","remark":"r"}`, true},
		{` { "id" : "x" , "schema":1,"app":"d","from":"a","to":"b","groups":[ "g1" , "g2" ],"attrs":{ "k":"","j":"v"},"ts":1714000000000000000 } `, true},
		{`{"app":"d","from":"a","to":"b","groups":[],"attrs":{}}`, true},
		{`{}`, true},
		{`{"ts":-0}`, true},
		{`{"App":"d"}`, false},                  // case variant: the decoder decides
		{`{"app":"d","app":"e"}`, false},        // repeated key
		{`{"attrs":{"k":"1","k":"2"}}`, false},  // repeated attribute
		{`{"remark":"caf\u00e9"}`, false},       // escape
		{"{\"remark\":\"caf\xc3\xa9\"}", false}, // non-ASCII
		{`{"remark":null}`, false},              // null
		{`{"ts":1.5}`, false},                   // fraction
		{`{"ts":1e18}`, false},                  // exponent
		{`{"ts":01}`, false},                    // leading zero
		{`{"ts":99999999999999999999}`, false},  // overflow
		{`{"app":"d",}`, false},                 // trailing comma
		{`{"app":"d"} {}`, false},               // trailing data
		{`{"nope":"x"}`, false},                 // unknown field
		{`{"groups":["a",1]}`, false},           // wrong type
		{`[]`, false},
		{``, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			fast, ok := decodeFast([]byte(tc.in))
			if ok != tc.fast {
				t.Fatalf("fast path ok=%v, want %v", ok, tc.fast)
			}
			want, err := decodeJSON([]byte(tc.in))
			if ok && (err != nil || !reflect.DeepEqual(fast, want)) {
				t.Fatalf("fast %+v, decoder %+v (%v)", fast, want, err)
			}
		})
	}
}

// FuzzDecodeFast: whenever the fast path accepts a line, the contract's
// JSON decoder accepts it too and yields the same event.
func FuzzDecodeFast(f *testing.F) {
	f.Add(`{"app":"demo","from":"a","to":"b","remark":"r"}`)
	f.Add(`{"id":"x","schema":1,"groups":["a"],"attrs":{"k":""},"ts":0}`)
	f.Add(`{"ts":-0,"app":"","remark":""}`)
	f.Fuzz(func(t *testing.T, in string) {
		fast, ok := decodeFast([]byte(in))
		if !ok {
			return
		}
		want, err := decodeJSON([]byte(in))
		if err != nil {
			t.Fatalf("fast path accepted %q, the decoder says %v", in, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast %+v, decoder %+v", in, fast, want)
		}
	})
}

// BenchmarkDecode compares Decode (fast path) with the encoding/json path
// on what a producer writes (Encode of a typical remark update).
func BenchmarkDecode(b *testing.B) {
	data, err := Encode(&Event{ID: "0b9d3c1e-6d7a-4c55-9a53-4f1b1e2f8c11", App: "tencent-prod", From: "user_000042",
		To: "friend_0000123", Remark: Ptr("best friend"), TS: 1795463262046000000})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		fn   func([]byte) (Event, error)
	}{{"Decode", Decode}, {"encoding-json", decodeJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
