package enqueue

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/friendsync/friendsync/event"
)

func TestParseCSVRecord(t *testing.T) {
	t.Parallel()
	full, err := parseCSVHeader([]string{"app", "from", "to", "remark", "groups", "attrs", "ts", "id"})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		name  string
		cells []string // remark, groups, attrs, ts
		want  event.Event
		err   string
	}{
		{"empty cells leave fields absent", []string{"", "", "", ""}, event.Event{}, ""},
		{"remark text", []string{"Bobby", "", "", ""}, event.Event{Remark: event.Ptr("Bobby")}, ""},
		{`remark "" clears`, []string{`""`, "", "", ""}, event.Event{Remark: event.Ptr("")}, ""},
		{"remark with quotes inside", []string{`say "hi"`, "", "", ""}, event.Event{Remark: event.Ptr(`say "hi"`)}, ""},
		{"groups", []string{"", "a|b|c", "", ""}, event.Event{Groups: &[]string{"a", "b", "c"}}, ""},
		{"groups [] clears", []string{"", "[]", "", ""}, event.Event{Groups: &[]string{}}, ""},
		{"one group", []string{"", "solo", "", ""}, event.Event{Groups: &[]string{"solo"}}, ""},
		{"escaped pipe", []string{"", `a\|b|c\\`, "", ""}, event.Event{Groups: &[]string{"a|b", `c\`}}, ""},
		{"empty group kept for validation", []string{"", "a||b", "", ""}, event.Event{Groups: &[]string{"a", "", "b"}}, ""},
		{"attrs", []string{"", "", "k=v;k2=w=x", ""}, event.Event{Attrs: map[string]string{"k": "v", "k2": "w=x"}}, ""},
		{"attr key= clears", []string{"", "", "k=;j=1", ""}, event.Event{Attrs: map[string]string{"k": "", "j": "1"}}, ""},
		{`attr key="" clears`, []string{"", "", `k=""`, ""}, event.Event{Attrs: map[string]string{"k": ""}}, ""},
		{"attrs trailing separator", []string{"", "", "k=v;", ""}, event.Event{Attrs: map[string]string{"k": "v"}}, ""},
		{"escaped attr separators", []string{"", "", `a\=b=c\;d`, ""}, event.Event{Attrs: map[string]string{"a=b": "c;d"}}, ""},
		{"attr without =", []string{"", "", "k", ""}, event.Event{}, "attrs: pair \"k\" has no '='"},
		{"attr empty key", []string{"", "", "=v", ""}, event.Event{}, "empty key"},
		{"attr twice", []string{"", "", "k=1;k=2", ""}, event.Event{}, `key "k" appears twice`},
		{"attrs only separators", []string{"", "", ";;", ""}, event.Event{}, "no key=value pair"},
		{"lone backslash", []string{"", `a\`, "", ""}, event.Event{}, "lone"},
		{"ts nanoseconds", []string{"r", "", "", "1714000000000000000"}, event.Event{Remark: event.Ptr("r"), TS: 1714000000000000000}, ""},
		{"ts RFC 3339", []string{"r", "", "", "2024-05-01T12:00:00Z"}, event.Event{Remark: event.Ptr("r"), TS: ts}, ""},
		{"ts RFC 3339 with offset", []string{"r", "", "", "2024-05-01T14:00:00+02:00"}, event.Event{Remark: event.Ptr("r"), TS: ts}, ""},
		{"ts garbage", []string{"r", "", "", "yesterday"}, event.Event{}, "neither Unix nanoseconds nor RFC 3339"},
		{"ts overflow", []string{"r", "", "", "99999999999999999999"}, event.Event{}, "not Unix nanoseconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := append([]string{"app", "a", "b"}, tc.cells...)
			rec = append(rec, "")
			got, err := parseCSVRecord(full, rec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.App, tc.want.From, tc.want.To = "app", "a", "b"
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseCSVHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header []string
		err    string
	}{
		{"minimal", []string{"app", "from", "to"}, ""},
		{"any order, case and spaces", []string{" TS", "To", "remark", "FROM", "app "}, ""},
		{"byte order mark", []string{"\ufeffapp", "from", "to"}, ""},
		{"missing to", []string{"app", "from"}, `missing column "to"`},
		{"unknown column", []string{"app", "from", "to", "alias"}, `unknown column "alias"`},
		{"twice", []string{"app", "from", "to", "from"}, `"from" appears twice`},
		{"a data row instead of a header", []string{"demo", "alice", "bob"}, `unknown column "demo"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCSVHeader(tc.header)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestCSVSourceLines: line numbers are where a record starts, counting the
// header and the lines inside quoted cells; malformed rows are errors of
// their line and reading goes on.
func TestCSVSourceLines(t *testing.T) {
	t.Parallel()
	in := "app,from,to,remark\n" +
		"demo,a,b,one\n" +
		"demo,a,c,\"two\nlines\"\n" +
		"demo,a,d\n" +
		"\n" +
		"demo,a,e,x\"y\n" +
		"demo,a,f,last\n"
	src, err := newCSVSource(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		line int
		to   string
		err  string
	}
	var gots []got
	for {
		rec, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		src.parse(&rec)
		g := got{line: rec.line, to: rec.ev.To}
		if rec.perr != nil {
			g = got{line: rec.line, err: rec.perr.Error()}
		}
		gots = append(gots, g)
	}
	want := []got{
		{2, "b", ""},
		{3, "c", ""},
		{5, "", "csv: 3 cells, the header has 4"},
		{7, "", `csv: bare " in non-quoted-field`},
		{8, "f", ""},
	}
	if !reflect.DeepEqual(gots, want) {
		t.Fatalf("got %+v\nwant %+v", gots, want)
	}
}

func TestCSVSourceBadHeader(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "app,from\n", "\"app,from,to\n"} {
		if _, err := newCSVSource(strings.NewReader(in)); !errors.Is(err, errHeader) {
			t.Errorf("%q: error %v, want errHeader", in, err)
		}
	}
}

// FuzzCSV feeds arbitrary bytes through the CSV reader and parser: no
// panic, line numbers increase, and a parsed event re-encodes to itself.
func FuzzCSV(f *testing.F) {
	f.Add("app,from,to,remark,groups,attrs,ts\ndemo,a,b,\"\"\"\"\"\",a|b,k=v;k2=,2024-05-01T00:00:00Z\n")
	f.Add("app,from,to,attrs\nd,a,b,a\\=b=c\\;d\n")
	f.Add("app,from,to,groups\nd,a,b,[]\nd,a,c,\"x\ny\"\n")
	f.Add("\ufeffTS,to,from,app\n1714000000000000000,b,a,d\n")
	f.Fuzz(func(t *testing.T, in string) {
		src, err := newCSVSource(strings.NewReader(in))
		if err != nil {
			return
		}
		last := 1
		for range 10000 {
			rec, err := src.next()
			if err != nil {
				return
			}
			if rec.line <= last {
				t.Fatalf("line %d after %d", rec.line, last)
			}
			last = rec.line
			src.parse(&rec)
			_ = rec.text()
			if rec.perr != nil {
				continue
			}
			checkRoundTrip(t, &rec.ev)
		}
	})
}

// checkRoundTrip encodes ev and decodes it back with the contract decoder.
func checkRoundTrip(t *testing.T, ev *event.Event) {
	t.Helper()
	_ = ev.Validate()
	_ = ev.ValidateFor(event.Rules{Vendor: event.Tencent})
	b, err := event.Encode(ev)
	if err != nil {
		return // invalid UTF-8 is replaced by Encode, and may not round-trip
	}
	back, err := event.Decode(b)
	if err != nil {
		t.Fatalf("%s does not decode: %v", b, err)
	}
	if ev.Validate() == nil && !reflect.DeepEqual(normalize(back), normalize(*ev)) {
		t.Fatalf("round trip changed %+v into %+v", *ev, back)
	}
}

// normalize maps an empty attrs map to nil (omitempty drops it).
func normalize(e event.Event) event.Event {
	if len(e.Attrs) == 0 {
		e.Attrs = nil
	}
	return e
}
