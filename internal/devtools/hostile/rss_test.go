package hostile

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// TestPeakRSS: touching 128 MiB raises this process's peak; ResetPeak
// brings it back down once the memory is returned. Not parallel: it
// measures the whole process.
func TestPeakRSS(t *testing.T) {
	pid := os.Getpid()
	b := make([]byte, 128<<20)
	for i := range len(b) / 4096 {
		b[i*4096] = 1
	}
	peak, err := PeakRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	if peak < 128<<20 {
		t.Errorf("peak RSS with 128 MiB touched: got %d MiB, want at least 128", peak>>20)
	}
	runtime.KeepAlive(b)
	runtime.GC()
	debug.FreeOSMemory()
	if err := ResetPeak(pid); err != nil {
		t.Fatal(err)
	}
	m, err := loadgen.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS %d MiB; after ResetPeak, peak %d MiB, RSS %d MiB", peak>>20, m.HWM>>20, m.RSS>>20)
	// The peak starts again from the RSS of the moment, which the freed
	// 128 MiB no longer count in (most of them, under the race detector).
	if m.HWM >= peak || m.HWM > m.RSS+16<<20 {
		t.Errorf("peak RSS after ResetPeak: got %d MiB, want below %d MiB and near the RSS, %d MiB", m.HWM>>20, peak>>20, m.RSS>>20)
	}
}

func TestPeakRSSNoProcess(t *testing.T) {
	t.Parallel()
	if _, err := PeakRSS(-1); err == nil {
		t.Error("PeakRSS(-1): got nil, want an error")
	}
	if err := ResetPeak(-1); err == nil {
		t.Error("ResetPeak(-1): got nil, want an error")
	}
}
