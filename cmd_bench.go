package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

func init() {
	commands["bench"] = command{
		summary: "send Telegraf-like load over UDP and check what was stored (see docs/benchmarks.md)",
		run:     runBench,
	}
}

// benchFlags are the flags of pginflux bench. Each is also read from
// PGINFLUX_BENCH_<NAME> when not on the command line.
type benchFlags struct {
	address          string
	allowRemote      bool
	workload         string
	httpURL          string
	gzip             bool
	split            int
	appendMode       bool
	hosts, series    int
	timestamps       string
	interval         time.Duration
	linesPerDatagram int
	datagramSize     int
	rate             float64
	lines            int64
	duration         time.Duration
	senders          int
	reportEvery      time.Duration

	databaseURL string
	schema      string
	settle      time.Duration
	truncate    bool
	metricsURL  string
	pid         int
	json        bool

	findMax       bool
	stepDuration  time.Duration
	stepFactor    float64
	stepPrecision float64
	maxSteps      int

	ceiling     bool
	ceilingRate float64
	storage     string
	writers     int
	batchSize   int
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.address, "address", "127.0.0.1:8089", "UDP `host:port` of pginflux; must be a loopback address unless --allow-remote")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow targets (UDP, database, metrics) that are not loopback addresses")
	fs.StringVar(&f.workload, "workload", "cpu", "`name` of the workload: cpu (Telegraf's cpu lines) or mix (cpu, mem, disk, net)")
	fs.IntVar(&f.hosts, "hosts", 1000, "`number` of hosts sending")
	fs.IntVar(&f.series, "series", 9, "`number` of series of each measurement per host (cpu-total and cpus, disks, interfaces)")
	fs.DurationVar(&f.interval, "interval", 0, "time (a `duration`) between two points of a series, as an agent's interval: round r of the workload is stamped start + r×interval, so a long run spans days of a fleet's data (and --partition-by makes partitions); 0: a microsecond a line, whatever the rate")
	fs.StringVar(&f.timestamps, "timestamps", loadgen.StampHost, "which lines share a timestamp: host (a host's lines of a round, as Telegraf agents stamp their gathers), round (every line of a round, as agents with precision = \"1s\"), or line (none)")
	fs.IntVar(&f.linesPerDatagram, "lines-per-datagram", 10, "`lines` in each UDP datagram at most (points, with --split); with --http-url, in each request")
	fs.StringVar(&f.httpURL, "http-url", "", "send over HTTP instead of UDP: POST --lines-per-datagram lines a request to this `URL` (pginflux's /write or /api/v2/write, loopback unless --allow-remote), one request at a time a sender; only 204 counts as sent")
	fs.BoolVar(&f.gzip, "gzip", false, "with --http-url, gzip the bodies (Content-Encoding: gzip), as Telegraf does")
	fs.IntVar(&f.split, "split", 1, "send each point as this many `lines` of the same measurement, tags and time, each with a part of the fields (as Telegraf's UDP output splits wide points); lines and rates count points")
	fs.BoolVar(&f.appendMode, "append-mode", false, "the pginflux measured runs with --write-mode append: it stores each line of a --split point as a row of its own, and is compared with the ceiling into tables without the point key")
	fs.IntVar(&f.datagramSize, "datagram-size", 8192, "`bytes` in each UDP datagram at most; lines are never split")
	fs.Float64Var(&f.rate, "rate", 0, "`lines` per second over all senders; 0 sends as fast as possible (--find-max starts here, or at 50000)")
	fs.Int64Var(&f.lines, "lines", 1_000_000, "stop after this many `lines` (also the rows of --ceiling; --find-max sends rate × --step-duration a step)")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "stop after this long (a `duration`), whichever comes first (--ceiling: for each way of writing)")
	fs.IntVar(&f.senders, "senders", 1, "`number` of sending goroutines, each with its own socket")
	fs.DurationVar(&f.reportEvery, "report-every", 0, "while sending, report every this long (a `duration`, at least 1s) the rates sent and committed, the lines lost, CPU per line and per row, RSS and pending rows; 0: only at the end")
	fs.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL `URL` pginflux writes to, for counting what was stored (also PGINFLUX_DATABASE_URL, DATABASE_URL); empty: no check")
	fs.StringVar(&f.schema, "schema", "metrics", "`schema` of pginflux's tables")
	fs.DurationVar(&f.settle, "settle", 10*time.Second, "after sending, wait at most this long (a `duration`) for the rows to be stored")
	fs.BoolVar(&f.truncate, "truncate", false, "empty the workload's tables (cpu; mem, disk, net) in --schema before sending: deletes data!")
	fs.StringVar(&f.metricsURL, "metrics-url", "http://127.0.0.1:8086/metrics", "pginflux's Prometheus `URL`, for its counters; empty: none")
	fs.IntVar(&f.pid, "pid", 0, "pginflux's process `id`, for its memory (VmRSS, VmHWM) and CPU time")
	fs.BoolVar(&f.json, "json", false, "write the result as JSON")
	fs.BoolVar(&f.findMax, "find-max", false, "step the rate to find the highest at which nothing is lost")
	fs.DurationVar(&f.stepDuration, "step-duration", 10*time.Second, "how long (a `duration`) each --find-max step sends")
	fs.Float64Var(&f.stepFactor, "step-factor", 1.25, "--find-max multiplies the rate by this `factor` until lines are lost, then bisects")
	fs.Float64Var(&f.stepPrecision, "step-precision", 0.05, "--find-max stops when the lowest lossy rate is within this `fraction` above the highest lossless one")
	fs.IntVar(&f.maxSteps, "max-steps", 8, "--find-max runs this many `steps` at most")
	fs.BoolVar(&f.ceiling, "ceiling", false, "measure the ceiling: the same rows COPYed straight from memory into <schema>_ceiling (made and dropped); alone, nothing is sent; with --find-max, before it")
	fs.Float64Var(&f.ceilingRate, "ceiling-rate", 0, "a ceiling measured before, in `rows/s`, to report pginflux's rate as a fraction of it")
	fs.StringVar(&f.storage, "storage", "columns", "table `layouts` for --ceiling: columns (pginflux's default), jsonb, or both (columns,jsonb); the first is the one compared with pginflux, into tables with the point key unless --append-mode")
	fs.IntVar(&f.writers, "writers", 2, "`connections` writing in parallel for --ceiling")
	fs.IntVar(&f.batchSize, "batch-size", 10000, "`rows` per COPY for --ceiling (pginflux's default --batch-size)")
}

