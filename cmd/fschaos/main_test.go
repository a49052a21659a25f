package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestArguments covers what fschaos answers before it starts anything.
func TestArguments(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		text string // in stderr or the error
	}{
		{"help", []string{"-h"}, 0, "-redis-outage"},
		{"help shows both defaults", []string{"-h"}, 0, "-short 40s"},
		{"unknown flag", []string{"-fast"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"now"}, 2, "unexpected arguments"},
		{"one worker", []string{"-workers", "1"}, 2, "want at least 2"},
		{"unknown vendor", []string{"-outage-vendor", "acme"}, 2, "outage vendor"},
		{"fault rate over 1", []string{"-fault-rate", "1.5"}, 2, "fault rate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d (err %v), want %d", code, err, tc.code)
			}
			if tc.code != 0 && err == nil {
				t.Errorf("exit %d without an error", code)
			}
			got := stderr.String()
			if err != nil {
				got += err.Error()
			}
			if !strings.Contains(got, tc.text) {
				t.Errorf("stderr and error %q lack %q", got, tc.text)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (no report)", stdout.String())
			}
		})
	}
}
