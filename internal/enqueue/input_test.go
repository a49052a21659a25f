package enqueue

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		explicit, path, want, err string
	}{
		{"auto", "a.csv", formatCSV, ""},
		{"auto", "dir/A.CSV", formatCSV, ""},
		{"", "a.ndjson", formatNDJSON, ""},
		{"auto", "a.jsonl", formatNDJSON, ""},
		{"auto", "-", formatNDJSON, ""},
		{"csv", "-", formatCSV, ""},
		{"ndjson", "a.csv", formatNDJSON, ""},
		{"auto", "a.txt", "", "use --format"},
		{"xml", "a.csv", "", `--format "xml"`},
	}
	for _, tc := range tests {
		t.Run(tc.explicit+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			got, err := detectFormat(tc.explicit, tc.path)
			if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}

type ndjsonGot struct {
	line int
	text string
	err  string
}

func readNDJSON(t *testing.T, r io.Reader) []ndjsonGot {
	t.Helper()
	src := &ndjsonSource{r: newBufReader(r)}
	var out []ndjsonGot
	for {
		rec, err := src.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		g := ndjsonGot{line: rec.line, text: string(rec.raw)}
		if rec.perr != nil {
			g.text, g.err = "", rec.perr.Error()
		}
		out = append(out, g)
	}
}

func TestNDJSONSourceLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLineBytes+10)
	tests := []struct {
		name string
		in   string
		want []ndjsonGot
	}{
		{"plain", "a\nb\n", []ndjsonGot{{1, "a", ""}, {2, "b", ""}}},
		{"no final newline", "a\nb", []ndjsonGot{{1, "a", ""}, {2, "b", ""}}},
		{"blank lines keep their numbers", "\n  \na\n\n\t\nb\n\n", []ndjsonGot{{3, "a", ""}, {6, "b", ""}}},
		{"CRLF", "a\r\nb\r\n", []ndjsonGot{{1, "a", ""}, {2, "b", ""}}},
		{"byte order mark", "\ufeffa\n", []ndjsonGot{{1, "a", ""}}},
		{"too long", "a\n" + long + "\nb\n", []ndjsonGot{{1, "a", ""}, {2, "", "line longer than 1048576 bytes"}, {3, "b", ""}}},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, r := range map[string]io.Reader{
				"whole":    strings.NewReader(tc.in),
				"one byte": iotest.OneByteReader(strings.NewReader(tc.in)),
			} {
				if got := readNDJSON(t, r); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s: got %+v\nwant %+v", name, got, tc.want)
				}
			}
		})
	}
}

func TestNDJSONSourceReadError(t *testing.T) {
	t.Parallel()
	src := &ndjsonSource{r: newBufReader(io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(errors.New("disk gone"))))}
	if _, err := src.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.next(); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("error %v, want the read error", err)
	}
}

// FuzzNDJSON feeds arbitrary bytes through the line reader and the
// contract decoder: no panic, increasing line numbers, and every decoded
// event re-encodes to itself.
func FuzzNDJSON(f *testing.F) {
	f.Add(`{"app":"demo","from":"a","to":"b","remark":"r"}` + "\n\n" + `{"app":"demo","from":"a","to":"c","groups":[],"attrs":{"k":""},"ts":1714000000000000000}`)
	f.Add("{\"app\":\"x\"}\r\nnot json\n{}")
	f.Add(`{"id":"i","schema":1,"app":"a","from":"b","to":"c","remark":null}`)
	f.Add(`{"app":"a","from":"b","to":"c","remark":"\ud800"}{}`)
	f.Fuzz(func(t *testing.T, in string) {
		src := &ndjsonSource{r: newBufReader(strings.NewReader(in))}
		last := 0
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
			if rec.perr == nil {
				checkRoundTrip(t, &rec.ev)
			}
		}
	})
}
