// Package udp is pginflux's UDP transport: readers on one or more
// SO_REUSEPORT sockets take datagrams with recvmmsg and hand each read's
// datagrams to a BatchHandler (the pipeline). It knows nothing of line
// protocol or of PostgreSQL; what it cannot hand on it counts.
package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest datagram a UDP reader takes in whole. Larger
// ones (possible only as IPv6 jumbograms) are counted as truncated and
// dropped, never stored cut.
const MaxDatagram = 64 << 10

// readBatch is how many datagrams one recvmmsg call may return; each
// takes a MaxDatagram buffer. Reads return far fewer while the readers
// keep up (pginflux_udp_reads_total: 3 datagrams a read at 250,000 cpu
// lines/s, 6.5 at 380,000), and 64 measured no better than 32 while
// doubling the buffers.
const readBatch = 32

// Handler receives one datagram. data is valid only during the call: a
// handler that keeps it must copy it. A Handler must not block (the reader
// would stop draining its socket) and is called concurrently by every
// reader.
type Handler func(data []byte, src netip.AddrPort, received time.Time)

// Datagram is one datagram of a batch.
type Datagram struct {
	Data []byte
	Src  netip.AddrPort
}

// BatchHandler receives the datagrams one read took from a socket, all
// received at the same time: one call where a Handler would take
// len(dgs). dgs and every Data are valid only during the call: a handler
// that keeps them must copy them. A BatchHandler must not block and is
// called concurrently by every reader.
type BatchHandler func(dgs []Datagram, received time.Time)

// Config configures a Listener.
type Config struct {
	// Address is host:port with a numeric port (see config.ResolveAddress).
	// Port 0 picks a free port, shared by all readers.
	Address string
	// Readers is the number of sockets bound to the port with SO_REUSEPORT,
	// each drained by its own goroutine.
	Readers int
	// ReadBuffer is the SO_RCVBUF asked for each socket, in bytes; 0 keeps
	// the kernel's default.
	ReadBuffer int
	// Allow lists the networks whose datagrams are taken; the others are
	// dropped before the Handler and counted as denied. Empty takes all.
	Allow []netip.Prefix
}

// Listener reads datagrams from one or more sockets sharing a port and
// passes each to a Handler. Create it with Listen, then call Run once.
type Listener struct {
	conns   []*net.UDPConn
	handle  BatchHandler
	allow   allowList
	metrics *Metrics
	log     *slog.Logger
}

// Listen binds cfg.Readers sockets to cfg.Address. It binds at once, so
// that a bad address or a port in use is reported before anything starts.
// handle is called once for every datagram; see ListenBatch for a
// handler called once a read.
func Listen(ctx context.Context, cfg Config, handle Handler, m *Metrics, log *slog.Logger) (*Listener, error) {
	return ListenBatch(ctx, cfg, func(dgs []Datagram, received time.Time) {
		for _, d := range dgs {
			handle(d.Data, d.Src, received)
		}
	}, m, log)
}

// ListenBatch is Listen with a handler that takes every datagram of
// a read at once, which saves a hand-off per datagram when the handler
// queues them.
func ListenBatch(ctx context.Context, cfg Config, handle BatchHandler, m *Metrics, log *slog.Logger) (*Listener, error) {
	if cfg.Readers < 1 {
		cfg.Readers = 1
	}
	l := &Listener{handle: handle, allow: newAllowList(cfg.Allow), metrics: m, log: log}
	addr := cfg.Address
	var granted int
	for i := range cfg.Readers {
		lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = setSocketOptions(int(fd), cfg.ReadBuffer)
				if serr == nil && i == 0 {
					granted, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}}
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			l.closeAll()
			return nil, fmt.Errorf("listen on udp %s: %w", addr, err)
		}
		conn := pc.(*net.UDPConn)
		l.conns = append(l.conns, conn)
		if i == 0 {
			// Readers after the first bind exactly where the first landed,
			// which matters when the port was 0.
			addr = conn.LocalAddr().String()
		}
	}
	log.Info("listening for line protocol", "transport", "udp", "address", l.Addr().String(),
		"readers", len(l.conns), "read_buffer_asked", cfg.ReadBuffer, "read_buffer_granted", granted)
	if len(l.allow) > 0 {
		log.Info("taking udp datagrams only from the allowed networks", "allow", l.allow)
	}
	if cfg.ReadBuffer > 0 && granted < cfg.ReadBuffer {
		log.Warn("the kernel granted a smaller UDP receive buffer than asked; bursts may be dropped by the kernel (raise net.core.rmem_max or run with CAP_NET_ADMIN)",
			"asked", cfg.ReadBuffer, "granted", granted)
	}
	return l, nil
}

