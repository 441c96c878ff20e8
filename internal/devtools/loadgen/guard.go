package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrRemote is returned (wrapped) for a target that is not on this
// machine when remote targets were not allowed.
var ErrRemote = errors.New("not a loopback address (pass --allow-remote to load another machine)")

// Resolver looks up a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolveUDP turns address (host:port, :port, or a host name with a port
// or service name) into the one address datagrams go to. An empty or
// unspecified host (0.0.0.0, ::) means this machine: 127.0.0.1. Unless
// allowRemote, every address the host resolves to must be a loopback
// address (127.0.0.0/8 or ::1), so that a typo never floods a network.
func ResolveUDP(ctx context.Context, r Resolver, address string, allowRemote bool) (netip.AddrPort, error) {
	host, portName, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", address, err)
	}
	port, err := net.LookupPort("udp", portName)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: no such port %q", address, portName)
	}
	addrs, err := resolveHost(ctx, r, host, allowRemote)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", address, err)
	}
	return netip.AddrPortFrom(addrs[0], uint16(port)), nil
}

// resolveHost returns the addresses of host, all loopback unless
// allowRemote.
func resolveHost(ctx context.Context, r Resolver, host string, allowRemote bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if host == "" {
		addrs = []netip.Addr{netip.IPv4Unspecified()}
	} else {
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("look up %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("look up %s: no address", host)
		}
	}
	for i, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsUnspecified() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		if !allowRemote && !a.IsLoopback() {
			return nil, fmt.Errorf("%s is %s: %w", host, a, ErrRemote)
		}
		addrs[i] = a
	}
	return addrs, nil
}

// CheckDatabase refuses a connection configuration whose hosts (the main
// one and every fallback) are not unix sockets or loopback addresses,
// unless allowRemote. So that a name cannot resolve differently when pgx
// connects, it also makes cfg dial through LoopbackDialer.
func CheckDatabase(ctx context.Context, r Resolver, cfg *pgconn.Config, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if isUnixSocket(h) {
			continue
		}
		if _, err := resolveHost(ctx, r, h, false); err != nil {
			return fmt.Errorf("database host %w", err)
		}
	}
	cfg.DialFunc = LoopbackDialer().DialContext
	return nil
}

// LoopbackDialer returns a dialer that refuses, before connecting, any
// TCP or UDP address that is not a loopback address. Unix sockets pass.
func LoopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if strings.HasPrefix(network, "unix") {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s %s: %w", network, address, err)
			}
			if !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("dial %s %s: %w", network, address, ErrRemote)
			}
			return nil
		},
	}
}

func isUnixSocket(host string) bool { return strings.HasPrefix(host, "/") }

// CheckURL refuses an http(s) URL whose host is not a loopback address,
// unless allowRemote.
func CheckURL(ctx context.Context, r Resolver, rawURL string, allowRemote bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: want http or https", rawURL)
	}
	if allowRemote {
		return nil
	}
	if _, err := resolveHost(ctx, r, u.Hostname(), false); err != nil {
		return fmt.Errorf("URL %q: %w", rawURL, err)
	}
	return nil
}
