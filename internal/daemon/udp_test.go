package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

type jsonbRow struct {
	time   time.Time
	tags   string
	fields string
}

func readJSONB(t *testing.T, pool *pgxpool.Pool, table string) []jsonbRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT time, tags::text, fields::text FROM "+table+" ORDER BY time, fields::text")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jsonbRow, error) {
		var j jsonbRow
		err := r.Scan(&j.time, &j.tags, &j.fields)
		return j, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEndToEndJSONB(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--storage", "jsonb")
	before := time.Now()

	daemontest.Send(t, p.UDP,
		"cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0 1574753954000000000",
		// One datagram mixing good and bad lines: only the good ones land.
		strings.Join([]string{
			"cpu,host=b,cpu=cpu1 usage_idle=90,usage_user=7.5 1574753955000000000",
			"cpu,host=c usage_idle=", // no value
			"mem,host=a used=123i,free=42u,ok=true,note=\"fine \\\"x\\\"\" 1574753956000000000",
			"cpu,host=d",                         // no fields
			"disk,host=a used=1i,nul=\"a\x00b\"", // NUL byte
			"disk,host=a,path=/ used_percent=12.5",
			"",
		}, "\n"),
	)

	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	mem := pgx.Identifier{schema, "mem"}.Sanitize()
	disk := pgx.Identifier{schema, "disk"}.Sanitize()
	daemontest.WaitRows(t, pool, cpu, 2)
	daemontest.WaitRows(t, pool, mem, 1)
	daemontest.WaitRows(t, pool, disk, 1)

	gotCPU := readJSONB(t, pool, cpu)
	wantCPU := []jsonbRow{
		{time.Unix(1574753954, 0), `{"cpu": "cpu0", "host": "a"}`, `{"usage_idle": 95.9, "usage_user": 2.0}`},
		{time.Unix(1574753955, 0), `{"cpu": "cpu1", "host": "b"}`, `{"usage_idle": 90.0, "usage_user": 7.5}`},
	}
	compareRows(t, gotCPU, wantCPU)

	gotMem := readJSONB(t, pool, mem)
	wantMem := []jsonbRow{
		{time.Unix(1574753956, 0), `{"host": "a"}`, `{"ok": true, "free": 42, "note": "fine \"x\"", "used": 123}`},
	}
	compareRows(t, gotMem, wantMem)

	// A line without a timestamp gets the time it was received.
	gotDisk := readJSONB(t, pool, disk)
	if len(gotDisk) != 1 || gotDisk[0].tags != `{"host": "a", "path": "/"}` || gotDisk[0].fields != `{"used_percent": 12.5}` {
		t.Fatalf("got %+v", gotDisk)
	}
	if d := gotDisk[0].time; d.Before(before.Add(-time.Second)) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("got time %v, want about now (%v)", d, before)
	}
	p.Stop(t)

	// The bad lines are kept, with their reason, for a person to look at.
	rows, err := pool.Query(t.Context(), "SELECT reason, line, source FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY line")
	if err != nil {
		t.Fatal(err)
	}
	type rej struct{ reason, line, source string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rej, error) {
		var x rej
		return x, r.Scan(&x.reason, &x.line, &x.source)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []rej{
		{"syntax", "cpu,host=c usage_idle=", ""},
		{"syntax", "cpu,host=d", ""},
		{"nul_byte", "disk,host=a used=1i,nul=\"a\ufffdb\"", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got rejected %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].reason != want[i].reason || got[i].line != want[i].line || !strings.HasPrefix(got[i].source, "127.0.0.1:") {
			t.Errorf("rejected %d: got %+v, want %+v from 127.0.0.1", i, got[i], want[i])
		}
	}
}

// TestEndToEndColumns is the default storage: one typed column per tag and
// field.
func TestEndToEndColumns(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema)
	daemontest.Send(t, p.UDP,
		"cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0 1574753954000000000\n"+
			"cpu,host=b,cpu=cpu1 usage_idle=90,usage_user=7.5,procs=12i 1574753955000000000\n"+
			"cpu,host=c usage_idle=\n"+
			"cpu,host=d usage_idle=\"not a number\" 1574753956000000000\n")
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	daemontest.WaitRows(t, pool, cpu, 3)
	p.Stop(t)
	rows, err := pool.Query(t.Context(), "SELECT time, host, coalesce(cpu, '-'), coalesce(usage_idle, -1), coalesce(usage_user, -1), coalesce(procs, -1) FROM "+cpu+" ORDER BY time")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tm time.Time
		var host, c string
		var idle, user float64
		var procs int64
		if err := rows.Scan(&tm, &host, &c, &idle, &user, &procs); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %v %v %d", tm.Unix(), host, c, idle, user, procs))
	}
	want := []string{
		"1574753954 a cpu0 95.9 2 -1",
		"1574753955 b cpu1 90 7.5 12",
		"1574753956 d - -1 -1 -1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var reasons []string
	rrows, err := pool.Query(t.Context(), "SELECT reason || ': ' || line FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY reason")
	if err != nil {
		t.Fatal(err)
	}
	reasons, err = pgx.CollectRows(rrows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	wantReasons := []string{
		"syntax: cpu,host=c usage_idle=",
		`type_conflict: cpu,host=d usage_idle="not a number" 1574753956000000000`,
	}
	if strings.Join(reasons, "\n") != strings.Join(wantReasons, "\n") {
		t.Errorf("got rejected\n%s\nwant\n%s", strings.Join(reasons, "\n"), strings.Join(wantReasons, "\n"))
	}
}

func compareRows(t *testing.T, got, want []jsonbRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if !got[i].time.Equal(want[i].time) || got[i].tags != want[i].tags || got[i].fields != want[i].fields {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestShutdownWritesEverything sends rows that would wait in open batches
// (the flush interval is an hour), stops pginflux as SIGTERM would right
// after sending, and finds every row written.
func TestShutdownWritesEverything(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--flush-interval", "1h", "--batch-size", "100000")
	const n = 2000
	daemontest.Send(t, p.UDP, numberedDatagrams("shutdown", n)...)
	// On loopback a sent datagram is in the socket's buffer when send
	// returns; stopping at once proves that the readers drain what the
	// kernel holds, and that open batches are written, before run returns.
	p.Stop(t)

	var got, distinct int
	table := pgx.Identifier{schema, "shutdown"}.Sanitize()
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&got, &distinct); err != nil {
		t.Fatal(err)
	}
	if got != n || distinct != n {
		t.Fatalf("got %d rows (%d distinct), want %d", got, distinct, n)
	}
}
