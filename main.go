// Command pginflux receives InfluxDB line protocol (UDP, TCP, InfluxDB's
// HTTP write APIs) and writes every measurement into its own PostgreSQL
// table.
//
// This package only reads the command line: with flags alone it runs the
// daemon (package internal/daemon), with a command name first one of the
// tools (cmd_*.go). Run pginflux --help for the flags; each has a
// PGINFLUX_* environment twin.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/internal/daemon"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if !isCommand(os.Args[1:]) {
		setProcs(os.Getenv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	os.Exit(cli.ExitStatus("pginflux", err, os.Stderr))
}

// setProcs runs the daemon's Go code on half the CPUs the runtime would
// use (at least one: one on a 2-core machine), unless GOMAXPROCS is set.
// pginflux shares the machine with PostgreSQL, and the rest is the
// server's: on 2 cores, one P cut pginflux's CPU per line by a quarter
// (0.62-0.66 against 0.76-0.84 us, cpu workload, 400,000-625,000 lines/s)
// and raised the highest lossless rate (703,072 against 663,821 lines/s),
// as Go's scheduler no longer spins and wakes threads across the cores
// for each datagram handed on (docs/benchmarks.md). The defaults of
// --udp-readers and --parsers follow. The tools (bench, import...) keep
// the runtime's default.
func setProcs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	return runtime.GOMAXPROCS(0)
}

// usageError is a problem with the flags or environment: exit status 2.
type usageError = cli.UsageError

// run is pginflux: it returns when ctx ends and everything received has
// been written (or the shutdown timeout passed).
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return runIO(ctx, args, getenv, os.Stdin, os.Stdout, os.Stderr)
}

// runIO is run with the standard streams given: help and --version go to
// stdout, the log to stderr. Errors are returned, not written.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if isCommand(args) {
		return runCommand(ctx, args, getenv, stdin, stdout, stderr)
	}
	var flags bytes.Buffer
	cfg, err := config.Load(args, getenv, &flags)
	if errors.Is(err, config.ErrHelp) {
		writeDaemonUsage(stdout, flags.String())
		return nil
	}
	if err != nil {
		return usageError{Err: explainArgument(err)}
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "pginflux", version)
		return nil
	}
	if cfg.UDPAddress == "" && cfg.TCPAddress == "" && cfg.HTTPAddress == "" {
		return usageError{Err: errors.New("nothing to listen on: --udp-address, --tcp-address and --http-address are all empty")}
	}
	return runDaemon(ctx, cfg, daemon.Options{Version: version, Log: stderr, Args: args, Getenv: getenv})
}

// runDaemon runs the daemon until ctx ends (SIGINT, SIGTERM) or it fails,
// reloading its configuration on every SIGHUP, then stops it.
func runDaemon(ctx context.Context, cfg config.Config, opts daemon.Options) error {
	// From here on a SIGHUP reloads the settings (once pginflux runs)
	// rather than ending the process; one that comes while pginflux
	// starts waits on the channel.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if opts.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(daemon.MemoryLimit(cfg))
	}
	d, err := daemon.Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			_ = d.Reload() // logged; pginflux runs on as it was
		case <-d.Failed():
			return d.Close()
		case <-ctx.Done():
			return d.Close()
		}
	}
}
