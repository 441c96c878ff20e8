package hostile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// Measurements of LongTCPLine: the long line's, which should be rejected
// (too long), and the good line's after it, which should be stored.
const (
	LongMeasurement = "hostile_long"
	GoodMeasurement = "hostile_tcp"
)

// MaxLineSize is the longest line LongTCPLine sends.
const MaxLineSize = 1 << 30

// tcpWait is how long LongTCPLine waits for pginflux to close the
// connection after the client closed its side.
const tcpWait = 30 * time.Second

// TCPLineResult is what LongTCPLine did.
type TCPLineResult struct {
	Size    int64   `json:"size"` // of the long line, its newline included
	Sent    int64   `json:"sent"` // bytes sent in all, the good line included
	Seconds float64 `json:"seconds"`
	// Closed says pginflux closed the connection after reading all of it
	// (within 30 s of the client's close); Err is a failed write or close.
	Closed bool   `json:"closed"`
	Err    string `json:"error,omitempty"`
}

// LongTCPLine connects to pginflux's TCP address addr and sends one line
// of LongMeasurement of size bytes, newline included, then a good line
// (one point of GoodMeasurement), then closes its side and waits for
// pginflux to close. pginflux should reject the long line (too long) and
// store the good one. The long line is sent from a buffer of 64 KiB,
// never held whole.
func LongTCPLine(ctx context.Context, addr string, size int64) (*TCPLineResult, error) {
	if err := loopbackHostPort(ctx, addr); err != nil {
		return nil, err
	}
	head := []byte(LongMeasurement + ",k=v f=\"")
	tail := []byte("\" " + strconv.Itoa(bigTime) + "\n")
	if err := checkSize("line size", size, MaxLineSize); err != nil {
		return nil, err
	}
	if size < int64(len(head)+len(tail)) {
		return nil, fmt.Errorf("line size %d: want at least %d", size, len(head)+len(tail))
	}
	c, err := loadgen.LoopbackDialer().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	start := time.Now()
	r := &TCPLineResult{Size: size}
	err = sendLongLine(c, head, tail, size, &r.Sent)
	if err == nil {
		var n int
		n, err = fmt.Fprintf(c, "%s,after=long v=1i %d\n", GoodMeasurement, bigTime)
		r.Sent += int64(n)
	}
	if err == nil {
		err = c.(*net.TCPConn).CloseWrite()
	}
	if err != nil {
		r.Err = err.Error()
	} else {
		_ = c.SetReadDeadline(time.Now().Add(tcpWait))
		_, err := io.Copy(io.Discard, io.LimitReader(c, 1<<20))
		r.Closed = err == nil
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// sendLongLine writes head, filler and tail to w, size bytes in all,
// counting what was written in sent.
func sendLongLine(w io.Writer, head, tail []byte, size int64, sent *int64) error {
	fill := bytes.Repeat([]byte{'x'}, 64<<10)
	write := func(b []byte) error {
		n, err := w.Write(b)
		*sent += int64(n)
		if err != nil {
			return fmt.Errorf("send the long line: %w", err)
		}
		return nil
	}
	if err := write(head); err != nil {
		return err
	}
	for left := size - int64(len(head)+len(tail)); left > 0; left -= int64(len(fill)) {
		if err := write(fill[:min(left, int64(len(fill)))]); err != nil {
			return err
		}
	}
	return write(tail)
}
