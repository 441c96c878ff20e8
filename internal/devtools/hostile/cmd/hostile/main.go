// Command hostile plays hostile and careless clients against a pginflux
// running on this machine and reports what each scenario cost it in
// memory (peak RSS) and what the clients got:
//
//	go run ./internal/devtools/hostile/cmd/hostile -http http://127.0.0.1:8086 \
//	    -tcp 127.0.0.1:8094 -udp 127.0.0.1:8089 -pid $(pidof pginflux) \
//	    [-scenario bombs,big,slow,tcpline,all] [-json]
//
// The scenarios (package hostile), one after another, each within
// -timeout: bombs (-bombs gzip bombs of -bomb-size at once), big
// (-clients clients posting -lines lines each at once, retrying as
// Retry-After says up to -attempts times), slow (-slow clients trickling
// their bodies for -slow-for), tcpline (one line of -line-size bytes over
// TCP, then a good one), and all (every one of those at once, with UDP at
// -udp-rate lines/s until they end). Before each, hostile waits up to
// -settle for pginflux's RSS to stop falling, then resets its peak
// (/proc/PID/clear_refs: run as root or as pginflux's user).
//
// Every target must be a loopback address. Exit status: 0 when every
// scenario ran (whatever pginflux answered), 1 when one could not, 2 for
// bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitStatus("hostile", err, os.Stderr))
}

// usageError is a bad command line.
type usageError = cli.UsageError

// options are the command line.
type options struct {
	http, tcp, udp string
	pid            int
	scenarios      []string
	json           bool
	timeout        time.Duration
	settle         time.Duration

	bombs    int
	bombSize int64
	clients  int
	lines    int
	attempts int
	slow     int
	slowFor  time.Duration
	lineSize int64
	udpRate  float64
}

// scenarioNames are the scenarios -scenario takes, in the order of its
// default.
var scenarioNames = []string{"bombs", "big", "slow", "tcpline", "all"}

// parseArgs reads the command line; for --help, it writes the flags to
// help and returns cli.ErrHelp.
func parseArgs(args []string, help io.Writer) (*options, error) {
	o := &options{bombSize: 1 << 30, lineSize: 10_000_000}
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.http, "http", "http://127.0.0.1:8086", "pginflux's HTTP `URL`")
	fs.StringVar(&o.tcp, "tcp", "", "pginflux's TCP `address` (host:port), for tcpline")
	fs.StringVar(&o.udp, "udp", "127.0.0.1:8089", "pginflux's UDP `address`, loaded during all; empty: no UDP")
	fs.IntVar(&o.pid, "pid", 0, "pginflux's process `id`, for its peak RSS; 0: not measured")
	scenarios := fs.String("scenario", strings.Join(scenarioNames, ","), "comma-separated `scenarios` to run, in order: "+strings.Join(scenarioNames, ", "))
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "most a scenario runs (a `duration`)")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "before each scenario, wait at most this long (a `duration`) for pginflux's RSS to stop falling")
	fs.IntVar(&o.bombs, "bombs", 64, "gzip bombs sent at once")
	bytesFlag(fs, &o.bombSize, "bomb-size", "decompressed `size` of a bomb (units: KiB, MiB, GiB)")
	fs.IntVar(&o.clients, "clients", 32, "big: clients posting at once")
	fs.IntVar(&o.lines, "lines", 400_000, "big: `lines` of each client's body (about 54 bytes each)")
	fs.IntVar(&o.attempts, "attempts", 10, "big: most attempts of a client")
	fs.IntVar(&o.slow, "slow", 1000, "slow: clients trickling their bodies")
	fs.DurationVar(&o.slowFor, "slow-for", 30*time.Second, "slow: how long (a `duration`) each trickles at most")
	bytesFlag(fs, &o.lineSize, "line-size", "tcpline: `size` of the long line")
	fs.Float64Var(&o.udpRate, "udp-rate", 100_000, "all: UDP `lines` a second")
	rest, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Fprintln(help, "usage: hostile -http URL -tcp ADDR -udp ADDR -pid PID -scenario bombs,big,slow,tcpline,all [flags]")
		fs.SetOutput(help)
		fs.PrintDefaults()
		return nil, err
	}
	if err != nil {
		return nil, usageError{Err: err}
	}
	if len(rest) > 0 {
		return nil, usageError{Err: fmt.Errorf("unexpected arguments %q", rest)}
	}
	for s := range strings.SplitSeq(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if !known(s) {
			return nil, usageError{Err: fmt.Errorf("--scenario: unknown %q; scenarios: %s", s, strings.Join(scenarioNames, ", "))}
		}
		if (s == "tcpline" || s == "all") && o.tcp == "" {
			return nil, usageError{Err: fmt.Errorf("--scenario %s needs --tcp", s)}
		}
		o.scenarios = append(o.scenarios, s)
	}
	return o, nil
}

func known(s string) bool {
	for _, n := range scenarioNames {
		if s == n {
			return true
		}
	}
	return false
}

// bytesFlag defines a size flag read as pginflux reads its own.
func bytesFlag(fs *flag.FlagSet, p *int64, name, usage string) {
	fs.Func(name, fmt.Sprintf("%s (default %d)", usage, *p), func(v string) error {
		n, err := config.ParseBytes(v)
		if err != nil {
			return err
		}
		*p = n
		return nil
	})
}

// run runs the scenarios of args and writes the report to stdout,
// progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stdout)
	if errors.Is(err, cli.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var reports []*report
	for _, s := range o.scenarios {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before %s: %w", s, err)
		}
		fmt.Fprintf(stderr, "hostile: %s...\n", s)
		r, err := runScenario(ctx, o, s)
		if err != nil {
			return fmt.Errorf("run %s: %w", s, err)
		}
		reports = append(reports, r)
		if !o.json {
			r.writeText(stdout)
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	return nil
}
