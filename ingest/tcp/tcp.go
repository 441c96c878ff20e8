// Package tcp is pginflux's TCP transport: a listener whose connections
// (plain or TLS) are read into complete lines, handed to the ConnHandler
// each connection gets (the pipeline's Stream). It knows nothing of line
// protocol or of PostgreSQL; a line too long is skipped and counted.
package tcp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pginflux/pginflux/internal/budget"
)

// DefaultMaxConnections is the default of Config.MaxConnections.
const DefaultMaxConnections = 1024

// LongLinePrefix is how much of a line longer than Config.MaxLineSize a
// ConnHandler is shown: enough to tell who sent it, never the whole line,
// which is skipped without being held.
const LongLinePrefix = 1 << 10

// initialTCPBuffer is where a connection's read buffer starts; it grows,
// up to the longest line plus its line end, only for longer lines.
const initialTCPBuffer = 64 << 10

// Config configures a Listener.
type Config struct {
	// Address is host:port with a numeric port; port 0 picks a free one.
	Address string
	// MaxConnections bounds the connections served at once; one more is
	// closed as soon as it is accepted, and counted. 0 means
	// DefaultMaxConnections.
	MaxConnections int
	// IdleTimeout closes a connection that sent nothing for this long; 0
	// never does.
	IdleTimeout time.Duration
	// MaxLineSize is the longest line taken, in bytes without its line
	// end. A longer one is skipped up to its line end and reported to
	// ConnHandler.LongLine; the connection goes on.
	MaxLineSize int
	// TLS, when not nil, serves TLS on every connection.
	TLS *tls.Config
	// Memory is what the connections' read buffers draw from the memory
	// budget; while it is spent, connections are not read (TCP's flow
	// control makes their senders wait). Nil for no budget.
	Memory *budget.Account
}

// ConnHandler receives what one TCP connection sends. Its methods are
// called from the connection's own goroutine, never concurrently, and may
// block: while they do, the connection is not read, so that the kernel's
// buffers fill and TCP's flow control makes the sender wait.
type ConnHandler interface {
	// Lines receives complete lines, each ending in a newline except the
	// last one a connection sent before closing, at most MaxLineSize bytes
	// each without the newline. lines is valid only during the call.
	// received is when they were read.
	Lines(lines []byte, received time.Time)
	// LongLine reports a line longer than MaxLineSize, which was skipped:
	// prefix holds its first bytes (at most LongLinePrefix; valid only
	// during the call), size its length without the line end (as far as
	// it was read, when the connection ended within it).
	LongLine(prefix []byte, size int64, received time.Time)
	// Close is called once, when the connection has ended.
	Close()
}

// Listener takes newline-delimited lines on TCP connections, each
// served by a goroutine of its own, and hands them to the ConnHandler that
// open returns for the connection. It knows nothing of what the lines
// hold. Create it with Listen, then call Run once.
type Listener struct {
	cfg     Config
	ln      net.Listener
	open    func(src netip.AddrPort) ConnHandler
	metrics *Metrics
	log     *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{} // served now; guarded by mu
	wg    sync.WaitGroup
}

// Listen binds cfg.Address at once, so that a bad address or a port in
// use is reported before anything starts. open is called for every
// connection taken, from its goroutine.
func Listen(ctx context.Context, cfg Config, open func(src netip.AddrPort) ConnHandler, m *Metrics, log *slog.Logger) (*Listener, error) {
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxLineSize <= 0 {
		cfg.MaxLineSize = initialTCPBuffer
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on tcp %s: %w", cfg.Address, err)
	}
	l := &Listener{cfg: cfg, ln: ln, open: open, metrics: m, log: log, conns: make(map[net.Conn]struct{})}
	log.Info("listening for line protocol", "transport", "tcp", "address", ln.Addr().String(),
		"tls", cfg.TLS != nil, "max_connections", cfg.MaxConnections, "idle_timeout", cfg.IdleTimeout,
		"max_line_size", cfg.MaxLineSize)
	return l, nil
}

