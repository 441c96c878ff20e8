package main

import (
	"errors"
	"io"
	"testing"
)

func TestParseFlagsUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "no queries", args: []string{"-out", "x"}},
		{name: "no out", args: []string{"-queries", "q"}},
		{name: "bad timeout", args: []string{"-queries", "q", "-out", "x", "-timeout", "0s"}},
		{name: "extra argument", args: []string{"-queries", "q", "-out", "x", "more"}},
		{name: "unknown flag", args: []string{"-nope"}},
		{name: "unknown data set", args: []string{"-make-data", "x", "-dataset", "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFlags(tt.args, io.Discard)
			var usage usageError
			if !errors.As(err, &usage) {
				t.Errorf("got %v, want a usage error", err)
			}
		})
	}
	if _, err := parseFlags([]string{"-make-data", "x"}, io.Discard); err != nil {
		t.Errorf("got %v for -make-data alone, want no error", err)
	}
}
