package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// sendBatch is how many datagrams one sendmmsg call takes at most.
const sendBatch = 64

// SendConfig says what Send sends, where, how fast and for how long.
type SendConfig struct {
	Address  netip.AddrPort // from ResolveUDP
	Workload *Workload
	Base     time.Time // timestamp of line 0 (truncated to the microsecond)
	// Rate is lines per second over all senders; 0 sends as fast as
	// possible.
	Rate float64
	// Lines and Duration bound the run: it stops at whichever comes
	// first. Both must be positive.
	Lines    int64
	Duration time.Duration
	// Senders is the number of goroutines, each with its own socket and
	// an equal share of the rate and lines.
	Senders          int
	LinesPerDatagram int // lines a datagram, or a request over HTTP
	MaxDatagramSize  int // bytes; at least Workload.MaxLineLen()
	// HTTPURL, when set, sends over HTTP instead of UDP: POST bodies of
	// LinesPerDatagram lines to this /write or /api/v2/write URL, one
	// request at a time a sender, gzipped with Gzip; only 204 counts as
	// sent. Address is not used then.
	HTTPURL    string
	Gzip       bool
	HTTPClient *http.Client // nil: a client dialing loopback only
	// Live, when set, counts what was sent as it is sent, for watching a
	// run while it goes on (--report-every).
	Live *LiveCounts
}

// LiveCounts are the lines and datagrams (or requests) sent so far, added
// to by every sender as the kernel (or pginflux) takes them.
type LiveCounts struct {
	Lines     atomic.Int64
	Datagrams atomic.Int64
}

// add counts lines in datagrams more sent; l may be nil.
func (l *LiveCounts) add(lines, datagrams int64) {
	if l != nil && datagrams > 0 {
		l.Lines.Add(lines)
		l.Datagrams.Add(datagrams)
	}
}

// Validate reports every problem with c at once.
func (c *SendConfig) Validate() error {
	var errs []error
	if !c.Address.IsValid() && c.HTTPURL == "" {
		errs = append(errs, errors.New("no address"))
	}
	if c.Workload == nil {
		errs = append(errs, errors.New("no workload"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v is negative", c.Rate))
	}
	if c.Lines < 1 {
		errs = append(errs, fmt.Errorf("lines %d: want at least 1", c.Lines))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: want more than 0", c.Duration))
	}
	if c.Senders < 1 || c.Senders > 1024 {
		errs = append(errs, fmt.Errorf("senders %d: want 1..1024", c.Senders))
	}
	if c.LinesPerDatagram < 1 {
		errs = append(errs, fmt.Errorf("lines per datagram %d: want at least 1", c.LinesPerDatagram))
	}
	if c.Workload != nil && (c.MaxDatagramSize < c.Workload.MaxLineLen() || c.MaxDatagramSize > MaxDatagramSize) {
		errs = append(errs, fmt.Errorf("datagram size %d: want %d (the longest line of workload %s) to %d",
			c.MaxDatagramSize, c.Workload.MaxLineLen(), c.Workload.Name, MaxDatagramSize))
	}
	return errors.Join(errs...)
}

// MaxDatagramSize is the largest UDP payload over IPv4.
const MaxDatagramSize = 65507

// SendResult is what Send did.
type SendResult struct {
	Lines     int64 // in datagrams the kernel took
	Datagrams int64
	Bytes     int64
	// FailedDatagrams were refused by the kernel (ECONNREFUSED when
	// nothing listens, say); their lines are not in Lines.
	FailedDatagrams int64
	FailedLines     int64
	LastError       error // of the last failed datagram
	Start, End      time.Time
	// LastSeq is one past the highest line number generated; lines of
	// this run have the timestamps Base .. Base + (LastSeq-1)*SeqStride.
	LastSeq uint64
}

// Seconds returns how long sending took.
func (r *SendResult) Seconds() float64 { return r.End.Sub(r.Start).Seconds() }

// Send sends cfg.Lines lines of cfg.Workload to cfg.Address at cfg.Rate,
// stopping early when cfg.Duration has passed or ctx ends. Errors sending
// single datagrams are counted, not returned; the error is for a run that
// could not start.
func Send(ctx context.Context, cfg SendConfig) (*SendResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HTTPURL != "" {
		return sendHTTP(ctx, cfg)
	}
	conns := make([]*net.UDPConn, cfg.Senders)
	for i := range conns {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(cfg.Address))
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return nil, fmt.Errorf("open udp socket to %s: %w", cfg.Address, err)
		}
		conns[i] = c
	}

	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()
	results := make([]SendResult, cfg.Senders)
	var wg sync.WaitGroup
	n := int64(cfg.Senders)
	for i, c := range conns {
		quota := quotaOf(cfg.Lines, i, cfg.Senders)
		s := &sender{
			conn:  c,
			gen:   NewGenerator(cfg.Workload, cfg.Base, uint64(i), uint64(n)),
			pacer: NewPacer(cfg.Rate/float64(n), DefaultSlice),
			quota: quota,
			per:   cfg.LinesPerDatagram,
			size:  cfg.MaxDatagramSize,
			res:   &results[i],
			live:  cfg.Live,
		}
		s.pacer.start = start
		wg.Go(func() {
			defer c.Close()
			s.run(ctx)
		})
	}
	wg.Wait()

	return sumResults(start, results), nil
}