func benchEnvName(flagName string) string {
	return "PGINFLUX_BENCH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseBenchFlags parses args, then takes every flag not on the command
// line from its environment twin, and checks the values. For --help it
// writes the usage to usageOut and returns flag.ErrHelp.
func parseBenchFlags(args []string, getenv func(string) string, usageOut io.Writer) (*benchFlags, error) {
	f := &benchFlags{}
	fs := flag.NewFlagSet("pginflux bench", flag.ContinueOnError)
	f.register(fs)
	rest, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Fprint(usageOut, "Usage: pginflux bench [flags]\n\n"+
			"Sends Telegraf-like line protocol to pginflux over UDP at a steady rate, then counts in\n"+
			"PostgreSQL what was stored, next to the kernel's and pginflux's counters. Only loopback\n"+
			"targets unless --allow-remote. See docs/benchmarks.md.\n\n"+
			"  pginflux bench --database-url URL --rate 50000 --duration 20s\n"+
			"  pginflux bench --database-url URL --find-max --step-duration 10s\n"+
			"  pginflux bench --database-url URL --ceiling\n\n"+
			"Flags (each also read from the environment variable shown):\n")
		cli.PrintFlags(usageOut, fs, benchEnvName)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", rest[0])
	}
	set := make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	fs.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] {
			return
		}
		if v := getenv(benchEnvName(fl.Name)); v != "" {
			if err := cli.Set(fs, fl.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", benchEnvName(fl.Name), err))
			}
		}
	})
	if f.databaseURL == "" {
		f.databaseURL = getenv("PGINFLUX_DATABASE_URL")
	}
	if f.databaseURL == "" {
		f.databaseURL = getenv("DATABASE_URL")
	}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(f.hosts >= 1, "--hosts %d: want at least 1", f.hosts)
	check(f.series >= 1, "--series %d: want at least 1", f.series)
	check(f.interval >= 0, "--interval %v: want 0 or more", f.interval)
	check(f.linesPerDatagram >= 1, "--lines-per-datagram %d: want at least 1", f.linesPerDatagram)
	check(f.split >= 1 && f.split <= 10, "--split %d: want 1 to 10", f.split)
	check(f.rate >= 0, "--rate %v: want 0 or more", f.rate)
	check(f.lines >= 1, "--lines %d: want at least 1", f.lines)
	check(f.duration > 0, "--duration %v: want more than 0", f.duration)
	check(f.senders >= 1 && f.senders <= 1024, "--senders %d: want 1..1024", f.senders)
	check(f.reportEvery == 0 || f.reportEvery >= time.Second, "--report-every %v: want 0 or at least 1s", f.reportEvery)
	check(f.settle >= 0, "--settle %v: want 0 or more", f.settle)
	check(f.stepDuration > 0, "--step-duration %v: want more than 0", f.stepDuration)
	check(f.stepFactor > 1, "--step-factor %v: want more than 1", f.stepFactor)
	check(f.stepPrecision > 0 && f.stepPrecision < 1, "--step-precision %v: want between 0 and 1", f.stepPrecision)
	check(f.maxSteps >= 1 && f.maxSteps <= 100, "--max-steps %d: want 1..100", f.maxSteps)
	check(f.ceilingRate >= 0, "--ceiling-rate %v: want 0 or more", f.ceilingRate)
	check(f.writers >= 1 && f.writers <= 256, "--writers %d: want 1..256", f.writers)
	check(f.batchSize >= 1, "--batch-size %d: want at least 1", f.batchSize)
	check(f.pid >= 0, "--pid %d: want a process id", f.pid)
	check(f.schema != "" && len(f.schema) <= 63-len("_ceiling"), "--schema %q: want 1 to %d bytes", f.schema, 63-len("_ceiling"))
	for _, s := range strings.Split(f.storage, ",") {
		check(s == loadgen.StorageJSONB || s == loadgen.StorageColumns, "--storage: %q is neither jsonb nor columns", s)
	}
	check(f.databaseURL != "" || !f.findMax && !f.ceiling && !f.truncate, "--find-max, --ceiling and --truncate need --database-url")
	return f, errors.Join(errs...)
}

