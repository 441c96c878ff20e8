package daemon_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/internal/devtools/testcert"
)

// Line protocol over TCP: many connections, long lines, idle
// connections, draining at shutdown, and TCP alone over TLS.

// TestTCPEndToEnd: many connections at once all land; a line over
// --max-line-size is rejected while the rest of its connection's lines
// land; an idle connection is closed.
func TestTCPEndToEnd(t *testing.T) {
	t.Parallel()
	t.Run("many connections", func(t *testing.T) {
		t.Parallel()
		pool, schema := pgtest.Schema(t)
		p := daemontest.Start(t, schema, "--tcp-address", "127.0.0.1:0", "--max-line-size", "1KiB")
		base, addr := p.Base, p.TCP
		before := daemontest.Scrape(t, base)

		const conns, lines = 20, 100
		var wg sync.WaitGroup
		for c := range conns {
			wg.Go(func() {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				var b strings.Builder
				for i := range lines {
					fmt.Fprintf(&b, "tcpmany,conn=c%d v=%di %d\n", c, i, 1_700_000_000_000_000_000+int64(i)*1000)
					if c == 0 && i == 50 {
						// Written in the middle of the others.
						b.WriteString("tcpmany,conn=long v=\"" + strings.Repeat("x", 2000) + "\"\n")
					}
				}
				if _, err := io.WriteString(conn, b.String()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		table := pgx.Identifier{schema, "tcpmany"}.Sanitize()
		daemontest.WaitRows(t, pool, table, conns*lines)
		if n := queryInt(t, pool, "SELECT count(DISTINCT (conn, v)) FROM "+table); n != conns*lines {
			t.Errorf("got %d distinct rows, want %d", n, conns*lines)
		}

		// The long line is kept, cut, in the rejected table.
		rejected := pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()
		daemontest.WaitRows(t, pool, rejected, 1)
		var reason, detail, line, source string
		if err := pool.QueryRow(t.Context(), "SELECT reason, detail, line, source FROM "+rejected).Scan(&reason, &detail, &line, &source); err != nil {
			t.Fatal(err)
		}
		if reason != "too_long" || detail != "the line has 2022 bytes, more than --max-line-size (1024); its first 1024 bytes are kept" ||
			line != "tcpmany,conn=long v=\""+strings.Repeat("x", 1024-21) || !strings.HasPrefix(source, "127.0.0.1:") {
			t.Errorf("got rejected %q %q %q (%d bytes) from %q", reason, detail, line[:30], len(line), source)
		}

		tcp := map[string]string{"transport": "tcp"}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"pginflux_parse_lines_total", tcp, conns * lines},
			{"pginflux_parse_rejected_lines_total", map[string]string{"transport": "tcp", "reason": "too_long"}, 1},
			{"pginflux_tcp_accepted_connections_total", nil, conns},
			// Counted once pginflux has read the end of each.
			{"pginflux_tcp_closed_connections_total", map[string]string{"reason": "client"}, conns},
		} {
			b, _ := daemontest.Sample(before, c.name, c.labels)
			daemontest.WaitMetricIs(t, base, c.name, c.labels, b+c.want)
		}
		p.Stop(t)
	})

	// An idle connection is closed after --tcp-idle-timeout (a daemon of
	// its own: a timeout this short could close the connections above,
	// were the machine slow enough between accepting one and reading it).
	t.Run("idle connection", func(t *testing.T) {
		t.Parallel()
		_, schema := pgtest.Schema(t)
		p := daemontest.Start(t, schema, "--tcp-address", "127.0.0.1:0", "--tcp-idle-timeout", "1s")
		before := daemontest.Scrape(t, p.Base)
		idle, err := net.Dial("tcp", p.TCP)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		idle.SetReadDeadline(time.Now().Add(daemontest.Patience))
		if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle connection: got %v, want EOF when pginflux closes it", err)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"pginflux_tcp_accepted_connections_total", nil, 1},
			{"pginflux_tcp_closed_connections_total", map[string]string{"reason": "idle"}, 1},
		} {
			b, _ := daemontest.Sample(before, c.name, c.labels)
			daemontest.WaitMetricIs(t, p.Base, c.name, c.labels, b+c.want)
		}
		p.Stop(t)
	})
}

// TestTCPShutdown: lines sent on a connection that stays open are written
// when pginflux stops, though the flush interval is an hour.
func TestTCPShutdown(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--tcp-address", "127.0.0.1:0", "--flush-interval", "1h", "--batch-size", "100000")
	conn, err := net.Dial("tcp", p.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 3000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "tcpstop v=%di %d\n", i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	if got := queryInt(t, pool, "SELECT count(DISTINCT v) FROM "+pgx.Identifier{schema, "tcpstop"}.Sanitize()); got != n {
		t.Errorf("got %d rows, want %d", got, n)
	}
}

// TestOnlyTCP: pginflux runs with TCP alone (no UDP, no HTTP), over TLS.
func TestOnlyTCP(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	certFile, keyFile, roots := testcert.Files(t)
	p := daemontest.Start(t, schema, "--udp-address", "", "--http-address", "", "--tcp-address", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile)
	conn, err := tls.Dial("tcp", p.TCP, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "onlytcp v=1i 1000\nonlytcp v=2i 2000"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "onlytcp"}.Sanitize(), 2)
	p.Stop(t)
}
