package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// childEnv makes the test binary act as the program devrun runs.
const childEnv = "DEVRUN_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "db":
		os.Exit(childDB())
	case "citus":
		os.Exit(childCitus())
	case "env":
		if os.Getenv("PGINFLUX_DATABASE_URL") == "" && os.Getenv("DATABASE_URL") == "configured" {
			os.Exit(4)
		}
		os.Exit(1)
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// childDB checks the database devrun provides, reports readiness by
// creating the file named by DEVRUN_TEST_READY, and exits with 42 on
// SIGTERM.
func childDB() int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("PGINFLUX_DATABASE_URL"))
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		return 10
	}
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		return 11
	}
	conn.Close(ctx)
	if err := os.WriteFile(os.Getenv("DEVRUN_TEST_READY"), nil, 0o600); err != nil {
		return 12
	}
	<-term
	return 42
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFile polls for path until it exists, and fails if devrun returns
// (done) first. How long starting servers takes depends on the machine,
// so there is no deadline of its own: it gives up only shortly before the
// test binary's -timeout, to say what it was waiting for.
func waitFile(t *testing.T, path string, done <-chan struct{}) {
	t.Helper()
	var expire <-chan time.Time
	if d, ok := t.Deadline(); ok {
		timer := time.NewTimer(time.Until(d) - 10*time.Second)
		defer timer.Stop()
		expire = timer.C
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("devrun returned before %s appeared", path)
		case <-expire:
			t.Fatalf("%s did not appear before the test binary's -timeout", path)
		case <-tick.C:
		}
	}
}

func TestRunStartsClusterAndForwardsSignals(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: when root, the postgres user must be able to enter it.
	base, err := os.MkdirTemp("", "devrun-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(base, "data")
	ready := filepath.Join(base, "ready")
	port := freePort(t)

	environ := append(withoutVar(withoutVar(os.Environ(), "PGINFLUX_DATABASE_URL"), "DATABASE_URL"),
		childEnv+"=db", "DEVRUN_TEST_READY="+ready)
	signals := make(chan os.Signal, 1)
	var stderr bytes.Buffer
	code := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		code <- run([]string{"--data-dir", dataDir, "--port", strconv.Itoa(port), "--", os.Args[0], "--udp-address", "127.0.0.1:18089", "--schema=Telegraf"},
			environ, &stderr, signals)
	}()
	waitFile(t, ready, done)
	signals <- syscall.SIGTERM
	<-done
	if got := <-code; got != 42 {
		t.Errorf("exit code: got %d, want 42; stderr:\n%s", got, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		"PostgreSQL running in " + dataDir + " (127.0.0.1:" + strconv.Itoa(port),
		"durable: fsync on",
		shellWord(os.Args[0]) + " send --address 127.0.0.1:18089 'cpu,host=a",
		"to start afresh, stop and rm -rf " + shellWord(dataDir),
		"psql -h 127.0.0.1 -p " + strconv.Itoa(port) + ` -U postgres -c 'select * from "Telegraf".cpu'`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("server still running after devrun returned (stat postmaster.pid: %v)", err)
	}
}

func TestRunWithDatabaseConfigured(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		child string
		want  int
	}{
		{name: "exit code", child: "env", want: 4},
		{name: "killed by signal", child: "kill", want: 128 + int(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := append(withoutVar(os.Environ(), "PGINFLUX_DATABASE_URL"),
				"DATABASE_URL=configured", childEnv+"="+tt.child)
			var stderr bytes.Buffer
			// The data directory would be created if devrun started a cluster.
			dataDir := filepath.Join(t.TempDir(), "data")
			got := run([]string{"--data-dir", dataDir, "--", os.Args[0]}, environ, &stderr, nil)
			if got != tt.want {
				t.Errorf("exit code: got %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("devrun made %s though a database was configured", dataDir)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if got := run(nil, nil, &stderr, nil); got != 2 {
		t.Errorf("exit code without a binary: got %d, want 2", got)
	}
	if !strings.Contains(stderr.String(), "usage: devrun") {
		t.Errorf("no usage message: %q", stderr.String())
	}
}

func TestFlagValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // "<nil>" when absent
	}{
		{name: "absent", args: []string{"--schema", "x"}, want: "<nil>"},
		{name: "double dash", args: []string{"--udp-address", ":9000"}, want: ":9000"},
		{name: "single dash equals", args: []string{"-udp-address=:9001"}, want: ":9001"},
		{name: "empty", args: []string{"--udp-address="}, want: ""},
		{name: "last wins", args: []string{"--udp-address=:1", "--udp-address", ":2"}, want: ":2"},
		{name: "no value", args: []string{"--udp-address"}, want: "<nil>"},
		{name: "after terminator", args: []string{"--", "--udp-address=:3"}, want: "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := "<nil>"
			if v := flagValue(tt.args, "udp-address"); v != nil {
				got = *v
			}
			if got != tt.want {
				t.Errorf("flagValue(%q): got %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestUDPTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr       string
		host, port string
		ok         bool
	}{
		{addr: ":8089", host: "127.0.0.1", port: "8089", ok: true},
		{addr: "0.0.0.0:8089", host: "127.0.0.1", port: "8089", ok: true},
		{addr: "[::]:8089", host: "127.0.0.1", port: "8089", ok: true},
		{addr: "[::1]:9", host: "::1", port: "9", ok: true},
		{addr: "10.1.2.3:8125", host: "10.1.2.3", port: "8125", ok: true},
		{addr: "", ok: false},
		{addr: "nonsense", ok: false},
	}
	for _, tt := range tests {
		host, port, ok := udpTarget(tt.addr)
		if host != tt.host || port != tt.port || ok != tt.ok {
			t.Errorf("udpTarget(%q): got %q, %q, %v, want %q, %q, %v", tt.addr, host, port, ok, tt.host, tt.port, tt.ok)
		}
	}
}

func TestSetting(t *testing.T) {
	t.Parallel()
	env := lookup([]string{"PGINFLUX_SCHEMA=fromenv", "PGINFLUX_UDP_ADDRESS=:7000"})
	if got := setting([]string{"--schema", "fromflag"}, "schema", env, "metrics"); got != "fromflag" {
		t.Errorf("flag over environment: got %q, want fromflag", got)
	}
	if got := setting(nil, "udp-address", env, ":8089"); got != ":7000" {
		t.Errorf("environment: got %q, want :7000", got)
	}
	if got := setting(nil, "schema", lookup(nil), "metrics"); got != "metrics" {
		t.Errorf("default: got %q, want metrics", got)
	}
}

// TestShellWord: the how-to's commands paste into any POSIX shell (dash
// too), so that paths with spaces or quotes are quoted.
func TestShellWord(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{in: "./bin/pginflux", want: "./bin/pginflux"},
		{in: "[::1]:8089", want: "[::1]:8089"},
		{in: "/home/me/my dir/pginflux", want: "'/home/me/my dir/pginflux'"},
		{in: "it's", want: `'it'\''s'`},
		{in: "$HOME", want: "'$HOME'"},
	}
	for _, tt := range tests {
		if got := shellWord(tt.in); got != tt.want {
			t.Errorf("shellWord(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}
