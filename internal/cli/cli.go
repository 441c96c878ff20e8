// Package cli parses command lines the way every pginflux command does:
// flags may come before, between and after arguments, and help and
// errors name flags with two dashes, in one line each.
//
// It works on a flag.FlagSet built as usual; nothing in it is shared, so
// it is safe for concurrent use on different flag sets.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrHelp is returned by Parse for -h, -help or --help. Nothing has been
// printed: the caller writes its usage (to standard output: it was asked
// for).
var ErrHelp = flag.ErrHelp

// Parse sets the flags of fs from args and returns the other arguments,
// in order. Flags may come anywhere; "--" ends them, and "-" alone is an
// argument. A flag is -name or --name, with its value after "=" or in
// the next argument (booleans take only "="). fs's output and Usage are
// never used: the error names the flag and says what is wrong, in one
// line.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		spec := strings.TrimPrefix(a[1:], "-")
		if spec == "" || spec[0] == '-' || spec[0] == '=' {
			return nil, fmt.Errorf("%q is not a flag (flags are --name or --name=value)", a)
		}
		name, value, hasValue := strings.Cut(spec, "=")
		f := fs.Lookup(name)
		if f == nil {
			if name == "h" || name == "help" {
				return nil, ErrHelp
			}
			return nil, fmt.Errorf("unknown flag --%s (%s --help lists the flags)", name, fs.Name())
		}
		if IsBool(f) {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := Set(fs, name, value); err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
	}
	return rest, nil
}

// Set sets flag name of fs to value, as Parse does. Its error says what
// is wrong with value without naming the flag (so that the caller can
// name where the value came from, such as an environment variable).
func Set(fs *flag.FlagSet, name, value string) error {
	f := fs.Lookup(name)
	if f == nil {
		return fmt.Errorf("no flag --%s", name)
	}
	err := fs.Set(name, value)
	if err == nil {
		return nil
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	switch getter.Get().(type) {
	case bool:
		return fmt.Errorf("%q is not a boolean (true or false)", value)
	case time.Duration:
		return fmt.Errorf("%q is not a duration (examples: 500ms, 10s, 2m)", value)
	case int, int64, uint, uint64:
		if _, perr := strconv.ParseFloat(value, 64); perr == nil && !strings.ContainsAny(value, ".eE") {
			return fmt.Errorf("%s is out of range", value)
		}
		return fmt.Errorf("%q is not a whole number", value)
	case float64:
		return fmt.Errorf("%q is not a number", value)
	}
	return err
}

// IsBool reports whether f takes no value on the command line.
func IsBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// PrintFlags lists the flags of fs on w, in lexical order, as PrintFlag
// does; env returns a flag's environment variable, or "" (env may be nil).
func PrintFlags(w io.Writer, fs *flag.FlagSet, env func(name string) string) {
	fs.VisitAll(func(f *flag.Flag) {
		e := ""
		if env != nil {
			e = env(f.Name)
		}
		PrintFlag(w, f, e)
	})
}

// PrintFlag writes f as help lists it: with two dashes, the placeholder
// of its value (a `quoted` word of the usage, as in package flag), the
// usage, the environment variable env (unless "") and the default, unless
// it is empty, false or 0.
func PrintFlag(w io.Writer, f *flag.Flag, env string) {
	name, usage := flag.UnquoteUsage(f)
	if IsBool(f) {
		name = ""
	}
	if name != "" {
		name = " " + name
	}
	var notes []string
	if env != "" {
		notes = append(notes, "env "+env)
	}
	switch f.DefValue {
	case "", "false", "0", "0s":
	default:
		notes = append(notes, "default "+quoteIfNeeded(f.DefValue))
	}
	fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, name, usage)
	if len(notes) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"'") {
		return strconv.Quote(s)
	}
	return s
}

// UsageError is a problem with a command line: its flags, arguments or
// environment. A command exits 2 for it (ExitStatus), what systemd's
// units do not restart on.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ExitStatus writes err, if any, to w, every line of it after "name: ",
// and returns the exit status for it: 0 for none, 2 for a UsageError, 1
// for anything else.
func ExitStatus(name string, err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, line)
	}
	if errors.As(err, new(UsageError)) {
		return 2
	}
	return 1
}
