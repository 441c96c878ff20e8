package loadgen

import (
	"os"
	"testing"
)

func TestParsePostmasterPID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		text      string
		pid, port int
		wantErr   bool
	}{
		{name: "postgres 15", text: "5587\n/tmp/durpg/data\n1764605196\n54340\n/tmp/durpg\n127.0.0.1\n  1234567   32768\nready   \n", pid: 5587, port: 54340},
		{name: "too short", text: "5587\n/tmp/data\n", wantErr: true},
		{name: "not a pid", text: "x\n/tmp/data\n1\n5432\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, port, err := parsePostmasterPID([]byte(tt.text))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if pid != tt.pid || port != tt.port {
				t.Errorf("got pid %d, port %d; want %d, %d", pid, port, tt.pid, tt.port)
			}
		})
	}
}

// TestReadServerCPU reads this process as if it were a postmaster: its
// time is at least its own.
func TestReadServerCPU(t *testing.T) {
	t.Parallel()
	own, err := ReadProcessCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	got, err := ReadServerCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got < own {
		t.Errorf("got %v s, want at least the process's own %v s", got, own)
	}
}

// TestInspectServer reads the settings of the test server and finds its
// postmaster when it runs on this machine.
func TestInspectServer(t *testing.T) {
	t.Parallel()
	s, err := InspectServer(t.Context(), testConnConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Fsync == "" || s.SynchronousCommit == "" || s.FullPageWrites == "" || s.Version == "" {
		t.Errorf("settings missing: %+v", s)
	}
	if s.PID == 0 {
		t.Logf("postmaster not found (a remote server?): %s", s.CPUError)
		return
	}
	if _, err := ReadServerCPU(s.PID); err != nil {
		t.Errorf("read cpu of postmaster %d: %v", s.PID, err)
	}
}
