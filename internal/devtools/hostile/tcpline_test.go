package hostile

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
)

// TestLongTCPLine: the long line is exactly its size, the good line
// follows, and the client waits for the server's close.
func TestLongTCPLine(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type seen struct {
		lens []int
		last string
	}
	got := make(chan seen, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- seen{}
			return
		}
		defer c.Close()
		var s seen
		r := bufio.NewReaderSize(c, 1<<20)
		for {
			line, err := r.ReadSlice('\n')
			n := len(line)
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				n += len(line)
			}
			if err != nil {
				break
			}
			s.lens = append(s.lens, n)
			s.last = string(bytes.TrimSpace(line))
		}
		got <- s
	}()
	const size = 3<<20 + 5
	r, err := LongTCPLine(t.Context(), ln.Addr().String(), size)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if r.Err != "" || !r.Closed {
		t.Errorf("error %q, closed %v; want none, and the server's close", r.Err, r.Closed)
	}
	if len(s.lens) != 2 || s.lens[0] != size || !strings.HasPrefix(s.last, GoodMeasurement+",") {
		t.Fatalf("server read lines of %v bytes, the last %q; want %d then a good line", s.lens, s.last, size)
	}
	if r.Sent != int64(s.lens[0]+s.lens[1]) {
		t.Errorf("sent %d bytes, server read %d", r.Sent, s.lens[0]+s.lens[1])
	}
}
