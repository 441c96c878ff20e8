// Package pipeline connects the transports to the sink. For datagrams
// (UDP), a Pipeline: a bounded queue that never makes the reader wait, and
// parser goroutines that turn each datagram into rows for their own
// sink.Batcher. The datagrams of one read travel together, packed in one
// buffer: one hand-off a read, not one a datagram. For connections and requests (TCP, HTTP), a Stream: the
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

	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// Config configures a Pipeline.
type Config struct {
	Transport string // metric label: "udp"
	QueueSize int    // datagrams waiting for a parser
	// QueueBytes bounds the memory of the buffers holding the datagrams
	// waiting for a parser: their capacity, not only the datagrams'
	// bytes, is counted.
	QueueBytes int64
	// Memory is what the queue's buffers draw from the memory budget: a
	// datagram that does not fit is dropped and counted, as at
	// QueueBytes. Nil for no budget.
	Memory        *budget.Account
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

	queue     chan *packet
	queued    atomic.Int64 // bytes of the buffers in the queue (their capacity)
	queuedDgs atomic.Int64 // datagrams in the queue
	dropped   atomic.Int64 // datagrams dropped at the queue, for the drop log
	wg        sync.WaitGroup
	stop      chan struct{}
	watch     sync.WaitGroup
}

// packet is the datagrams of one read, back to back in buf. It comes from
// the pool of its buffer's size class and goes back to it once parsed.
type packet struct {
	buf      []byte
	ends     []int // end of each datagram in buf
	srcs     []netip.AddrPort
	received time.Time
	class    int
}

// Buffers come in size classes, each 1.5 or 4/3 times the one before
// (256 B, 384 B, 512 B, 768 B, ...), so that a buffer is at most a third
// larger than what it holds and the queue's byte bound counts nearly what
// is allocated. Each class has its own pool: a small read never keeps a
// large buffer alive.
const (
	minClassShift = 8      // 256 B
	numClasses    = 2 * 16 // the largest: 256 B << 15 · 1.5 = 12 MiB, more than a read of 64 datagrams of 64 KiB
)

var packetPools [numClasses]sync.Pool

// classOf returns the smallest class whose buffers hold n bytes.
func classOf(n int) int {
	for c := range numClasses {
		if classSize(c) >= n {
			return c
		}
	}
	return -1
}

// classSize is the capacity of the buffers of class c.
func classSize(c int) int {
	size := 1 << (minClassShift + c/2)
	if c%2 == 1 {
		size += size / 2
	}
	return size
}

func getPacket(class int) *packet {
	if pk, ok := packetPools[class].Get().(*packet); ok {
		return pk
	}
	return &packet{buf: make([]byte, 0, classSize(class)), class: class}
}

func putPacket(pk *packet) {
	pk.buf, pk.ends, pk.srcs = pk.buf[:0], pk.ends[:0], pk.srcs[:0]
	packetPools[pk.class].Put(pk)
}

// New starts cfg.Parsers parsers writing into s.
func New(cfg Config, s *sink.Sink, m *Metrics, log *slog.Logger) *Pipeline {
	cfg.Parsers = max(cfg.Parsers, 1)
	cfg.QueueSize = max(cfg.QueueSize, 1)
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 1 << 62
	}
	// Every packet holds at least one datagram: the datagram bound keeps
	// the channel from filling.
	p := &Pipeline{cfg: cfg, sink: s, metrics: m, log: log, queue: make(chan *packet, cfg.QueueSize), stop: make(chan struct{})}
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
			p.log.Warn("dropping datagrams: the queue to the parsers is full, or the memory budget spent (PostgreSQL or the parsers cannot keep up); counted in pginflux_ingest_dropped_datagrams_total",
				"transport", p.cfg.Transport, "dropped", n, "queue_size", p.cfg.QueueSize, "queue_max_bytes", p.cfg.QueueBytes,
				"memory_budget", p.cfg.Memory.Budget().Max(), "memory_used", p.cfg.Memory.Budget().Used())
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
// udp.Handler.
func (p *Pipeline) Handle(data []byte, src netip.AddrPort, received time.Time) {
	dgs := [1]udp.Datagram{{Data: data, Src: src}}
	p.HandleBatch(dgs[:], received)
}

// HandleBatch queues a copy of the datagrams of one read, in one buffer,
// for parsing. It never waits: the datagrams that do not fit in the queue
// (--queue-size datagrams, --queue-max-bytes of buffers) are dropped and
// counted. It has the signature of an udp.BatchHandler.
func (p *Pipeline) HandleBatch(dgs []udp.Datagram, received time.Time) {
	// Take the longest prefix of dgs that fits; the rest is dropped.
	k := int(min(int64(len(dgs)), int64(p.cfg.QueueSize)-p.queuedDgs.Load()))
	k = max(k, 0)
	size := 0
	for i := range k {
		size += len(dgs[i].Data)
	}
	class := -1
	room := p.cfg.QueueBytes - p.queued.Load()
	for ; k > 0; k-- {
		if class = classOf(size); class >= 0 && int64(classSize(class)) <= room {
			break
		}
		size -= len(dgs[k-1].Data)
	}
	if k == 0 {
		p.drop(len(dgs))
		return
	}
	// Reserve; another reader may have taken the room meanwhile.
	capacity := int64(classSize(class))
	if p.queued.Add(capacity) > p.cfg.QueueBytes || p.queuedDgs.Add(int64(k)) > int64(p.cfg.QueueSize) {
		p.queued.Add(-capacity)
		p.queuedDgs.Add(-int64(k))
		p.drop(len(dgs))
		return
	}
	if !p.cfg.Memory.Admit(capacity) {
		p.queued.Add(-capacity)
		p.queuedDgs.Add(-int64(k))
		p.drop(len(dgs))
		return
	}
	pk := getPacket(class)
	for _, d := range dgs[:k] {
		pk.buf = append(pk.buf, d.Data...)
		pk.ends = append(pk.ends, len(pk.buf))
		pk.srcs = append(pk.srcs, d.Src)
	}
	pk.received = received
	select {
	case p.queue <- pk:
	default: // cannot happen while every packet holds a datagram
		p.release(pk)
		k = 0
	}
	if k < len(dgs) {
		p.drop(len(dgs) - k)
	}
}

func (p *Pipeline) drop(n int) {
	p.metrics.QueueDropped.Add(float64(n))
	p.dropped.Add(int64(n))
}

// release returns pk's room in the queue and pk to its pool.
func (p *Pipeline) release(pk *packet) {
	p.queued.Add(-int64(classSize(pk.class)))
	p.cfg.Memory.Give(int64(classSize(pk.class)))
	p.queuedDgs.Add(-int64(len(pk.ends)))
	putPacket(pk)
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

func (p *Pipeline) parsePacket(parser *parse.Parser, bt *sink.Batcher, pk *packet) {
	lines, start := 0, 0
	for i, end := range pk.ends {
		lines += p.parseDatagram(parser, bt, pk.buf[start:end], sink.Origin{Source: pk.srcs[i], Received: pk.received})
		start = end
	}
	p.metrics.Lines.Add(float64(lines))
	p.release(pk)
}

// parseDatagram parses one datagram into bt and returns the lines taken.
func (p *Pipeline) parseDatagram(parser *parse.Parser, bt *sink.Batcher, data []byte, origin sink.Origin) int {
	parser.Reset(data, origin.Received)
	lines := 0
	for {
		pt, err := parser.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			p.log.Debug("rejected a line", "transport", p.cfg.Transport, "source", origin.Source, "err", err)
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
	return lines
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
