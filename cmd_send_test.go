package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestSendCommand sends lines with "pginflux send" from arguments and from
// standard input and finds them in PostgreSQL.
func TestSendCommand(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema)
	base := p.Base
	noEnv := func(string) string { return "" }

	if err := run(t.Context(), []string{"send", "--address", p.UDP.String(), "--quiet",
		"sendargs,host=a v=1i 1700000000000000000", "sendargs,host=b v=2i 1700000001000000000"}, noEnv); err != nil {
		t.Fatalf("send: %v", err)
	}
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "sendargs"}.Sanitize(), 2)

	const n = 500
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "sendstdin,host=h%d v=%di %d\n", i%7, i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	var stderr bytes.Buffer
	if err := runSend(t.Context(), []string{"--address", p.UDP.String(), "--max-datagram", "512"}, noEnv, &in, io.Discard, &stderr); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := regexp.MustCompile(`(\d+) lines in (\d+) datagrams \((\d+) bytes\)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("got summary %q, want lines, datagrams and bytes", stderr.String())
	}
	lines, _ := strconv.Atoi(m[1])
	dgrams, _ := strconv.Atoi(m[2])
	if lines != n || dgrams < n*40/512 {
		t.Errorf("got summary %q, want %d lines in many datagrams", stderr.String(), n)
	}
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "sendstdin"}.Sanitize(), n)
	// The two lines from the arguments went in one datagram.
	if got, _ := daemontest.Sample(daemontest.Scrape(t, base), "pginflux_udp_received_datagrams_total", nil); int(got) != 1+dgrams {
		t.Errorf("pginflux received %v datagrams, want %d", got, 1+dgrams)
	}
	p.Stop(t)
}
