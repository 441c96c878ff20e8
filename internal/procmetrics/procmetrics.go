// Package procmetrics registers the metrics every pginflux process has
// whatever it does: the Go runtime's, the process's (CPU, memory, file
// descriptors) and pginflux_build_info.
package procmetrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Register adds the Go runtime and process collectors and
// pginflux_build_info{version,goversion} (always 1) to reg.
func Register(reg prometheus.Registerer, version string) {
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pginflux_build_info",
		Help:        "Always 1; its labels say which pginflux this is and the Go that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info,
	)
}
