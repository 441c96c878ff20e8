package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

// runCLI runs pginflux's command line as main does, with env as the whole
// environment and nothing on standard input, and returns what it wrote
// and its exit status.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runIO(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	status = cli.ExitStatus("pginflux", err, &errOut)
	return out.String(), errOut.String(), status
}

// oneLine fails the test unless stderr is one line that says want.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("got stderr %q, want one line with %q", stderr, want)
	}
}

// TestCLIUsageErrors: each bad command line gets one line on standard
// error naming what is wrong, nothing on standard output, and status 2
// (healthcheck: 1, as Docker reserves 2).
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		want   string
		status int
	}{
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "pginflux: unknown flag --no-such-flag (pginflux --help lists the flags)", status: 2},
		{name: "unknown flag with one dash", args: []string{"-schemaa", "x"}, want: "pginflux: unknown flag --schemaa", status: 2},
		{name: "extra argument", args: []string{"--schema", "x", "extra"}, want: `pginflux: unexpected argument "extra" (flags start with --)`, status: 2},
		{name: "command after flags", args: []string{"--schema", "x", "send"}, want: `a command comes first: pginflux send [flags]`, status: 2},
		{name: "unknown command", args: []string{"sned"}, want: `pginflux: unknown command "sned"; commands: auth-hash, bench, healthcheck, import, send`, status: 2},
		{name: "log level", args: []string{"--log-level", "loud"}, want: `pginflux: --log-level: "loud" is not one of debug, info, warn, error`, status: 2},
		{name: "boolean", args: []string{"--pprof=maybe"}, want: `pginflux: --pprof: "maybe" is not a boolean (true or false)`, status: 2},
		{name: "boolean variable", env: map[string]string{"PGINFLUX_PPROF": "yes"}, want: `pginflux: PGINFLUX_PPROF: "yes" is not a boolean (true or false)`, status: 2},
		{name: "database URL", args: []string{"--database-url", "postgres://app:pa/ss@db/app"}, want: "pginflux: --database-url: not a valid connection string: invalid port (in a URL, write / ? # @ : %", status: 2},
		{name: "flag without value", args: []string{"--udp-address"}, want: "pginflux: --udp-address needs a value", status: 2},
		{name: "send: unknown flag after a line", args: []string{"send", "x v=1", "--adress", "db:8089"}, want: "pginflux: send: unknown flag --adress (pginflux send --help lists the flags)", status: 2},
		{name: "send: bad number", args: []string{"send", "--max-datagram", "big"}, want: `pginflux: send: --max-datagram: "big" is not a whole number`, status: 2},
		{name: "import: bad boolean", args: []string{"import", "f.lp", "--dry-run=perhaps"}, want: `pginflux: import: --dry-run: "perhaps" is not a boolean (true or false)`, status: 2},
		{name: "bench: extra argument", args: []string{"bench", "--rate", "5", "fast"}, want: `pginflux: bench: unexpected argument "fast" (flags start with --)`, status: 2},
		{name: "bench: bad variable", env: map[string]string{"PGINFLUX_BENCH_RATE": "fast"}, args: []string{"bench"}, want: `pginflux: bench: PGINFLUX_BENCH_RATE: "fast" is not a number`, status: 2},
		{name: "healthcheck: extra argument", args: []string{"healthcheck", "now", "--timeout", "1s"}, want: `pginflux: healthcheck: unexpected argument "now" (flags start with --)`, status: 1},
		{name: "healthcheck: bad duration", args: []string{"healthcheck", "--timeout", "soon"}, want: `pginflux: healthcheck: --timeout: "soon" is not a duration`, status: 1},
		{name: "help of no command", args: []string{"help", "sned"}, want: `pginflux: help: unknown command "sned"`, status: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, status := runCLI(t, tt.env, tt.args...)
			if status != tt.status {
				t.Errorf("got status %d, want %d", status, tt.status)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			oneLine(t, stderr, tt.want)
			for _, raw := range []string{"strconv", "slog:", "flag provided", "Usage"} {
				if strings.Contains(stderr, raw) {
					t.Errorf("stderr has %q: %s", raw, stderr)
				}
			}
		})
	}
}

