package enqueue

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/friendsync/friendsync/event"
)

// Input formats.
const (
	formatNDJSON = "ndjson"
	formatCSV    = "csv"
)

// maxLineBytes bounds one NDJSON line; a longer line is reported invalid
// (an event is at most a few KiB).
const maxLineBytes = 1 << 20

// detectFormat picks the input format: the explicit one, else by the file
// extension; stdin defaults to NDJSON.
func detectFormat(explicit, path string) (string, error) {
	switch explicit {
	case formatNDJSON, "jsonl", "json":
		return formatNDJSON, nil
	case formatCSV:
		return formatCSV, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("--format %q: want ndjson or csv", explicit)
	}
	if path == "" || path == "-" {
		return formatNDJSON, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return formatCSV, nil
	case ".ndjson", ".jsonl", ".json":
		return formatNDJSON, nil
	}
	return "", fmt.Errorf("cannot tell the format of %s from its extension: use --format ndjson or --format csv", path)
}

// record is one input record: a non-blank NDJSON line or a CSV row.
type record struct {
	line   int         // 1-based line where the record starts
	ev     event.Event // parsed when asked
	perr   error       // parse error, reported for the line
	raw    []byte      // NDJSON: the line (valid until the next call)
	fields []string    // CSV: the cells (valid until the next call)
}

// text is the record as written, for the reject file.
func (r *record) text() string {
	if r.fields == nil {
		return string(r.raw)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(r.fields)
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// source yields the records of an input. next returns io.EOF at the end;
// any other error is a read failure of the whole input. Bad records are
// not errors: they carry perr.
type source interface {
	next() (record, error)
	// parse fills r.ev or r.perr.
	parse(r *record)
}

func newSource(format string, r io.Reader) (source, error) {
	if format == formatCSV {
		return newCSVSource(r)
	}
	return &ndjsonSource{r: newBufReader(r)}, nil
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

// ndjsonSource reads one event object per line; blank lines are skipped.
type ndjsonSource struct {
	r    *bufio.Reader
	line int
	buf  []byte
}

func (s *ndjsonSource) parse(r *record) {
	if r.perr == nil {
		r.ev, r.perr = parseNDJSON(r.raw)
	}
}

func (s *ndjsonSource) next() (record, error) {
	for {
		text, tooLong, err := s.readLine()
		if err != nil {
			return record{}, err
		}
		s.line++
		if s.line == 1 {
			text = bytes.TrimPrefix(text, []byte("\ufeff"))
		}
		if tooLong {
			return record{line: s.line, raw: text, perr: fmt.Errorf("line longer than %d bytes", maxLineBytes)}, nil
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		return record{line: s.line, raw: text}, nil
	}
}

// readLine returns the next line without its line ending. A line longer
// than maxLineBytes is consumed whole and returned truncated with tooLong.
func (s *ndjsonSource) readLine() (line []byte, tooLong bool, err error) {
	s.buf = s.buf[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.buf)+len(chunk) <= maxLineBytes {
			if err == nil && len(s.buf) == 0 {
				// The common case: the whole line is in the reader's buffer.
				return trimEOL(chunk), false, nil
			}
			s.buf = append(s.buf, chunk...)
		} else {
			tooLong = true
			if room := maxLineBytes - len(s.buf); room > 0 {
				s.buf = append(s.buf, chunk[:room]...)
			}
		}
		switch {
		case err == nil:
			return trimEOL(s.buf), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(s.buf) == 0 {
				return nil, false, io.EOF
			}
			return trimEOL(s.buf), tooLong, nil
		default:
			return nil, false, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// parseNDJSON decodes one line with the contract's decoder (which takes
// a fast path for the common shape).
func parseNDJSON(line []byte) (event.Event, error) {
	return event.Decode(line)
}

// csvSource reads CSV with a header row.
type csvSource struct {
	r *csv.Reader
	h csvHeader
	n int // header width
}

// errHeader marks a header that cannot be used: the whole input is bad.
var errHeader = errors.New("bad header")

func newCSVSource(r io.Reader) (*csvSource, error) {
	cr := csv.NewReader(newBufReader(r))
	cr.ReuseRecord = true
	hdr, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: line 1: the input is empty (a CSV header row is required)", errHeader)
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %v", errHeader, pe.StartLine, pe.Err)
		}
		return nil, err
	}
	h, err := parseCSVHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: line 1: %v", errHeader, err)
	}
	return &csvSource{r: cr, h: h, n: len(hdr)}, nil
}

func (s *csvSource) parse(r *record) {
	if r.perr == nil {
		r.ev, r.perr = parseCSVRecord(s.h, r.fields)
	}
}

func (s *csvSource) next() (record, error) {
	fields, err := s.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return record{}, err // io.EOF or a read error
		}
		r := record{line: pe.StartLine, fields: fields}
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			r.perr = fmt.Errorf("csv: %d cells, the header has %d", len(fields), s.n)
		} else {
			r.perr = fmt.Errorf("csv: %v", pe.Err)
			r.fields = []string{}
		}
		return r, nil
	}
	line, _ := s.r.FieldPos(0)
	return record{line: line, fields: fields}, nil
}
