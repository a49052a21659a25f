package vendorsim

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// Transport returns an in-memory http.RoundTripper that calls the Sim's
// handler directly, in a new goroutine, without sockets. Use it inside
// testing/synctest bubbles (where real network I/O does not advance the
// fake clock) and wherever a loopback listener is not wanted. RoundTrip
// returns the request context's error as soon as the context ends, even
// while the handler is still running (for example sleeping WriteTime, or
// hanging for an injected timeout until it sees the same context end).
func (s *Sim) Transport() http.RoundTripper { return transport{h: s.handler} }

type transport struct{ h http.Handler }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	// Build what a server would see.
	sr := req.Clone(ctx)
	sr.Body = io.NopCloser(bytes.NewReader(body))
	sr.ContentLength = int64(len(body))
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	u := *req.URL
	u.Scheme, u.Host, u.User = "", "", nil
	sr.URL = &u
	sr.RequestURI = u.RequestURI()
	sr.RemoteAddr = "127.0.0.1:1"
	sr.Proto, sr.ProtoMajor, sr.ProtoMinor = "HTTP/1.1", 1, 1
	if sr.Header == nil {
		sr.Header = http.Header{}
	}

	rec := &recorder{header: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.h.ServeHTTP(rec, sr)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is a minimal http.ResponseWriter; it is used by one handler
// goroutine and read only after that goroutine finished.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