// setSocketOptions runs before bind: SO_REUSEPORT so that several readers
// share the port, and the receive buffer, forced past net.core.rmem_max
// when the process may (CAP_NET_ADMIN).
func setSocketOptions(fd, readBuffer int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", err)
	}
	if readBuffer > 0 {
		// The kernel doubles the value for its bookkeeping; ask for half
		// so that what getsockopt reports matches what was configured.
		half := max(readBuffer/2, 1024)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, half); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, half); err != nil {
				return fmt.Errorf("set SO_RCVBUF: %w", err)
			}
		}
	}
	return nil
}

// Addr returns the address the sockets are bound to.
func (l *Listener) Addr() net.Addr { return l.conns[0].LocalAddr() }

func (l *Listener) closeAll() {
	for _, c := range l.conns {
		c.Close()
	}
}

// Run reads until ctx is done. Each socket is read in the seed's
// drain-then-wait loop: recvmmsg takes every datagram that is waiting, and
// only when the socket is empty does the reader park until it becomes
// readable. When ctx ends, each reader drains what the kernel already holds
// for its socket, then closes it; Run returns after all have.
func (l *Listener) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.conns))
	for i, c := range l.conns {
		wg.Go(func() { errs[i] = l.read(ctx, c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Listener) read(ctx context.Context, c *net.UDPConn) error {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("read udp %s: %w", c.LocalAddr(), err)
	}
	br := newMMsgReader(rc, readBatch, MaxDatagram)
	dgs := make([]Datagram, 0, readBatch)

	// Wake the reader when ctx ends: a deadline in the past makes the
	// parked ReadBatch return.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	for {
		n, err := br.Read(0)
		if n > 0 {
			dgs = l.deliver(br, n, dgs)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			l.drain(c, br, dgs)
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		// Errors such as ECONNREFUSED from an ICMP message are about one
		// datagram, not the socket: count and go on.
		l.metrics.ReadErrors.Inc()
		l.log.Debug("udp read failed", "err", err)
	}
}

// drainLimit bounds the final drain, so that a sender that never stops
// cannot hold up the shutdown.
const drainLimit = 2 * time.Second

// drain reads, without waiting, what the kernel holds for c after the
// listener was told to stop: those datagrams were received and must not be
// lost to the shutdown.
func (l *Listener) drain(c *net.UDPConn, br *mmsgReader, dgs []Datagram) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	for end := time.Now().Add(drainLimit); time.Now().Before(end); {
		n, err := br.Read(unix.MSG_DONTWAIT)
		if n > 0 {
			dgs = l.deliver(br, n, dgs)
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// deliver hands the n datagrams of the last read to the handler, less
// the truncated and the denied ones. dgs is reused from read to read.
func (l *Listener) deliver(br *mmsgReader, n int, dgs []Datagram) []Datagram {
	now := time.Now()
	var bytes int
	dgs = dgs[:0]
	for i := range n {
		data, src, truncated := br.Datagram(i)
		bytes += len(data)
		if truncated {
			l.metrics.Truncated.Inc()
			l.log.Debug("dropped a truncated udp datagram", "source", src, "bytes", len(data))
			continue
		}
		if !l.allow.allows(src.Addr()) {
			l.metrics.Denied.Inc()
			l.log.Debug("dropped a udp datagram from a source not in --udp-allow", "source", src, "bytes", len(data))
			continue
		}
		dgs = append(dgs, Datagram{Data: data, Src: src})
	}
	if len(dgs) > 0 {
		l.handle(dgs, now)
	}
	l.metrics.Reads.Inc()
	l.metrics.Datagrams.Add(float64(n))
	l.metrics.Bytes.Add(float64(bytes))
	return dgs
}