// TestCLIHelp: --help (and -h, and pginflux help) goes to standard
// output with status 0, lists the commands, and every command's help
// shows its flags with two dashes. A --help after an argument is still
// a flag, in every command.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	daemon, stderr, status := runCLI(t, nil, "--help")
	if status != 0 || stderr != "" {
		t.Fatalf("--help: got status %d, stderr %q", status, stderr)
	}
	for _, want := range []string{"Usage:", "Commands:", "\n  send ", "\n  import ", "\n  bench ", "\n  healthcheck ", "\n  --database-url URL\n", "(env PGINFLUX_SCHEMA, default metrics)", "\n  --version\n"} {
		if !strings.Contains(daemon, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(daemon, "PGINFLUX_VERSION") {
		t.Error("--help names PGINFLUX_VERSION, which pginflux does not read")
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"--schema", "x", "--help"}} {
		if out, _, status := runCLI(t, nil, args...); out != daemon || status != 0 {
			t.Errorf("%q: got status %d and other help than --help's", args, status)
		}
	}
	for _, name := range []string{"send", "import", "bench", "healthcheck"} {
		for _, args := range [][]string{{name, "--help"}, {name, "an-argument", "-h"}, {"help", name}} {
			out, stderr, status := runCLI(t, nil, args...)
			if status != 0 || stderr != "" {
				t.Errorf("%q: got status %d, stderr %q", args, status, stderr)
			}
			if !strings.HasPrefix(out, "Usage: pginflux "+name) || !strings.Contains(out, "\n  --") {
				t.Errorf("%q: got %q, want its usage and flags", args, out)
			}
			for line := range strings.SplitSeq(out, "\n") {
				if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
					t.Errorf("%q: a flag with one dash: %q", args, line)
				}
			}
		}
	}
}

// TestCLISendFlagsAfterLines: pginflux send 'x v=1' --address host:port
// sends the one line to that address; the summary counts in the
// singular.
func TestCLISendFlagsAfterLines(t *testing.T) {
	t.Parallel()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stdout, stderr, status := runCLI(t, nil, "send", "x v=1", "--address", conn.LocalAddr().String())
	if status != 0 || stdout != "" {
		t.Fatalf("got status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
	oneLine(t, stderr, "pginflux send: 1 line in 1 datagram (6 bytes) to "+conn.LocalAddr().String())
	if err := conn.SetReadDeadline(time.Now().Add(daemontest.Patience)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "x v=1\n" {
		t.Errorf("got datagram %q, want %q", got, "x v=1\n")
	}
	// After "--" a flag is a line.
	_, stderr, status = runCLI(t, nil, "send", "--address", conn.LocalAddr().String(), "--quiet", "--", "--address")
	if status != 0 || stderr != "" {
		t.Fatalf("send -- --address: got status %d, stderr %q", status, stderr)
	}
	n, _, err = conn.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "--address\n" {
		t.Errorf("got datagram %q, want %q", got, "--address\n")
	}
}

// TestCLIVersion: --version prints the version on standard output;
// PGINFLUX_VERSION, which images set to their own version, is not
// pginflux's.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PGINFLUX_VERSION": "1.2.3"}
	stdout, stderr, status := runCLI(t, env, "--version")
	if status != 0 || stderr != "" || stdout != "pginflux "+version+"\n" {
		t.Errorf("got status %d, stdout %q, stderr %q; want pginflux %s", status, stdout, stderr, version)
	}
	if _, err := config.Load(nil, func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil {
		t.Errorf("PGINFLUX_VERSION=1.2.3: %v", err)
	}
}

// TestCLIDaemonStartsWithImageVariables runs the daemon with
// PGINFLUX_VERSION set, as images do, and JSON logs: it starts (the
// database is away, which it survives), stops on cancel, and its log
// shows durations as "1s", not as nanoseconds.
func TestCLIDaemonStartsWithImageVariables(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"PGINFLUX_VERSION":      "1.2.3",
		"PGINFLUX_LOG_FORMAT":   "json",
		"PGINFLUX_DATABASE_URL": "host=" + t.TempDir() + " user=nobody dbname=none", // no server there
		// Set, so that the daemon leaves the soft memory limit of the
		// process, which runs other tests meanwhile, alone.
		"GOMEMLIMIT": "off",
	}
	d := startCLI(t, []string{"--udp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--shutdown-timeout", "5s"},
		func(k string) string { return env[k] })
	d.log.WaitFor(t, `"msg":"listening"`)
	if err := d.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	found := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(d.log.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for key, want := range map[string]string{"flush_interval": "1s", "timeout": "5s"} {
			if v, ok := entry[key]; ok {
				found[key] = true
				if v != want {
					t.Errorf("%s: got %#v, want %q (%s)", key, v, want, line)
				}
			}
		}
	}
	if !found["flush_interval"] || !found["timeout"] {
		t.Errorf("the log lacks flush_interval or timeout:\n%s", d.log)
	}
}

// cliDaemon is the daemon run by runIO, as main runs it.
type cliDaemon struct {
	log    *daemontest.Log
	cancel context.CancelFunc
	done   chan error
}

// startCLI runs the daemon through runIO with args and getenv, its log
// captured, until stop or the test's end. Without GOMEMLIMIT in getenv
// the daemon sets the process's soft memory limit, as pginflux does; it
// is put back at the test's end.
func startCLI(t *testing.T, args []string, getenv func(string) string) *cliDaemon {
	t.Helper()
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(limit) })
	ctx, cancel := context.WithCancel(t.Context())
	d := &cliDaemon{log: &daemontest.Log{}, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- runIO(ctx, args, getenv, strings.NewReader(""), io.Discard, d.log) }()
	t.Cleanup(func() { cancel(); <-d.done; d.done <- nil })
	return d
}