// benchOutput is what --json prints: the parts that ran.
type benchOutput struct {
	Run            *loadgen.Result        `json:"run,omitempty"`
	FindMax        *loadgen.FindMaxResult `json:"find_max,omitempty"`
	Ceiling        *loadgen.CeilingResult `json:"ceiling,omitempty"`
	CeilingRate    float64                `json:"ceiling_rate,omitempty"`     // rows/s compared with
	RatioToCeiling float64                `json:"ratio_to_ceiling,omitempty"` // pginflux's rows/s over CeilingRate
}

// runBench is "pginflux bench [flags]".
func runBench(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	f, err := parseBenchFlags(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return commandUsageError("bench", err)
	}
	cfg, err := f.loadConfig(ctx, stderr)
	if err != nil {
		return commandUsageError("bench", err)
	}
	out := benchOutput{CeilingRate: f.ceilingRate}
	if f.ceiling {
		if err := f.runCeiling(ctx, cfg, &out); err != nil {
			return err
		}
	}
	var pginfluxRate float64
	switch {
	case f.findMax:
		if pginfluxRate, err = f.runFindMax(ctx, cfg, &out, stderr); err != nil {
			return err
		}
	case !f.ceiling:
		res, err := loadgen.Run(ctx, cfg)
		if err != nil {
			return err
		}
		out.Run = res
		if res.Stored != nil && res.Stored.Lost == 0 {
			pginfluxRate = res.Stored.Rate
		}
	}
	if out.CeilingRate > 0 && pginfluxRate > 0 {
		out.RatioToCeiling = pginfluxRate / out.CeilingRate
	}
	return writeBenchOutput(stdout, &out, f.json)
}

