package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ResolveAddress checks a listen address for network ("udp" or "tcp") and
// returns it with a service name replaced by its port number, as the seed's
// CreateSocket did with getaddrinfo: "host:port", ":port", ":service" (from
// /etc/services), "[::1]:port". The host part stays as given and is resolved
// when the socket is bound. The empty string means disabled and is returned
// as is.
func ResolveAddress(network, addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port, :port or :service", addr)
	}
	if port == "" {
		return "", fmt.Errorf("%q has no port or service name", addr)
	}
	n, err := net.LookupPort(network, port)
	if err != nil {
		return "", fmt.Errorf("%q: unknown %s service or bad port %q", addr, network, port)
	}
	if strings.IndexFunc(host, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("%q: host has white space", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// ParseBytes reads a size such as "16MiB", "512KiB", "8M", "1g" or "4096".
// K, M and G are powers of 1024, as with KiB, MiB and GiB; a trailing B is
// optional.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (examples: 4096, 512KiB, 16MiB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, errors.Unwrap(err))
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%q has an unknown unit (use KiB, MiB or GiB)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// ParseAge reads an age such as "30d", "2w", "36h" or "90m": a whole
// number of days (d) or weeks (w), or a Go duration. Empty is 0.
func ParseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	for unit, d := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(t, unit); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("%q is not an age (examples: 30d, 12w, 36h)", s)
			}
			return time.Duration(v) * d, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not an age (examples: 30d, 12w, 36h)", s)
	}
	return d, nil
}
