package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ServerInfo is what a run knows of the PostgreSQL server it verifies
// against: whether it writes durably, and, when it runs on this machine
// and its data directory can be read, the postmaster whose processes'
// CPU time is measured.
type ServerInfo struct {
	Version           string `json:"version,omitempty"`
	Fsync             string `json:"fsync"`
	SynchronousCommit string `json:"synchronous_commit"`
	FullPageWrites    string `json:"full_page_writes"`
	// PID is the postmaster's process id, 0 when the server's processes
	// cannot be seen (why is in CPUError).
	PID      int    `json:"postmaster_pid,omitempty"`
	CPUError string `json:"cpu_error,omitempty"`
}

// Durable reports whether the server keeps what it acknowledged across a
// crash of the machine: fsync and full_page_writes on, and commits
// flushed before they are acknowledged.
func (s *ServerInfo) Durable() bool {
	return s.Fsync == "on" && s.FullPageWrites == "on" && s.SynchronousCommit != "off"
}

// Settings describes the durability settings for people.
func (s *ServerInfo) Settings() string {
	return fmt.Sprintf("fsync=%s, synchronous_commit=%s, full_page_writes=%s", s.Fsync, s.SynchronousCommit, s.FullPageWrites)
}

// InspectServer connects to cfg and reads the server's durability
// settings; when the server is reached over loopback or a unix socket it
// also looks for its postmaster through the data directory's
// postmaster.pid. Failing to find the postmaster is not an error: PID
// stays 0 and CPUError says why.
func InspectServer(ctx context.Context, cfg *pgx.ConnConfig) (*ServerInfo, error) {
	cfg = cfg.Copy()
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pginflux-bench"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s := &ServerInfo{}
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('fsync'),"+
		" current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('port')::int").
		Scan(&s.Version, &s.Fsync, &s.SynchronousCommit, &s.FullPageWrites, new(int))
	if err != nil {
		return nil, fmt.Errorf("read the server's settings: %w", err)
	}
	s.PID, err = findPostmaster(ctx, conn)
	if err != nil {
		s.CPUError = err.Error()
	}
	return s, nil
}

// findPostmaster returns the process id of the server conn is connected
// to, when it runs on this machine.
func findPostmaster(ctx context.Context, conn *pgx.Conn) (int, error) {
	switch a := conn.PgConn().Conn().RemoteAddr().(type) {
	case *net.UnixAddr:
	case *net.TCPAddr:
		if !a.IP.IsLoopback() {
			return 0, errors.New("the server is not on this machine")
		}
	default:
		return 0, fmt.Errorf("the server is reached over %s, not loopback", a.Network())
	}
	var dir string
	var port, backend int
	// data_directory needs superuser or pg_read_all_settings.
	err := conn.QueryRow(ctx, "SELECT current_setting('data_directory'), current_setting('port')::int, pg_backend_pid()").Scan(&dir, &port, &backend)
	if err != nil {
		return 0, fmt.Errorf("cannot read data_directory (needs pg_read_all_settings): %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("read the postmaster's pid file: %w", err)
	}
	pid, pidPort, err := parsePostmasterPID(b)
	if err != nil {
		return 0, err
	}
	// The same data directory path on another machine would name another
	// server: the connection's own backend must be the postmaster's child.
	if pidPort != port {
		return 0, fmt.Errorf("%s/postmaster.pid is for port %d, not %d", dir, pidPort, port)
	}
	if ppid, err := readPPID(backend); err != nil || ppid != pid {
		return 0, fmt.Errorf("the server's backend %d is not a child of postmaster %d on this machine", backend, pid)
	}
	return pid, nil
}

// parsePostmasterPID reads the postmaster's pid (line 1) and port
// (line 4) from the text of postmaster.pid.
func parsePostmasterPID(b []byte) (pid, port int, err error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, errors.New("postmaster.pid: fewer than 4 lines")
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("postmaster.pid: unexpected pid %q or port %q", lines[0], lines[3])
	}
	return pid, port, nil
}

// procStatFields returns the fields of /proc/PID/stat after the command
// name, which may hold spaces and parentheses: fields[0] is the state
// (field 3 in proc(5)).
func procStatFields(b []byte) ([]string, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("process stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("process stat: %d fields", len(f))
	}
	return f, nil
}

func readPPID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f, err := procStatFields(b)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// ReadServerCPU returns the CPU time, in seconds, of a PostgreSQL server:
// its postmaster's own, that of the children it has reaped (cutime,
// cstime: backends that ended), and that of its children still running.
// Between two readings no process's time is lost or counted twice: a
// child that ends moves from the live sum to the postmaster's reaped
// time.
func ReadServerCPU(postmaster int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(postmaster) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu time of the postmaster: %w", err)
	}
	f, err := procStatFields(b)
	if err != nil {
		return 0, err
	}
	var ticks float64
	// utime(14) stime(15) cutime(16) cstime(17), counted from field 3.
	for _, s := range f[11:15] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("postmaster stat: %q is not a number", s)
		}
		ticks += v
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	parent := strconv.Itoa(postmaster)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile: its time is in the postmaster's cutime
		}
		f, err := procStatFields(b)
		if err != nil || f[1] != parent {
			continue
		}
		u, err1 := strconv.ParseFloat(f[11], 64)
		s, err2 := strconv.ParseFloat(f[12], 64)
		if err1 == nil && err2 == nil {
			ticks += u + s
		}
	}
	return ticks / clockTicks, nil
}
