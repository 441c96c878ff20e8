package loadgen

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// fakeResolver answers from a map and fails for anything else, so that no
// test depends on DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

var testResolver = fakeResolver{
	"localhost":   {"127.0.0.1", "::1"},
	"example.com": {"93.184.216.34"},
	"mixed.test":  {"127.0.0.1", "10.0.0.1"},
}

func TestResolveUDP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		address     string
		allowRemote bool
		want        string // "" when an error is expected
		remote      bool   // the error is ErrRemote
	}{
		{address: "127.0.0.1:8089", want: "127.0.0.1:8089"},
		{address: "127.3.4.5:1", want: "127.3.4.5:1"},
		{address: "[::1]:8089", want: "[::1]:8089"},
		{address: "[::ffff:127.0.0.1]:8089", want: "127.0.0.1:8089"},
		{address: ":8089", want: "127.0.0.1:8089"},
		{address: "0.0.0.0:8089", want: "127.0.0.1:8089"},
		{address: "[::]:8089", want: "127.0.0.1:8089"},
		{address: "localhost:8089", want: "127.0.0.1:8089"},
		{address: "10.0.0.1:8089", remote: true},
		{address: "192.168.1.10:8089", remote: true},
		{address: "[2001:db8::1]:8089", remote: true},
		{address: "example.com:8089", remote: true},
		{address: "mixed.test:8089", remote: true},
		{address: "10.0.0.1:8089", allowRemote: true, want: "10.0.0.1:8089"},
		{address: "example.com:8089", allowRemote: true, want: "93.184.216.34:8089"},
		{address: "nowhere.test:8089"},
		{address: "127.0.0.1:0"},
		{address: "127.0.0.1:nosuchservice"},
		{address: "127.0.0.1"},
	}
	for _, tt := range tests {
		got, err := ResolveUDP(t.Context(), testResolver, tt.address, tt.allowRemote)
		switch {
		case tt.want != "" && err != nil:
			t.Errorf("ResolveUDP(%q, %v): %v, want %s", tt.address, tt.allowRemote, err, tt.want)
		case tt.want != "" && got.String() != tt.want:
			t.Errorf("ResolveUDP(%q, %v): got %s, want %s", tt.address, tt.allowRemote, got, tt.want)
		case tt.want == "" && err == nil:
			t.Errorf("ResolveUDP(%q, %v): got %s, want an error", tt.address, tt.allowRemote, got)
		case tt.want == "" && errors.Is(err, ErrRemote) != tt.remote:
			t.Errorf("ResolveUDP(%q, %v): got %v, want ErrRemote %v", tt.address, tt.allowRemote, err, tt.remote)
		}
	}
}

func TestCheckDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		conn        string
		allowRemote bool
		ok          bool
	}{
		{conn: "postgres://u@127.0.0.1:5432/db", ok: true},
		{conn: "postgres://u@localhost/db", ok: true},
		{conn: "host=/var/run/postgresql dbname=x", ok: true},
		{conn: "postgres://u@[::1]:5432/db", ok: true},
		{conn: "postgres://u@10.1.1.1/db"},
		{conn: "postgres://u@example.com/db"},
		{conn: "host=127.0.0.1,10.0.0.2 dbname=x"},
		{conn: "postgres://u@10.1.1.1/db", allowRemote: true, ok: true},
	}
	for _, tt := range tests {
		cfg, err := pgconn.ParseConfig(tt.conn)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckDatabase(t.Context(), testResolver, cfg, tt.allowRemote)
		if tt.ok && err != nil {
			t.Errorf("CheckDatabase(%q, %v): %v, want nil", tt.conn, tt.allowRemote, err)
		}
		if !tt.ok && !errors.Is(err, ErrRemote) {
			t.Errorf("CheckDatabase(%q, %v): %v, want ErrRemote", tt.conn, tt.allowRemote, err)
		}
	}
}

func TestLoopbackDialer(t *testing.T) {
	t.Parallel()
	d := LoopbackDialer()
	// Refused before any packet leaves: 192.0.2.0/24 is for documentation.
	for _, addr := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		if _, err := d.DialContext(t.Context(), "tcp", addr); !errors.Is(err, ErrRemote) {
			t.Errorf("dial %s: got %v, want ErrRemote", addr, err)
		}
	}
	c, err := d.DialContext(t.Context(), "udp", "127.0.0.1:9")
	if err != nil {
		t.Fatalf("dial loopback: %v", err)
	}
	c.Close()
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url         string
		allowRemote bool
		ok          bool
	}{
		{url: "http://127.0.0.1:8086/metrics", ok: true},
		{url: "http://localhost:8086/metrics", ok: true},
		{url: "http://[::1]:8086/metrics", ok: true},
		{url: "http://10.0.0.1:8086/metrics"},
		{url: "https://example.com/metrics"},
		{url: "https://example.com/metrics", allowRemote: true, ok: true},
		{url: "ftp://127.0.0.1/metrics"},
	}
	for _, tt := range tests {
		err := CheckURL(t.Context(), testResolver, tt.url, tt.allowRemote)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, %v): got %v, want ok %v", tt.url, tt.allowRemote, err, tt.ok)
		}
	}
}
