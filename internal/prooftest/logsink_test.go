package prooftest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogSink(t *testing.T) {
	file := filepath.Join(t.TempDir(), "workers.log")
	s := NewLogSink(t, LogSinkOptions{Level: slog.LevelWarn, File: file})
	l := s.Logger("w1")
	l.Info("dropped below the level")
	l.Warn("lease lost", slog.Int("partition", 3))
	s.Logger("w2").Error("lease lost")
	if n := s.Count("lease lost"); n != 2 {
		t.Fatalf("Count = %d, want 2:\n%s", n, s.String())
	}
	if strings.Contains(s.String(), "dropped") {
		t.Fatalf("an info record was kept at warn:\n%s", s.String())
	}
	if tail := s.Tail(1); !strings.Contains(tail, "w=w2") || strings.Contains(tail, "w=w1") {
		t.Fatalf("Tail(1) = %q, want w2's line only", tail)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != s.String() {
		t.Fatalf("file holds %q, sink %q", b, s.String())
	}
}

func TestLogSinkKeep(t *testing.T) {
	s := NewLogSink(t, LogSinkOptions{Keep: 100})
	for i := range 50 {
		s.Write([]byte(strings.Repeat("x", 9) + string(rune('a'+i%26)) + "\n"))
	}
	if n := len(s.String()); n > 110 || n < 50 {
		t.Fatalf("kept %d bytes, want about 50–110", n)
	}
	if !strings.HasSuffix(s.String(), "xxxxxxxxxx\n") {
		t.Fatalf("the newest line was not kept: %q", s.Tail(1))
	}
	all := NewLogSink(t, LogSinkOptions{})
	for range 50 {
		all.Write([]byte("0123456789\n"))
	}
	if n := len(all.String()); n != 550 {
		t.Fatalf("Keep 0 kept %d bytes, want all 550", n)
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
	} {
		if got := LastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	if got := TailFile(filepath.Join(t.TempDir(), "missing"), 3); !strings.Contains(got, "no such file") {
		t.Errorf("TailFile of a missing file = %q", got)
	}
}
