package tcp

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the TCP listener sees. Safe for concurrent use.
type Metrics struct {
	Accepted   prometheus.Counter
	Refused    prometheus.Counter
	Open       prometheus.Gauge
	Closed     *prometheus.CounterVec // reason
	Bytes      prometheus.Counter
	Incomplete prometheus.Counter

	closed map[string]prometheus.Counter
}

// NewMetrics creates the TCP listener's metrics and registers them with
// reg (nil for none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_tcp_accepted_connections_total",
			Help: "TCP connections taken.",
		}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_tcp_refused_connections_total",
			Help: "TCP connections closed at once because as many as allowed were open.",
		}),
		Open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pginflux_tcp_open_connections",
			Help: "TCP connections being served.",
		}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pginflux_tcp_closed_connections_total",
			Help: "TCP connections ended, by reason: client, idle, error or shutdown.",
		}, []string{"reason"}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_tcp_received_bytes_total",
			Help: "Bytes read from TCP connections (after TLS).",
		}),
		Incomplete: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_tcp_incomplete_lines_total",
			Help: "Lines dropped because pginflux closed their connection (idle timeout, error, shutdown) before their line end came.",
		}),
		closed: make(map[string]prometheus.Counter),
	}
	for _, r := range closeReasons {
		m.closed[r] = m.Closed.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Accepted, m.Refused, m.Open, m.Closed, m.Bytes, m.Incomplete)
	}
	return m
}
