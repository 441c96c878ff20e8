package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one of pginflux's tools, run as "pginflux NAME [flags]"
// instead of the daemon. Each registers itself from its own file.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// isCommand reports whether args start with a command name rather than a
// flag.
func isCommand(args []string) bool {
	return len(args) > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-")
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, ok := commands[args[0]]
	if !ok {
		return usageError{fmt.Errorf("unknown command %q; commands: %s (or no command, with flags, to run the daemon)", args[0], commandNames())}
	}
	return c.run(ctx, args[1:], getenv, stdin, stdout, stderr)
}

func commandNames() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
