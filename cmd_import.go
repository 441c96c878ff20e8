package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/importer"
	"github.com/pginflux/pginflux/sink"
	"github.com/pginflux/pginflux/sink/schema"
)

func init() {
	commands["import"] = command{
		summary: "load files of line protocol (plain or gzip, or an influx_inspect export) into PostgreSQL",
		run:     runImport,
	}
}

// importConfigFlags are the daemon's flags that import takes, parsed and
// checked by config.Parse, with their environment twins. def and usage,
// when set, replace the daemon's.
var importConfigFlags = []struct{ name, def, usage string }{
	{name: "database-url"},
	{name: "schema"},
	{name: "storage"},
	{name: "write-mode"},
	{name: "uint64-type"},
	{name: "max-columns"},
	{name: "rejected-table"},
	{name: "precision", usage: "`unit` of timestamps in the input: ns (what influx_inspect export and influxd inspect export-lp write), us, ms or s"},
	// Larger batches than the daemon's: an import has no latency to keep.
	{name: "batch-size", def: "20000"},
	{name: "flush-interval"},
	{name: "writers"},
	{name: "parsers", usage: "`number` of goroutines parsing the input"},
	{name: "create-table-sql"},
	// Not --retention: an import of history must not drop what it writes.
	{name: "partition-by"},
	{name: "max-pending-rows", usage: "most `rows` held between parsing and commit; at the limit the parsers, then the reading, wait for PostgreSQL"},
	{name: "schema-from-db", usage: "write the lines after each \"# CONTEXT-DATABASE:name\" line of an influx_inspect export into the schema name, instead of --schema"},
	// Info lines (a table created, ...) would break the progress bar.
	{name: "log-level", def: "warn"},
	{name: "log-format"},
}

// importEnvName is the environment twin of an import-only flag.
func importEnvName(flagName string) string {
	return "PGINFLUX_IMPORT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// importOptions is the command line of pginflux import.
type importOptions struct {
	cfg      config.Config
	files    []string
	dryRun   bool
	progress string // auto, always or never
	quiet    bool
}

// stringFlag records a flag's value for config.Parse to check.
type stringFlag struct {
	val    string
	isBool bool
}

func (f *stringFlag) String() string     { return f.val }
func (f *stringFlag) Set(s string) error { f.val = s; return nil }
func (f *stringFlag) IsBoolFlag() bool   { return f.isBool }

// parseImportFlags parses import's command line and environment. For
// --help it writes the usage to usageOut and returns flag.ErrHelp.
func parseImportFlags(args []string, getenv func(string) string, usageOut io.Writer) (*importOptions, error) {
	o := &importOptions{}
	fs, shared := o.flagSet()
	files, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		writeImportUsage(usageOut, fs, shared)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	onCommandLine := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	var errs []error
	if o.cfg, err = importConfig(shared, onCommandLine, getenv); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, o.fromEnv(onCommandLine, getenv)...)
	if err := checkImportFiles(files); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.files = files
	return o, nil
}

// flagSet returns import's flags: the daemon's it shares, whose values
// it returns by name for config.Parse to check, and its own, into o.
func (o *importOptions) flagSet() (*flag.FlagSet, map[string]*stringFlag) {
	fs := flag.NewFlagSet("pginflux import", flag.ContinueOnError)
	shared := make(map[string]*stringFlag, len(importConfigFlags))
	for _, f := range importConfigFlags {
		info, ok := config.Lookup(f.name)
		if !ok {
			panic("pginflux import: the daemon has no flag --" + f.name)
		}
		v := &stringFlag{val: info.Default, isBool: info.IsBool}
		if f.def != "" {
			v.val = f.def
		}
		usage := f.usage
		if usage == "" {
			usage = strings.Replace(info.Usage, info.Placeholder, "`"+info.Placeholder+"`", 1)
		}
		shared[f.name] = v
		fs.Var(v, f.name, usage)
	}
	fs.BoolVar(&o.dryRun, "dry-run", false, "parse everything and write nothing; print the tables and columns writing would create")
	fs.StringVar(&o.progress, "progress", "auto", "`when` to show progress on standard error: auto (a bar on a terminal, else a line every 5s), always (a bar) or never")
	fs.BoolVar(&o.quiet, "quiet", false, "show no progress and no summary, only errors")
	return fs, shared
}

// writeImportUsage is pginflux import --help.
func writeImportUsage(w io.Writer, fs *flag.FlagSet, shared map[string]*stringFlag) {
	fmt.Fprint(w, "Usage: pginflux import [flags] FILE... (- for standard input)\n\n"+
		"Loads line protocol from files, plain or gzip (by a .gz name or by content), into\n"+
		"PostgreSQL through pginflux's parser and writer, one table per measurement, as fast as\n"+
		"COPY allows. Reads the output of influx_inspect export (InfluxDB 1.x, with or without\n"+
		"-lponly) and influxd inspect export-lp (2.x). Rejected lines go to the rejected table,\n"+
		"with file and line number; they do not make the import fail. Flags may come after files.\n"+
		"Exit status: 0 when every line was written or kept as rejected, 1 when not, 2 for bad flags.\n\n"+
		"  pginflux import --database-url postgres://app@db/appdb --schema history export.lp.gz\n"+
		"  pginflux import --dry-run big.lp\n"+
		"  zcat *.lp.gz | pginflux import --progress never -\n\n"+
		"Flags (each also read from the environment variable shown):\n")
	cli.PrintFlags(w, fs, func(name string) string {
		if _, ok := shared[name]; ok {
			return config.EnvName(name)
		}
		return importEnvName(name)
	})
}

