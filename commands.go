package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pginflux/pginflux/config"
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
	if args[0] == "help" {
		return runHelp(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	c, ok := commands[args[0]]
	if !ok {
		return usageError{Err: fmt.Errorf("unknown command %q; commands: %s (or no command, with flags, to run the daemon; pginflux --help says more)", args[0], commandNames())}
	}
	return c.run(ctx, args[1:], getenv, stdin, stdout, stderr)
}

// runHelp is "pginflux help [COMMAND]": the daemon's help, or the
// command's (as COMMAND --help).
func runHelp(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		return runIO(ctx, []string{"--help"}, getenv, stdin, stdout, stderr)
	case len(args) > 1:
		return usageError{Err: fmt.Errorf("help: unexpected argument %q (pginflux help COMMAND)", args[1])}
	}
	if _, ok := commands[args[0]]; !ok {
		return usageError{Err: fmt.Errorf("help: unknown command %q; commands: %s", args[0], commandNames())}
	}
	return runCommand(ctx, []string{args[0], "--help"}, getenv, stdin, stdout, stderr)
}

func commandNames() string {
	names := sortedCommands()
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func sortedCommands() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writeDaemonUsage is pginflux --help: how to run the daemon and the
// commands, then flags, the daemon's list of flags.
func writeDaemonUsage(w io.Writer, flags string) {
	fmt.Fprint(w, "Usage:\n"+
		"  pginflux [flags]                   receive InfluxDB line protocol (UDP, TCP, HTTP) and write\n"+
		"                                     each measurement into its own PostgreSQL table\n"+
		"  pginflux COMMAND [flags] [ARGS]    run a tool; pginflux COMMAND --help lists its flags\n"+
		"\nCommands:\n")
	for _, name := range sortedCommands() {
		fmt.Fprintf(w, "  %-12s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "help", "this text, or a command's (pginflux help send)")
	fmt.Fprint(w, "\nFlags of the daemon, anywhere on the command line; each but --version also\n"+
		"read from the environment variable shown, which a flag overrides, or from the\n"+
		"file of such variables named by "+config.FileEnv+" (read again on SIGHUP):\n")
	fmt.Fprint(w, flags)
	fmt.Fprint(w, "\nExit status: 0 after a clean stop, 1 for a failure, 2 for bad flags or environment.\n")
}

// explainArgument adds a hint to a config.ArgumentError for a command
// name that came after flags.
func explainArgument(err error) error {
	var arg *config.ArgumentError
	if errors.As(err, &arg) {
		if _, ok := commands[arg.Arg]; ok || arg.Arg == "help" {
			return fmt.Errorf("%w; a command comes first: pginflux %s [flags]", err, arg.Arg)
		}
	}
	return err
}

// commandUsageError is a usage error of command name: a bad flag or
// argument, which the user fixes with name's --help.
func commandUsageError(name string, err error) error {
	return usageError{Err: fmt.Errorf("%s: %w", name, err)}
}