// Addr returns the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// drainQuiet is how long a stopping connection is read after the last
// bytes came: what the sender had sent before the stop is in the kernel's
// buffers or on its way over the network, and is taken; a sender that
// keeps sending is cut off after drainLimit.
const drainQuiet = 100 * time.Millisecond

// drainLimit bounds a stopping connection's drain, so that a sender that
// never stops cannot hold up the shutdown.
const drainLimit = 2 * time.Second

// Run accepts connections until ctx ends. Then it stops accepting (taking
// the connections the kernel completed already), and every connection
// reads what was sent to it until it has been quiet for a moment (for a
// couple of seconds at most), hands over its complete lines and is closed;
// Run returns once all are. An incomplete last line, cut by the stop, is
// dropped and counted.
func (l *Listener) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		l.setAcceptDeadline(time.Now().Add(drainQuiet))
		l.wakeAll()
	})
	defer stop()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of file descriptors, say: wait a little, as net/http
			// does, rather than spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("tcp accept failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		l.serveNew(ctx, c)
	}
	l.ln.Close()
	l.wg.Wait()
	return nil
}

// setAcceptDeadline makes Accept give up at t: when stopping, the
// connections already waiting are still taken.
func (l *Listener) setAcceptDeadline(t time.Time) {
	if d, ok := l.ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(t)
		return
	}
	l.ln.Close()
}

// serveNew starts serving c, or closes it when pginflux serves as many
// connections as it may. A connection taken while stopping drains at
// once.
func (l *Listener) serveNew(ctx context.Context, c net.Conn) {
	l.mu.Lock()
	if len(l.conns) >= l.cfg.MaxConnections {
		l.mu.Unlock()
		c.Close()
		l.metrics.Refused.Inc()
		l.log.Debug("refused a tcp connection: too many open", "source", c.RemoteAddr(), "max_connections", l.cfg.MaxConnections)
		return
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	go l.serve(ctx, c)
}

// wakeAll makes every connection's pending read return, so that each
// notices the stop.
func (l *Listener) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.SetReadDeadline(time.Unix(1, 0))
	}
}

// Close reasons, the closed label set of
// pginflux_tcp_closed_connections_total.
const (
	closedByClient   = "client"
	closedIdle       = "idle"
	closedError      = "error"
	closedByShutdown = "shutdown"
)

var closeReasons = []string{closedByClient, closedIdle, closedError, closedByShutdown}

func (l *Listener) serve(ctx context.Context, c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	var src netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = a.AddrPort()
	}
	l.metrics.Accepted.Inc()
	l.metrics.Open.Inc()
	defer l.metrics.Open.Dec()

	conn := c
	if l.cfg.TLS != nil {
		conn = tls.Server(c, l.cfg.TLS)
	}
	h := l.open(src)
	defer h.Close()
	why, err := l.read(ctx, conn, h)
	l.metrics.closed[why].Inc()
	if err != nil {
		l.log.Debug("tcp connection closed", "source", src, "reason", why, "err", err)
	}
}

// lineReader is one connection's read state.
type lineReader struct {
	buf []byte // read buffer; buf[:n] is an incomplete line
	n   int

	// While a line longer than the limit is skipped:
	skipping bool
	prefix   []byte
	size     int64
}

// room makes room in a full buffer: it doubles, up to maxBuf, drawing
// what it grows by from mem; a line without its end that fills the
// largest buffer is skipped from then on, its start kept.
func (r *lineReader) room(maxBuf int, mem *budget.Account) {
	if len(r.buf) < maxBuf {
		grow := min(2*len(r.buf), maxBuf) - len(r.buf)
		mem.Take(int64(grow))
		r.buf = append(r.buf, make([]byte, grow)...)
		return
	}
	r.skipping = true
	r.prefix = append(r.prefix[:0], r.buf[:min(LongLinePrefix, r.n)]...)
	r.size = int64(r.n)
	r.n = 0
}