// importConfig checks the daemon's flags import takes with config.Parse:
// those on the command line, import's own defaults, and their environment
// twins. Only import's flags come from the environment: a variable meant
// for the daemon alone (PGINFLUX_UDP_ADDRESS, say) is no business of
// import.
func importConfig(shared map[string]*stringFlag, onCommandLine map[string]bool, getenv func(string) string) (config.Config, error) {
	var cfgArgs []string
	allowed := map[string]bool{"DATABASE_URL": true}
	for _, f := range importConfigFlags {
		env := config.EnvName(f.name)
		allowed[env] = true
		switch {
		case onCommandLine[f.name]:
			cfgArgs = append(cfgArgs, "--"+f.name+"="+shared[f.name].val)
		case f.def != "" && getenv(env) == "":
			cfgArgs = append(cfgArgs, "--"+f.name+"="+f.def)
		}
	}
	return config.Parse(cfgArgs, func(k string) string {
		if allowed[k] {
			return getenv(k)
		}
		return ""
	}, io.Discard)
}

// fromEnv takes import's own flags not on the command line from their
// environment twins, and checks --progress.
func (o *importOptions) fromEnv(onCommandLine map[string]bool, getenv func(string) string) []error {
	var errs []error
	for _, b := range []struct {
		name string
		v    *bool
	}{{"dry-run", &o.dryRun}, {"quiet", &o.quiet}} {
		if ev := getenv(importEnvName(b.name)); ev != "" && !onCommandLine[b.name] {
			v, err := strconv.ParseBool(ev)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a boolean", importEnvName(b.name), ev))
			}
			*b.v = v
		}
	}
	progressFrom := "--progress"
	if ev := getenv(importEnvName("progress")); ev != "" && !onCommandLine["progress"] {
		o.progress, progressFrom = ev, importEnvName("progress")
	}
	switch o.progress {
	case "auto", "always", "never":
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not one of auto, always, never", progressFrom, o.progress))
	}
	return errs
}

// checkImportFiles checks the files named: at least one, and standard
// input at most once.
func checkImportFiles(files []string) error {
	stdins := 0
	for _, f := range files {
		if f == "-" {
			stdins++
		}
	}
	switch {
	case len(files) == 0:
		return errors.New("nothing to import: name files, or - for standard input")
	case stdins > 1:
		return errors.New("- (standard input) can be read only once")
	}
	return nil
}

// runImport is "pginflux import [flags] FILE...".
func runImport(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseImportFlags(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return commandUsageError("import", err)
	}
	inputs := make([]importer.Input, 0, len(o.files))
	for _, f := range o.files {
		if f == "-" {
			inputs = append(inputs, importer.Stream("-", stdin))
			continue
		}
		in, err := importer.File(f)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		inputs = append(inputs, in)
	}

	var rep *importer.Reporter
	if !o.quiet && o.progress != "never" {
		term, width := importer.Terminal(stderr)
		rep = importer.NewReporter(stderr, term || o.progress == "always", width, importer.PlainInterval)
	}
	logOut := stderr
	if rep != nil {
		logOut = rep
	}
	log := o.cfg.Logger(logOut, new(slog.LevelVar))

	pool, err := openImportPool(ctx, o.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	icfg := importer.Config{
		Sink:         importSinkConfig(o.cfg),
		Precision:    o.cfg.Precision,
		Parsers:      o.cfg.Parsers,
		SchemaFromDB: o.cfg.SchemaFromDB,
		DryRun:       o.dryRun,
	}
	im := importer.New(pool, icfg, log)
	if rep != nil {
		rep.Start(im.Progress)
	}
	res, err := im.Run(ctx, inputs)
	if rep != nil {
		rep.Stop()
	}
	if o.dryRun && err == nil {
		importer.WritePlan(stdout, res, icfg)
	}
	if !o.quiet {
		importer.WriteSummary(stderr, res, icfg)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// importSinkConfig is the daemon's sink configuration, without retention:
// an import of history must not drop what it writes.
func importSinkConfig(cfg config.Config) sink.Config {
	c := cfg.Sink()
	c.Retention = 0
	return c
}

// openImportPool connects to the database. Unlike the daemon, which keeps
// receiving while PostgreSQL is away, an import that cannot reach it has
// nothing to do: it stops at once.
func openImportPool(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pool, pingErr, err := daemon.OpenPool(ctx, cfg, "pginflux import")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if r := schema.Refusal(pingErr); r != nil {
		pool.Close()
		return nil, fmt.Errorf("import: database %s: %w", cfg.Database, r)
	}
	if pingErr != nil {
		pool.Close()
		// pgx's errors name the host, user and database, never the password.
		return nil, fmt.Errorf("import: cannot reach the database (%s): %w", cfg.Database, pingErr)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := schema.Preflight(pctx, pool, cfg.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("import: database %s: %w", cfg.Database, err)
	}
	return pool, nil
}