// loadConfig checks the targets the flags name (loopback only, unless
// --allow-remote) and returns the load generator's configuration, its
// progress going to progress. Its errors are usage errors.
func (f *benchFlags) loadConfig(ctx context.Context, progress io.Writer) (loadgen.Config, error) {
	w, err := loadgen.NewWorkload(f.workload, f.hosts, f.series)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("--workload: %w", err)
	}
	if w, err = w.WithStamps(f.timestamps); err != nil {
		return loadgen.Config{}, fmt.Errorf("--timestamps: %w", err)
	}
	if w, err = w.WithInterval(f.interval); err != nil {
		return loadgen.Config{}, fmt.Errorf("--interval: %w", err)
	}
	w = w.SplitInto(f.split)
	rowsPerPoint := 1
	if f.appendMode {
		rowsPerPoint = max(f.split, 1)
	}
	resolver := net.DefaultResolver
	addr, err := loadgen.ResolveUDP(ctx, resolver, f.address, f.allowRemote)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("--address: %w", err)
	}
	var db *pgx.ConnConfig
	if f.databaseURL != "" {
		if db, err = pgx.ParseConfig(f.databaseURL); err != nil {
			// Never repeat the string: it may hold a password.
			return loadgen.Config{}, fmt.Errorf("--database-url: not a valid connection string: %s", config.ConnStringProblem(f.databaseURL, err))
		}
		if err := loadgen.CheckDatabase(ctx, resolver, &db.Config, f.allowRemote); err != nil {
			return loadgen.Config{}, fmt.Errorf("--database-url: %w", err)
		}
	}
	client := &http.Client{Transport: &http.Transport{DialContext: loadgen.LoopbackDialer().DialContext}}
	if f.allowRemote {
		client = &http.Client{}
	}
	for _, u := range []struct{ flag, url string }{{"--http-url", f.httpURL}, {"--metrics-url", f.metricsURL}} {
		if u.url == "" {
			continue
		}
		if err := loadgen.CheckURL(ctx, resolver, u.url, f.allowRemote); err != nil {
			return loadgen.Config{}, fmt.Errorf("%s: %w", u.flag, err)
		}
	}
	cfg := loadgen.Config{
		Send: loadgen.SendConfig{
			Address:          addr,
			Workload:         w,
			Base:             time.Now(),
			Rate:             f.rate,
			Lines:            f.lines,
			Duration:         f.duration,
			Senders:          f.senders,
			LinesPerDatagram: f.linesPerDatagram,
			MaxDatagramSize:  f.datagramSize,
			HTTPURL:          f.httpURL,
			Gzip:             f.gzip,
			HTTPClient:       client,
		},
		Database:     db,
		Schema:       f.schema,
		Settle:       f.settle,
		Truncate:     f.truncate,
		RowsPerPoint: rowsPerPoint,
		MetricsURL:   f.metricsURL,
		HTTPClient:   client,
		PID:          f.pid,
		Progress:     progress,
		ReportEvery:  f.reportEvery,
	}
	return cfg, cfg.Send.Validate()
}

// runCeiling measures the ceiling into out: the same rows COPYed straight
// from memory, in each --storage.
func (f *benchFlags) runCeiling(ctx context.Context, cfg loadgen.Config, out *benchOutput) error {
	storages := strings.Split(f.storage, ",")
	c, err := loadgen.Ceiling(ctx, loadgen.CeilingConfig{
		Database:  cfg.Database,
		Schema:    f.schema + "_ceiling",
		Workload:  cfg.Send.Workload,
		Rows:      f.lines,
		Storages:  storages,
		Writers:   f.writers,
		BatchSize: f.batchSize,
		Duration:  f.duration,
		Progress:  cfg.Progress,
	})
	if err != nil {
		return err
	}
	out.Ceiling = c
	// Merge mode writes into tables with the point key; append mode into
	// tables without.
	if best := c.Best(storages[0], !f.appendMode); best != nil && out.CeilingRate == 0 {
		out.CeilingRate = best.Rate
	}
	return nil
}

// runFindMax steps the rate to the highest lossless one, into out, and
// returns that rate. A search cut short still reports its steps: its
// error is then written to stderr.
func (f *benchFlags) runFindMax(ctx context.Context, cfg loadgen.Config, out *benchOutput, stderr io.Writer) (float64, error) {
	fm := loadgen.FindMaxConfig{
		Run:          cfg,
		StepDuration: f.stepDuration,
		Factor:       f.stepFactor,
		MaxSteps:     f.maxSteps,
		Precision:    f.stepPrecision,
	}
	if fm.Run.Send.Rate == 0 {
		fm.Run.Send.Rate = 50000
	}
	res, err := loadgen.FindMax(ctx, fm)
	if res == nil {
		return 0, err
	}
	out.FindMax = res
	if err != nil {
		fmt.Fprintf(stderr, "pginflux bench: %v\n", err)
	}
	return res.BestRate, nil
}

// writeBenchOutput writes out as text, or as JSON with --json.
func writeBenchOutput(w io.Writer, out *benchOutput, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if out.Ceiling != nil {
		out.Ceiling.WriteText(w)
	}
	if out.FindMax != nil {
		out.FindMax.WriteText(w)
	}
	if out.Run != nil {
		out.Run.WriteText(w)
	}
	if out.RatioToCeiling > 0 {
		fmt.Fprintf(w, "ceiling     pginflux stored %.0f%% of the ceiling's %.0f rows/s\n", 100*out.RatioToCeiling, out.CeilingRate)
	}
	return nil
}