// quotaOf returns sender i's share of lines among n senders.
func quotaOf(lines int64, i, n int) int64 {
	q := lines / int64(n)
	if int64(i) < lines%int64(n) {
		q++
	}
	return q
}

// sumResults adds up the senders' results of a run started at start.
func sumResults(start time.Time, results []SendResult) *SendResult {
	total := &SendResult{Start: start}
	for i := range results {
		r := &results[i]
		total.Lines += r.Lines
		total.Datagrams += r.Datagrams
		total.Bytes += r.Bytes
		total.FailedDatagrams += r.FailedDatagrams
		total.FailedLines += r.FailedLines
		if r.LastError != nil {
			total.LastError = r.LastError
		}
		if r.End.After(total.End) {
			total.End = r.End
		}
		total.LastSeq = max(total.LastSeq, r.LastSeq)
	}
	if total.End.IsZero() {
		total.End = time.Now()
	}
	return total
}

// batchWriter is what ipv4.PacketConn and ipv6.PacketConn have in common.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// sender is one goroutine's socket, generator and pacer.
type sender struct {
	conn  *net.UDPConn
	gen   *Generator
	pacer *Pacer
	quota int64
	per   int // lines per datagram
	size  int // bytes per datagram at most
	res   *SendResult
	live  *LiveCounts // nil when nobody watches
}

func (s *sender) run(ctx context.Context) {
	var bw batchWriter
	if a := s.conn.RemoteAddr().(*net.UDPAddr); a.IP.To4() != nil {
		bw = ipv4.NewPacketConn(s.conn)
	} else {
		bw = ipv6.NewPacketConn(s.conn)
	}
	msgs := make([]ipv4.Message, sendBatch)
	bufs := make([][]byte, sendBatch)
	lines := make([]int, sendBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, s.size)
		msgs[i].Buffers = make([][]byte, 1)
	}
	var generated int64
	for generated < s.quota {
		due, err := s.pacer.Wait(ctx, s.per)
		if err != nil {
			break
		}
		k := min(max(due/s.per, 1), sendBatch)
		batchLines := 0
		for i := range k {
			left := s.quota - generated
			if left == 0 {
				k = i
				break
			}
			b, n := s.gen.AppendDatagram(bufs[i][:0], int(min(int64(s.per), left)), s.size)
			bufs[i], msgs[i].Buffers[0], lines[i] = b, b, n
			generated += int64(n)
			batchLines += n
		}
		s.write(bw, msgs[:k], lines[:k])
		s.pacer.Take(batchLines)
	}
	s.res.End = time.Now()
	s.res.LastSeq = s.gen.Next() - s.gen.step + 1
	if generated == 0 {
		s.res.LastSeq = 0
	}
}

// write sends msgs, skipping (and counting) a datagram the kernel refuses.
func (s *sender) write(bw batchWriter, msgs []ipv4.Message, lines []int) {
	for off := 0; off < len(msgs); {
		n, err := bw.WriteBatch(msgs[off:], 0)
		n = max(n, 0) // -1 with an error
		var sent int64
		for i := off; i < off+n; i++ {
			s.res.Datagrams++
			s.res.Lines += int64(lines[i])
			s.res.Bytes += int64(msgs[i].N)
			sent += int64(lines[i])
		}
		s.live.add(sent, int64(n))
		off += n
		if err == nil && n == 0 {
			err = errors.New("sendmmsg sent nothing")
		}
		if err != nil && off < len(msgs) {
			s.res.FailedDatagrams++
			s.res.FailedLines += int64(lines[off])
			s.res.LastError = err
			off++
		}
	}
}
