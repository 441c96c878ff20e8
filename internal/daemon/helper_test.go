package daemon_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The end-to-end tests of the daemon: each starts the real daemon with
// package daemontest and talks to it as clients do.

func TestMain(m *testing.M) {
	daemontest.ChildMain() // in a child process of a test: the daemon, until SIGTERM
	pgtest.Main(m)
}

// numberedDatagrams returns n distinct lines of measurement, ten a
// datagram: line i has the integer field v=i and the timestamp
// 1600000000000000000+1000i (a microsecond apart: distinct points), so
// that loss and duplicates show in counts.
func numberedDatagrams(measurement string, n int) []string {
	var datagrams []string
	for i := 0; i < n; i += 10 {
		var b strings.Builder
		for j := i; j < min(i+10, n); j++ {
			fmt.Fprintf(&b, "%s,host=h%d v=%di %d\n", measurement, j%10, j, 1_600_000_000_000_000_000+int64(j)*1000)
		}
		datagrams = append(datagrams, b.String())
	}
	return datagrams
}