// stop ends the daemon as SIGTERM does and returns run's error.
func (d *cliDaemon) stop(t *testing.T) error {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(daemontest.Patience):
		t.Fatalf("pginflux did not stop within %v\n%s", daemontest.Patience, d.log)
		return nil
	}
}

// TestSIGHUPReloads: a SIGHUP makes the running daemon read its
// configuration again (what a reload does is TestReload's, in
// internal/daemon), and does not end the process. Not parallel: the
// signal goes to the whole process, and would reload any other daemon
// running in it.
func TestSIGHUPReloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pginflux.env")
	if err := os.WriteFile(file, []byte("PGINFLUX_BATCH_SIZE=100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.FileEnv: file, "PGINFLUX_DATABASE_URL": "host=" + t.TempDir() + " user=nobody dbname=none"}
	d := startCLI(t, []string{"--udp-address", "127.0.0.1:0", "--http-address", ""}, func(k string) string { return env[k] })
	d.log.WaitFor(t, `msg=listening`)
	if err := os.WriteFile(file, []byte("PGINFLUX_BATCH_SIZE=200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.log.WaitFor(t, `msg="setting changed" setting=batch-size old=100 new=200`)
	if err := d.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// envMainArgs carries the arguments of TestMainHelperProcess.
const envMainArgs = "PGINFLUX_TEST_MAIN_ARGS"

// TestMainHelperProcess is not a test: it is the binary's main() with
// the arguments in envMainArgs, for TestMainExitStatus.
func TestMainHelperProcess(t *testing.T) {
	spec := os.Getenv(envMainArgs)
	if spec == "" {
		t.Skip("runs only as a child of TestMainExitStatus")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	os.Args = append([]string{"pginflux"}, args...)
	main()
}

// TestMainExitStatus runs main() in a process of its own: its exit
// status, and which stream gets what.
func TestMainExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		status     int
		stdout     string // a part of it
		stderrLine string // the one line of stderr; "" for none
	}{
		{name: "help", args: []string{"--help"}, status: 0, stdout: "Commands:"},
		{name: "version", args: []string{"--version"}, status: 0, stdout: "pginflux " + version},
		{name: "unknown flag", args: []string{"--no-such-flag"}, status: 2, stderrLine: "pginflux: unknown flag --no-such-flag (pginflux --help lists the flags)"},
		{name: "send usage", args: []string{"send", "x v=1", "--address"}, status: 2, stderrLine: "pginflux: send: --address needs a value"},
		{name: "failure", args: []string{"healthcheck", "--url", "::"}, status: 1, stderrLine: "pginflux: healthcheck: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := json.Marshal(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMainHelperProcess$")
			cmd.Env = append(os.Environ(), envMainArgs+"="+string(spec), "PGINFLUX_VERSION=1.2.3")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			status := 0
			if exit, ok := err.(*exec.ExitError); ok {
				status = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("got status %d, want %d; stderr %q", status, tt.status, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("got stdout %q, want %q in it", stdout.String(), tt.stdout)
			}
			if tt.stdout == "" && stdout.Len() > 0 {
				t.Errorf("got stdout %q, want nothing", stdout.String())
			}
			if tt.stderrLine == "" {
				if stderr.Len() > 0 {
					t.Errorf("got stderr %q, want nothing", stderr.String())
				}
				return
			}
			oneLine(t, stderr.String(), tt.stderrLine)
		})
	}
}

// TestSetProcs: the daemon takes half the runtime's CPUs, at least one,
// unless GOMAXPROCS is set. Not parallel: GOMAXPROCS is the process's.
func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	for _, tt := range []struct{ runtime, want int }{{1, 1}, {2, 1}, {3, 1}, {8, 4}} {
		runtime.GOMAXPROCS(tt.runtime)
		if got := setProcs(func(string) string { return "" }); got != tt.want {
			t.Errorf("%d CPUs: setProcs gave %d, want %d", tt.runtime, got, tt.want)
		}
	}
	runtime.GOMAXPROCS(8)
	env := func(k string) string {
		if k == "GOMAXPROCS" {
			return "8"
		}
		return ""
	}
	if got := setProcs(env); got != 8 {
		t.Errorf("GOMAXPROCS=8 set: setProcs gave %d, want 8 (the environment wins)", got)
	}
}
