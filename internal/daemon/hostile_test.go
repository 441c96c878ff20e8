package daemon_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/hostile"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The hostile-client tests: pginflux with its default limits, in a
// process of its own (so that its memory is its own to measure), under
// scaled-down scenarios of package hostile. Each checks what the clients
// got, what was stored, and pginflux's peak RSS: under hostileRSSBound,
// checked only without the race detector (which multiplies memory; the
// child is this test binary), logged either way.

// hostileRSSBound is the most resident memory (peak RSS) pginflux with
// its default flags may reach under any of these scenarios.
const hostileRSSBound = 150 << 20

// hostileDeadline bounds each scenario; a test that needs it has failed.
// It guards against a hang, not for speed: under the race detector, with
// the rest of the suite beside it on two cores, the big bodies took more
// than a minute once (11 s alone).
var hostileDeadline = map[bool]time.Duration{false: time.Minute, true: 3 * time.Minute}[raceEnabled]

// hostileDaemon is pginflux in a child process with default limits.
type hostileDaemon struct {
	base   string // http://host:port
	tcp    string // host:port
	udp    string // host:port
	pid    int
	pool   *pgxpool.Pool
	schema string
}

// startHostile starts pginflux with its default limits (UDP, TCP and
// HTTP on free loopback ports) in a process of its own, writing into a
// schema of the test's, and resets its peak RSS once it is ready.
func startHostile(t *testing.T) *hostileDaemon {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	child := daemontest.StartChild(t, "--database-url", pgtest.ConnString(t), "--schema", schema,
		"--udp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--tcp-address", "127.0.0.1:0")
	h := &hostileDaemon{base: child.Base(t), udp: child.UDP(t), pid: child.Cmd.Process.Pid, pool: pool, schema: schema}
	h.tcp = regexp.MustCompile(`tcp=(\S+)`).FindStringSubmatch(child.Log.WaitFor(t, `msg=listening .*tcp=\S+`))[1]
	if err := hostile.ResetPeak(h.pid); err != nil {
		t.Logf("the peak RSS counts from pginflux's start: %v", err)
	}
	return h
}

// hostileContext returns a context that ends after hostileDeadline.
func hostileContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hostileDeadline)
	t.Cleanup(cancel)
	return ctx
}

