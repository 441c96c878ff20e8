package udp

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

func TestParseSockaddr(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 8089)
	copy(v4[4:], []byte{10, 1, 2, 3})
	v6 := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 65535)
	copy(v6[8:], netip.MustParseAddr("::ffff:192.0.2.1").AsSlice())
	binary.NativeEndian.PutUint32(v6[24:], 2) // a scope id: left out
	unknown := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(unknown, unix.AF_UNIX)
	tests := []struct {
		name string
		b    []byte
		want netip.AddrPort
	}{
		{name: "ipv4", b: v4, want: netip.MustParseAddrPort("10.1.2.3:8089")},
		{name: "ipv6, mapped ipv4", b: v6, want: netip.MustParseAddrPort("[::ffff:192.0.2.1]:65535")},
		{name: "ipv4, short", b: v4[:8], want: netip.AddrPort{}},
		{name: "empty (no address from the kernel)", b: nil, want: netip.AddrPort{}},
		{name: "other family", b: unknown, want: netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseSockaddr(tt.b); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestListenUDPBatch sends datagrams of many sizes, the largest a UDP
// datagram over IPv4 can be, and finds each whole, in order, with its
// source, in batches no larger than a read.
func TestListenUDPBatch(t *testing.T) {
	type batch struct {
		data []string
		srcs []netip.AddrPort
	}
	got := make(chan batch, 1000)
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(t.Context())
	l, err := ListenBatch(ctx, Config{Address: "127.0.0.1:0", Readers: 1, ReadBuffer: 8 << 20},
		func(dgs []Datagram, _ time.Time) {
			var b batch
			for _, d := range dgs {
				b.data = append(b.data, string(d.Data))
				b.srcs = append(b.srcs, d.Src)
			}
			got <- b
		}, m, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	var want []string
	for i := range 300 {
		size := []int{1, 100, 1500, 9000, 65507}[i%5]
		d := fmt.Sprintf("%d,", i)
		if len(d) < size {
			d += strings.Repeat("x", size-len(d))
		}
		want = append(want, d)
		if _, err := c.Write([]byte(want[i])); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	batches := 0
	timeout := time.After(10 * time.Second)
	for len(all) < len(want) {
		select {
		case b := <-got:
			batches++
			if len(b.data) > readBatch {
				t.Errorf("a batch of %d datagrams, more than a read's %d", len(b.data), readBatch)
			}
			for _, s := range b.srcs {
				if s != from {
					t.Errorf("source: got %v, want %v", s, from)
				}
			}
			all = append(all, b.data...)
		case <-timeout:
			t.Fatalf("got %d of %d datagrams", len(all), len(want))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Fatalf("datagram %d: got %d bytes starting %.10q, want %d bytes starting %.10q", i, len(all[i]), all[i], len(want[i]), want[i])
		}
	}
	if n := testutil.ToFloat64(m.Datagrams); n != float64(len(want)) {
		t.Errorf("datagrams counted: got %v, want %d", n, len(want))
	}
	if n := testutil.ToFloat64(m.Reads); n != float64(batches) {
		t.Errorf("reads counted: got %v, want %d (one a batch)", n, batches)
	}
}

// BenchmarkRead measures a read of a batch of cpu-sized datagrams waiting
// on a socket: the syscall, and the reader's own work, which allocates
// nothing.
func BenchmarkRead(b *testing.B) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	if err := pc.SetReadBuffer(8 << 20); err != nil {
		b.Fatal(err)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	r := newMMsgReader(rc, readBatch, MaxDatagram)
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dg := []byte(strings.Repeat("x", 2700))
	const perRead = 16
	b.ReportAllocs()
	b.SetBytes(perRead * int64(len(dg)))
	for b.Loop() {
		b.StopTimer()
		for range perRead {
			if _, err := c.Write(dg); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for got := 0; got < perRead; {
			n, err := r.Read(0)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if data, _, _ := r.Datagram(i); len(data) != len(dg) {
					b.Fatalf("got %d bytes, want %d", len(data), len(dg))
				}
			}
			got += n
		}
	}
}
