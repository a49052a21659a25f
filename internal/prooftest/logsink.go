package prooftest

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// LogSinkOptions configure a LogSink.
type LogSinkOptions struct {
	// Level is the lowest level of the loggers' records kept.
	Level slog.Level
	// File, when set, also gets every record appended.
	File string
	// Keep, when positive, bounds the bytes kept: past it the oldest half is
	// dropped. 0 keeps everything.
	Keep int
	// Tail is how many of the last lines are logged when the test fails
	// (0: none).
	Tail int
}

// LogSink keeps the logs of in-process workers, one text logger per
// worker, and logs their tail when the test fails.
type LogSink struct {
	o    LogSinkOptions
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
}

// NewLogSink returns a sink that lives until t's cleanup.
func NewLogSink(t testing.TB, o LogSinkOptions) *LogSink {
	t.Helper()
	s := &LogSink{o: o}
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatalf("prooftest: log file: %v", err)
		}
		s.file = f
		t.Cleanup(func() { f.Close() })
	}
	t.Cleanup(func() {
		if o.Tail > 0 && t.Failed() {
			t.Logf("--- in-process worker logs (tail) ---\n%s", LastLines(s.String(), o.Tail))
		}
	})
	return s
}

func (s *LogSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.Keep > 0 && s.buf.Len() > s.o.Keep { // keep the newest half
		rest := append([]byte(nil), s.buf.Bytes()[s.buf.Len()/2:]...)
		s.buf.Reset()
		s.buf.Write(rest)
	}
	if s.file != nil {
		_, _ = s.file.Write(b)
	}
	return s.buf.Write(b)
}

// String returns the logs kept so far.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Count counts the occurrences of sub in the logs kept.
func (s *LogSink) Count(sub string) int { return strings.Count(s.String(), sub) }

// Tail returns the last n lines kept.
func (s *LogSink) Tail(n int) string { return LastLines(s.String(), n) }

// Logger is a text logger for worker id writing to the sink.
func (s *LogSink) Logger(id string) *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: s.o.Level})).With(slog.String("w", id))
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailFile returns the last n lines of the file at path (the error's text
// when it cannot be read).
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return LastLines(string(b), n)
}
