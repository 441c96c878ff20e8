package config

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/sink"
)

// rawValue records what a flag was set to; conversion happens after
// parsing so that every bad value is reported, not only the first.
type rawValue struct {
	val    string
	isBool bool
}

func (r *rawValue) String() string     { return r.val }
func (r *rawValue) Set(s string) error { r.val = s; return nil }
func (r *rawValue) IsBoolFlag() bool   { return r.isBool }

// ArgumentError is the error of Parse for an argument that is not a flag.
type ArgumentError struct {
	Arg string // the first such argument
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("unexpected argument %q (flags start with --)", e.Arg)
}

// Parse reads args (without the program name) and the environment through
// getenv, and returns the validated Config. Flags may come in any order.
// For --help it writes the list of flags to out (the caller writes what
// comes before it) and returns ErrHelp; nothing else is written to out.
// Otherwise it returns an error naming every bad flag or variable, each
// in a line of its own; an argument that is not a flag is an
// *ArgumentError.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	opts := options()
	fs := flag.NewFlagSet("pginflux", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	raws := make(map[string]*rawValue, len(opts))
	for _, o := range opts {
		r := &rawValue{val: o.def, isBool: o.isBool}
		raws[o.name] = r
		fs.Var(r, o.name, o.usage)
	}
	rest, err := cli.Parse(fs, args)
	if errors.Is(err, ErrHelp) {
		writeFlags(out, fs, opts)
		return Config{}, ErrHelp
	}
	if err != nil {
		return Config{}, err
	}
	if len(rest) > 0 {
		return Config{}, &ArgumentError{Arg: rest[0]}
	}
	onCommandLine := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	var c Config
	var errs []error
	databaseFrom := "--database-url"
	for _, o := range opts {
		v, from := raws[o.name].val, "--"+o.name
		if !onCommandLine[o.name] && !o.noEnv {
			if ev := getenv(EnvName(o.name)); ev != "" {
				v, from = ev, EnvName(o.name)
			}
		}
		if err := o.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
		}
		if o.name == "database-url" {
			databaseFrom = from
		}
	}
	if c.DatabaseURL == "" {
		if c.DatabaseURL = getenv("DATABASE_URL"); c.DatabaseURL != "" {
			databaseFrom = "DATABASE_URL"
		}
	}
	if c.Retention > 0 && c.PartitionBy == "" {
		errs = append(errs, errors.New("--retention: needs --partition-by (retention drops whole partitions)"))
	}
	if err := (sink.Config{CreateTableSQL: c.CreateTableSQL, PartitionBy: c.PartitionBy}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key: give both or neither"))
	}
	if !c.Version {
		desc, err := describeDatabase(c.DatabaseURL, databaseFrom)
		if err != nil {
			errs = append(errs, err)
		}
		c.Database = desc
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