// read serves one connection until it ends, and says why it did.
func (l *Listener) read(ctx context.Context, conn net.Conn, h ConnHandler) (why string, err error) {
	maxBuf := l.cfg.MaxLineSize + 1 // the longest line and its newline
	r := &lineReader{buf: make([]byte, min(maxBuf, initialTCPBuffer))}
	l.cfg.Memory.Take(int64(len(r.buf)))
	defer func() { l.cfg.Memory.Give(int64(len(r.buf))) }()
	var drainEnd, deadline time.Time // while stopping
	for {
		draining := !drainEnd.IsZero()
		switch {
		case !draining && ctx.Err() != nil:
			// Stopping: take what was sent, until the sender is quiet.
			drainEnd = time.Now().Add(drainLimit)
			draining = true
			fallthrough
		case draining:
			deadline = time.Now().Add(drainQuiet)
			if deadline.After(drainEnd) {
				deadline = drainEnd
			}
			conn.SetReadDeadline(deadline)
		case l.cfg.IdleTimeout > 0:
			conn.SetReadDeadline(time.Now().Add(l.cfg.IdleTimeout))
			if ctx.Err() != nil {
				// The stop's wake-up may have come before this deadline
				// replaced it: drain now rather than wait out the idle
				// timeout.
				continue
			}
		}
		if r.n == len(r.buf) {
			r.room(maxBuf, l.cfg.Memory)
		}
		if !draining {
			// Back-pressure: the budget's other buffers write out first.
			l.cfg.Memory.Budget().Wait(ctx, nil)
		}
		k, rerr := conn.Read(r.buf[r.n:])
		if k > 0 {
			l.metrics.Bytes.Add(float64(k))
			r.take(k, h)
		}
		if rerr == nil {
			if draining && time.Now().After(drainEnd) {
				return l.finish(r, h, closedByShutdown, nil)
			}
			continue
		}
		timeout := errors.Is(rerr, os.ErrDeadlineExceeded)
		switch {
		case errors.Is(rerr, io.EOF):
			// The sender closed: what it sent last is a line even
			// without a newline, as in a datagram.
			if r.skipping {
				h.LongLine(r.prefix, r.size, time.Now())
			} else if r.n > 0 {
				h.Lines(r.buf[:r.n], time.Now())
			}
			return closedByClient, nil
		case timeout && draining && time.Now().Before(deadline):
			// The stop's wake-up, set after this connection's own
			// deadline: read on.
			continue
		case timeout && draining:
			return l.finish(r, h, closedByShutdown, nil)
		case timeout && ctx.Err() != nil:
			// Woken by the stop; the next round drains.
			continue
		case timeout:
			return l.finish(r, h, closedIdle, rerr)
		case ctx.Err() != nil:
			return l.finish(r, h, closedByShutdown, rerr)
		}
		return l.finish(r, h, closedError, rerr)
	}
}

// take handles k bytes just read into r.buf[r.n:].
func (r *lineReader) take(k int, h ConnHandler) {
	start := r.n
	if r.skipping {
		// Skipping reads at buf[0:]; look for the end of the long line.
		i := bytes.IndexByte(r.buf[:k], '\n')
		if i < 0 {
			r.size += int64(k)
			return
		}
		r.size += int64(i)
		r.skipping = false
		h.LongLine(r.prefix, r.size, time.Now())
		r.n = copy(r.buf, r.buf[i+1:k])
		start, k = 0, r.n
		if k == 0 {
			return
		}
	} else {
		r.n += k
	}
	// buf[:start] holds no newline: look only at what is new.
	i := bytes.LastIndexByte(r.buf[start:start+k], '\n')
	if i < 0 {
		return
	}
	end := start + i + 1
	h.Lines(r.buf[:end], time.Now())
	r.n = copy(r.buf, r.buf[end:r.n])
}

// finish ends a connection that pginflux closes: a line being skipped is
// reported, an incomplete last line is dropped and counted.
func (l *Listener) finish(r *lineReader, h ConnHandler, why string, err error) (string, error) {
	if r.skipping {
		h.LongLine(r.prefix, r.size, time.Now())
	} else if r.n > 0 {
		l.metrics.Incomplete.Inc()
	}
	return why, err
}
