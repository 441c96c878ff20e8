// Package pipeline connects the transports to the sink. For datagrams
// (UDP), a Pipeline: a bounded queue that never makes the reader wait, and
// parser goroutines that turn each datagram into rows for their own
// sink.Batcher. For connections and requests (TCP, HTTP), a Stream: the
// caller parses into a sink.Shared and waits while the sink is full.
package pipeline

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// Config configures a Pipeline.
type Config struct {
	Transport     string // metric label: "udp"
	QueueSize     int    // datagrams waiting for a parser
	QueueBytes    int64  // and their bytes, at most
	Parsers       int
	Precision     parse.Precision
	FlushInterval time.Duration // how often parsers hand over old batches
}

// Pipeline queues datagrams and parses them into a sink. Handle may be
// called concurrently; Close is called once, after the last Handle.
type Pipeline struct {
	cfg     Config
	sink    *sink.Sink
	metrics *Metrics
	log     *slog.Logger

	queue   chan packet
	queued  atomic.Int64 // bytes in the queue
	dropped atomic.Int64 // datagrams dropped at the queue, for the drop log
	wg      sync.WaitGroup
	stop    chan struct{}
	watch   sync.WaitGroup
}

type packet struct {
	buf      *[]byte // from bufPool; returned once parsed
	src      netip.AddrPort
	received time.Time
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// New starts cfg.Parsers parsers writing into s.
func New(cfg Config, s *sink.Sink, m *Metrics, log *slog.Logger) *Pipeline {
	cfg.Parsers = max(cfg.Parsers, 1)
	cfg.QueueSize = max(cfg.QueueSize, 1)
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 1 << 62
	}
	p := &Pipeline{cfg: cfg, sink: s, metrics: m, log: log, queue: make(chan packet, cfg.QueueSize), stop: make(chan struct{})}
	for range cfg.Parsers {
		p.wg.Go(p.parse)
	}
	p.watch.Go(func() { p.watchDrops(dropLogEvery) })
	return p
}

// dropLogEvery is how often the drop log looks at the count of drops.
const dropLogEvery = 5 * time.Second

// watchDrops logs, at most once a period, when datagrams start being
// dropped at the queue and when they stop, with how many: a person
// should hear of loss without a log line per datagram.
func (p *Pipeline) watchDrops(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var dropping bool
	var total int64
	for {
		select {
		case <-tick.C:
		case <-p.stop:
			if dropping {
				p.log.Warn("stopped dropping datagrams", "transport", p.cfg.Transport, "dropped", total+p.dropped.Swap(0))
			}
			return
		}
		n := p.dropped.Swap(0)
		switch {
		case n > 0 && !dropping:
			dropping, total = true, n
			p.log.Warn("dropping datagrams: the queue to the parsers is full (PostgreSQL or the parsers cannot keep up); counted in pginflux_ingest_dropped_datagrams_total",
				"transport", p.cfg.Transport, "dropped", n, "queue_size", p.cfg.QueueSize, "queue_max_bytes", p.cfg.QueueBytes)
		case n > 0:
			total += n
		case dropping:
			dropping = false
			p.log.Warn("stopped dropping datagrams", "transport", p.cfg.Transport, "dropped", total)
		}
	}
}

// Handle queues a copy of data for parsing. It never waits: when the queue
// is full the datagram is dropped and counted. It has the signature of an
// ingest.Handler.
func (p *Pipeline) Handle(data []byte, src netip.AddrPort, received time.Time) {
	n := int64(len(data))
	if p.queued.Add(n) > p.cfg.QueueBytes {
		p.queued.Add(-n)
		p.drop()
		return
	}
	bp := bufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], data...)
	select {
	case p.queue <- packet{buf: bp, src: src, received: received}:
	default:
		p.queued.Add(-n)
		bufPool.Put(bp)
		p.drop()
	}
}

func (p *Pipeline) drop() {
	p.metrics.QueueDropped.Inc()
	p.dropped.Add(1)
}

// Close lets the parsers finish what is queued, hand every open batch to
// the sink, and stop. No Handle call may come during or after it.
func (p *Pipeline) Close() {
	close(p.queue)
	p.wg.Wait()
	close(p.stop)
	p.watch.Wait()
}

func (p *Pipeline) parse() {
	parser := parse.NewParser(p.cfg.Precision)
	bt := p.sink.NewBatcher()
	// The sink says how often to check, so that a reload of the flush
	// interval takes effect at the next tick.
	tick := time.NewTicker(p.sink.FlushCheckEvery())
	defer tick.Stop()
	for {
		select {
		case pkt, ok := <-p.queue:
			if !ok {
				bt.Flush()
				return
			}
			p.parsePacket(parser, bt, pkt)
		case now := <-tick.C:
			bt.FlushDue(now)
			tick.Reset(p.sink.FlushCheckEvery())
		}
	}
}

func (p *Pipeline) parsePacket(parser *parse.Parser, bt *sink.Batcher, pkt packet) {
	parser.Reset(*pkt.buf, pkt.received)
	origin := sink.Origin{Source: pkt.src, Received: pkt.received}
	lines := 0
	for {
		pt, err := parser.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			p.log.Debug("rejected a line", "transport", p.cfg.Transport, "source", pkt.src, "err", err)
			var le *parse.LineError
			if errors.As(err, &le) {
				p.metrics.rejected[le.Reason].Inc()
				bt.Reject(bytes.Clone(parser.Line(le.Line)), "", le.Reason.String(), le.Error(), origin)
			}
			continue
		}
		bt.Add(pt, origin)
		lines++
	}
	p.metrics.Lines.Add(float64(lines))
	p.queued.Add(-int64(len(*pkt.buf)))
	bufPool.Put(pkt.buf)
}

// Metrics counts what the pipeline takes in, drops and rejects. Safe for
// concurrent use.
type Metrics struct {
	QueueDropped prometheus.Counter
	Lines        prometheus.Counter
	Rejected     *prometheus.CounterVec // reason
	rejected     map[parse.Reason]prometheus.Counter
}

// NewMetrics creates the metrics of one transport's pipeline and registers
// them with reg (nil for none).
func NewMetrics(reg prometheus.Registerer, transport string) *Metrics {
	labels := prometheus.Labels{"transport": transport}
	m := &Metrics{
		QueueDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "pginflux_ingest_dropped_datagrams_total",
			Help:        "Datagrams dropped because the queue to the parsers was full (--queue-size datagrams or --queue-max-bytes).",
			ConstLabels: labels,
		}),
		Lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "pginflux_parse_lines_total",
			Help:        "Lines parsed into rows.",
			ConstLabels: labels,
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "pginflux_parse_rejected_lines_total",
			Help:        "Lines rejected by the parser, by reason.",
			ConstLabels: labels,
		}, []string{"reason"}),
		rejected: make(map[parse.Reason]prometheus.Counter),
	}
	for _, r := range parse.Reasons {
		m.rejected[r] = m.Rejected.WithLabelValues(r.String())
	}
	if reg != nil {
		reg.MustRegister(m.QueueDropped, m.Lines, m.Rejected)
	}
	return m
}
