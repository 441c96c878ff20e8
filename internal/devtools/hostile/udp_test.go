package hostile

import (
	"net"
	"testing"
	"time"
)

func TestUDPLoad(t *testing.T) {
	t.Parallel()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	received := make(chan int, 1)
	go func() {
		buf := make([]byte, 65536)
		n := 0
		for {
			if _, _, err := c.ReadFrom(buf); err != nil { // the deadline set once the load is sent
				received <- n
				return
			}
			n++
		}
	}()
	r, err := UDPLoad(t.Context(), c.LocalAddr().String(), 20_000, 300*time.Millisecond)
	// What was sent has arrived well within this (loopback), however
	// long the load took to start on a busy machine.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines < 2_000 || r.Lines > 7_000 || r.FailedDatagrams != 0 {
		t.Errorf("sent %d lines (%d datagrams failed) at 20,000/s for 0.3 s, want about 6,000 and none failed", r.Lines, r.FailedDatagrams)
	}
	if n := <-received; n == 0 || int64(n) > r.Datagrams {
		t.Errorf("received %d datagrams of %d sent", n, r.Datagrams)
	}
}
