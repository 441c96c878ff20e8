package udp

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the UDP readers see. Safe for concurrent use.
type Metrics struct {
	Datagrams  prometheus.Counter
	Reads      prometheus.Counter
	Bytes      prometheus.Counter
	Truncated  prometheus.Counter
	ReadErrors prometheus.Counter
	Denied     prometheus.Counter
}

// NewMetrics creates the transport metrics and registers them with reg
// (which may be nil, for tests that do not look at them).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Datagrams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_received_datagrams_total",
			Help: "UDP datagrams read from the sockets.",
		}),
		Reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_reads_total",
			Help: "recvmmsg calls that returned datagrams; received datagrams over this is how full the reads were (at most 32 a read).",
		}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_received_bytes_total",
			Help: "Bytes of UDP datagrams read from the sockets.",
		}),
		Truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_truncated_datagrams_total",
			Help: "UDP datagrams larger than the read buffer, dropped whole.",
		}),
		ReadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_read_errors_total",
			Help: "Failed reads from a UDP socket (the reader goes on).",
		}),
		Denied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_udp_denied_datagrams_total",
			Help: "UDP datagrams dropped because their source is not in --udp-allow.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Datagrams, m.Reads, m.Bytes, m.Truncated, m.ReadErrors, m.Denied)
	}
	return m
}