// checkPeakRSS logs pginflux's peak RSS and, without the race detector,
// fails the test when it passed hostileRSSBound.
func (h *hostileDaemon) checkPeakRSS(t *testing.T, what string) {
	t.Helper()
	peak, err := hostile.PeakRSS(h.pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: pginflux's peak RSS %d MiB (race detector: %v)", what, peak>>20, raceEnabled)
	if !raceEnabled && peak > hostileRSSBound {
		t.Errorf("%s: peak RSS %d MiB, want at most %d MiB", what, peak>>20, hostileRSSBound>>20)
	}
}

// TestHostileBombs: gzip bombs at once are each answered 413 (some after
// being told to try later, before their body was read: each weighs what
// it may decompress to), and what they decompress to is never held.
func TestHostileBombs(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	const bombs = 16
	r, err := hostile.Bombs(hostileContext(t), h.base, bombs, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bombs of 1 GiB (%d bytes gzipped): %s in %.1f s, at most %d attempts", bombs, r.CompressedBytes, r.Outcomes.String(), r.Seconds, r.MostAttempts)
	if !r.Outcomes.Only("413") {
		t.Errorf("%d gzip bombs: got %s %q, want 413 for each", bombs, r.Outcomes.String(), r.Outcomes.Samples)
	}
	h.checkPeakRSS(t, "gzip bombs")
}

// TestHostileBigBodies: big bodies posted at once are each taken, at once
// or after a few retries that honour Retry-After, and every line is
// stored once.
func TestHostileBigBodies(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	const clients, lines, attempts = 32, 36_000, 10 // 32 bodies of 1.9 MB
	r, err := hostile.BigBodies(hostileContext(t), h.base, clients, lines, attempts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients × %d lines (%d bytes each): %s in %.1f s, at most %d attempts",
		clients, lines, r.BodyBytes, r.Outcomes.String(), r.Seconds, r.MostAttempts)
	for _, c := range r.PerClient {
		if c.Outcome != "204" {
			t.Errorf("client %d: got %s after %d attempts (%.1f s): %s; want 204 within %d attempts",
				c.Client, c.Outcome, c.Attempts, c.Seconds, c.Sample, attempts)
		}
	}
	if got := count(t, h.pool, h.schema, hostile.BigMeasurement, ""); int64(got) != r.WantRows {
		t.Errorf("table %s: got %d rows, want %d (every line once)", hostile.BigMeasurement, got, r.WantRows)
	}
	h.checkPeakRSS(t, "big bodies")
}

// TestHostileSlowClients: clients trickling their bodies do not keep
// pginflux from taking a normal write.
func TestHostileSlowClients(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	const clients = 200
	r, err := hostile.SlowClients(hostileContext(t), h.base, clients, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d slow clients for %.1f s: %s; normal writes meanwhile: %s (slowest %.1f s)",
		clients, r.Seconds, r.Outcomes.String(), r.Probes.String(), r.ProbeSlowestSeconds)
	if !r.Probes.Only("204") {
		t.Errorf("normal writes among slow clients: got %s %q, want 204 for each", r.Probes.String(), r.Probes.Samples)
	}
	h.checkPeakRSS(t, "slow clients")
}

// TestHostileLongTCPLine: a 10 MB line over TCP is rejected as too long
// without being held, and the good line after it is stored.
func TestHostileLongTCPLine(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	r, err := hostile.LongTCPLine(hostileContext(t), h.tcp, 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a line of %d bytes: %d sent in %.1f s, closed by pginflux: %v", r.Size, r.Sent, r.Seconds, r.Closed)
	if r.Err != "" || !r.Closed {
		t.Errorf("sending: error %q, closed by pginflux %v; want no error, closed", r.Err, r.Closed)
	}
	daemontest.WaitRows(t, h.pool, pgx.Identifier{h.schema, hostile.GoodMeasurement}.Sanitize(), 1)
	tooLong := map[string]string{"transport": "tcp", "reason": "too_long"}
	if got := daemontest.WaitMetric(t, h.base, "pginflux_parse_rejected_lines_total", tooLong, 1); got != 1 {
		t.Errorf("lines rejected as too long: got %v, want 1", got)
	}
	if n := count(t, h.pool, h.schema, hostile.LongMeasurement, ""); n != 0 {
		t.Errorf("table %s: got %d rows, want none", hostile.LongMeasurement, n)
	}
	h.checkPeakRSS(t, "a 10 MB TCP line")
}

// TestHostileAllAtOnce: gzip bombs, big bodies, slow clients and a 10 MB
// TCP line at once, while UDP brings a fleet's lines: PostgreSQL cannot
// take it all in time, so some requests are told to come back later, but
// a bomb is never stored, a big body is stored whole when acknowledged,
// every UDP line is stored or counted as dropped, and the peak RSS stays
// under the bound.
func TestHostileAllAtOnce(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	// Those told to come back may be told to wait longer than this: their
	// last answer is then that one.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var (
		wg    sync.WaitGroup
		bombs *hostile.BombsResult
		big   *hostile.BigBodiesResult
		slow  *hostile.SlowResult
		line  *hostile.TCPLineResult
		udp   *hostile.UDPResult
		errs  [5]error
	)
	const bigClients, bigLines = 8, 36_000
	wg.Go(func() { bombs, errs[0] = hostile.Bombs(ctx, h.base, 8, 1<<30) })
	wg.Go(func() { big, errs[1] = hostile.BigBodies(ctx, h.base, bigClients, bigLines, 3) })
	wg.Go(func() { slow, errs[2] = hostile.SlowClients(ctx, h.base, 100, 5*time.Second) })
	wg.Go(func() { line, errs[3] = hostile.LongTCPLine(ctx, h.tcp, 10_000_000) })
	wg.Go(func() { udp, errs[4] = hostile.UDPLoad(ctx, h.udp, 20_000, 5*time.Second) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	t.Logf("bombs %s (at most %d attempts); big bodies %s; slow clients %s, normal writes %s; TCP line closed %v; UDP %d lines",
		bombs.Outcomes.String(), bombs.MostAttempts, big.Outcomes.String(), slow.Outcomes.String(), slow.Probes.String(), line.Closed, udp.Lines)
	for code := range bombs.Outcomes.Samples {
		if code != "413" && code != "503" && code != "429" && code != hostile.NoAnswer {
			t.Errorf("bombs: got %s %q, want 413, or told to come back", bombs.Outcomes.String(), bombs.Outcomes.Samples)
		}
	}
	acked := 0
	for _, c := range big.PerClient {
		switch c.Outcome {
		case "204":
			acked++
		case "503", "429":
		case hostile.NoAnswer: // still being written when the test's time ran out (the race detector)
		default:
			t.Errorf("big body %d: got %s %q, want 204, or told to come back", c.Client, c.Outcome, c.Sample)
		}
	}
	if n := count(t, h.pool, h.schema, hostile.BigMeasurement, ""); n < acked*bigLines {
		t.Errorf("big bodies: %d rows, want at least the %d of the %d acknowledged", n, acked*bigLines, acked)
	}
	// Every UDP line is a row, or in a datagram dropped and counted: at
	// pginflux's queue, or by the kernel (a socket's buffer full, as
	// under the race detector). Each datagram holds 10 lines.
	dropped := daemontest.Metric(t, h.base, "pginflux_ingest_dropped_datagrams_total", map[string]string{"transport": "udp"}) +
		daemontest.Metric(t, h.base, "pginflux_udp_kernel_dropped_datagrams_total", nil)
	daemontest.WaitRows(t, h.pool, pgx.Identifier{h.schema, "cpu"}.Sanitize(), int(udp.Lines)-10*int(dropped))
	h.checkPeakRSS(t, "all at once")
}
