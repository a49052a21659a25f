package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestArguments covers what fsbench answers before it connects anywhere.
func TestArguments(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"-h"}, 0, "-quick"},
		{"unknown flag", []string{"-fast"}, 2, "flag provided but not defined"},
		{"unknown measurement", []string{"-only", "budget,speed"}, 2, ""},
		{"extra argument", []string{"now"}, 2, ""},
		{"bad redis url", []string{"-redis", "127.0.0.1:6379"}, 2, ""},
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
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (no report)", stdout.String())
			}
		})
	}
}
