package hostile

import (
	"fmt"
	"os"
	"strconv"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// PeakRSS returns the peak resident memory of process pid, in bytes:
// VmHWM of /proc/PID/status, the highest RSS since the process started
// or since ResetPeak.
func PeakRSS(pid int) (int64, error) {
	m, err := loadgen.ReadMemory(pid)
	if err != nil {
		return 0, err
	}
	return m.HWM, nil
}

// ResetPeak resets the peak resident memory of process pid to its
// current RSS, by writing 5 to /proc/PID/clear_refs (Linux 4.0 and
// later; the caller must own the process, or be root).
func ResetPeak(pid int) error {
	f, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reset peak memory of process %d: %w", pid, err)
	}
	if _, err := f.WriteString("5"); err != nil {
		f.Close()
		return fmt.Errorf("reset peak memory of process %d: %w", pid, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("reset peak memory of process %d: %w", pid, err)
	}
	return nil
}
