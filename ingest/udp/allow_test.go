package udp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAllowList(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	tests := []struct {
		name  string
		allow []netip.Prefix
		addr  netip.Addr
		want  bool
	}{
		{name: "empty takes all", addr: netip.MustParseAddr("192.0.2.1"), want: true},
		{name: "empty takes unknown", addr: netip.Addr{}, want: true},
		{name: "ipv4 in", allow: pfx("10.0.0.0/8"), addr: netip.MustParseAddr("10.1.2.3"), want: true},
		{name: "ipv4 out", allow: pfx("10.0.0.0/8"), addr: netip.MustParseAddr("11.1.2.3")},
		{name: "host prefix", allow: pfx("127.0.0.2/32"), addr: netip.MustParseAddr("127.0.0.2"), want: true},
		{name: "host prefix other", allow: pfx("127.0.0.2/32"), addr: netip.MustParseAddr("127.0.0.1")},
		{name: "mapped source, ipv4 prefix", allow: pfx("10.0.0.0/8"), addr: netip.MustParseAddr("::ffff:10.1.2.3"), want: true},
		{name: "mapped source out", allow: pfx("10.0.0.0/8"), addr: netip.MustParseAddr("::ffff:11.1.2.3")},
		{name: "mapped prefix, ipv4 source", allow: pfx("::ffff:10.0.0.0/104"), addr: netip.MustParseAddr("10.1.2.3"), want: true},
		{name: "mapped prefix, mapped source", allow: pfx("::ffff:10.0.0.0/104"), addr: netip.MustParseAddr("::ffff:10.1.2.3"), want: true},
		{name: "mapped prefix out", allow: pfx("::ffff:10.0.0.0/104"), addr: netip.MustParseAddr("11.1.2.3")},
		{name: "ipv6 in", allow: pfx("2001:db8::/32"), addr: netip.MustParseAddr("2001:db8::1"), want: true},
		{name: "ipv6 out", allow: pfx("2001:db8::/32"), addr: netip.MustParseAddr("2001:db9::1")},
		{name: "ipv6 source, ipv4 prefix", allow: pfx("0.0.0.0/0"), addr: netip.MustParseAddr("::1")},
		{name: "ipv4 source, ipv6 prefix", allow: pfx("::/0"), addr: netip.MustParseAddr("10.1.2.3")},
		{name: "zoned source", allow: pfx("fe80::/10"), addr: netip.MustParseAddr("fe80::1%eth0"), want: true},
		{name: "unknown source", allow: pfx("0.0.0.0/0", "::/0"), addr: netip.Addr{}},
		{name: "second prefix", allow: pfx("10.0.0.0/8", "192.168.0.0/16"), addr: netip.MustParseAddr("192.168.7.7"), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newAllowList(tt.allow).allows(tt.addr); got != tt.want {
				t.Errorf("allows(%v) with %v: got %v, want %v", tt.addr, tt.allow, got, tt.want)
			}
		})
	}
}

// received is what a test handler saw.
type received struct {
	data string
	src  netip.AddrPort
}

// listenAllow runs a one-reader listener on addr taking only allow, and
// returns its address, its metrics and what its handler receives.
func listenAllow(t *testing.T, addr string, allow ...string) (net.Addr, *Metrics, <-chan received) {
	t.Helper()
	var prefixes []netip.Prefix
	for _, a := range allow {
		prefixes = append(prefixes, netip.MustParsePrefix(a))
	}
	got := make(chan received, 16)
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(t.Context())
	l, err := Listen(ctx, Config{Address: addr, Readers: 1, Allow: prefixes},
		func(data []byte, src netip.AddrPort, _ time.Time) {
			select {
			case got <- received{string(data), src}:
			default:
				t.Error("handler: more datagrams than expected")
			}
		}, m, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l.Addr(), m, got
}

// sendFrom sends data to dst from a socket bound to the address from.
func sendFrom(t *testing.T, from, dst string, data string) {
	t.Helper()
	c, err := net.ListenPacket("udp", from)
	if err != nil {
		t.Skipf("cannot bind %s: %v", from, err)
	}
	defer c.Close()
	ua, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo([]byte(data), ua); err != nil {
		t.Fatalf("send from %s: %v", from, err)
	}
}

func wait(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram reached the handler within 10s")
		return received{}
	}
}

// TestUDPAllow: a datagram from a source outside the allow-list never
// reaches the handler and is counted; one from inside does.
func TestUDPAllow(t *testing.T) {
	addr, m, got := listenAllow(t, "127.0.0.1:0", "127.0.0.2/32")
	sendFrom(t, "127.0.0.1:0", addr.String(), "denied")
	// Loopback delivers in order into the one socket: when the allowed
	// datagram reaches the handler, the denied one was seen before it.
	sendFrom(t, "127.0.0.2:0", addr.String(), "allowed")
	r := wait(t, got)
	if r.data != "allowed" || r.src.Addr() != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("got %q from %v, want \"allowed\" from 127.0.0.2", r.data, r.src)
	}
	if n := testutil.ToFloat64(m.Denied); n != 1 {
		t.Errorf("denied datagrams: got %v, want 1", n)
	}
	// The reader counts what it received after handing it over.
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(m.Datagrams) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := testutil.ToFloat64(m.Datagrams); n != 2 {
		t.Errorf("received datagrams: got %v, want 2 (denied ones are received too)", n)
	}
}

// TestUDPAllowDualStack: on a dual-stack socket an IPv4 sender shows up
// as ::ffff:a.b.c.d, and must match the IPv4 prefix all the same.
func TestUDPAllowDualStack(t *testing.T) {
	addr, m, got := listenAllow(t, "[::]:0", "127.0.0.1/32")
	port := addr.(*net.UDPAddr).Port
	sendFrom(t, "[::1]:0", net.JoinHostPort("::1", strconv.Itoa(port)), "from ipv6")
	sendFrom(t, "127.0.0.1:0", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "from ipv4")
	r := wait(t, got)
	if r.data != "from ipv4" {
		t.Fatalf("got %q from %v, want \"from ipv4\"", r.data, r.src)
	}
	if !r.src.Addr().Is4In6() {
		t.Errorf("the source came as %v, want it IPv4-mapped (::ffff:127.0.0.1) as on a dual-stack socket", r.src)
	}
	if n := testutil.ToFloat64(m.Denied); n != 1 {
		t.Errorf("denied datagrams: got %v, want 1 (the one from ::1)", n)
	}
}
