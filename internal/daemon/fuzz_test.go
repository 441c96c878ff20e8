package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// FuzzUDPToPostgres sends each input, as a datagram arriving over UDP
// would be, through the real pipeline (queue, parser, sink, binary COPY)
// into PostgreSQL, once in each storage mode, each time into a schema of
// its own. Nothing may crash, no row may be lost, and every line must be
// accounted for: a line the parser took is a row of its table with the
// values the parser saw (a value that does not fit its column is NULL
// there and kept in the rejected table; keys beyond --max-columns are in
// the overflow column), or, when PostgreSQL refuses the row, a row of the
// rejected table; a line the parser rejected is in the rejected table,
// byte for byte, with its reason; and the counters agree.
//
// Plain go test runs the seeds in testdata/fuzz/FuzzUDPToPostgres
// (TestLargeInputsToPostgres runs the inputs too large for a corpus file
// or for the mutator). To fuzz (slowly, a few inputs a second: each makes
// two schemas and COPYs into them):
//
//	go test -run='^$' -fuzz=FuzzUDPToPostgres -fuzztime=5m .
func FuzzUDPToPostgres(f *testing.F) {
	f.Add([]byte("cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0,procs=12i,ok=true,note=\"x\" 1574753954000000000\n"))
	pool, err := pgxpool.New(f.Context(), pgtest.ConnString(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(pool.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Parallel() // the seeds, when not fuzzing
		for _, storage := range []string{sink.StorageColumns, sink.StorageJSONB} {
			checkThroughPostgres(t, pool, data, storage)
		}
	})
}

// TestLargeInputsToPostgres checks, as FuzzUDPToPostgres does, inputs too
// large to commit as seeds: a line with 100,000 fields (columns up to
// --max-columns, the rest in the overflow column), one with 3,000 tags,
// one with 1,500 float fields (a row of 999 double precision columns, near
// PostgreSQL's 8 KiB limit for a row), a 64 KiB line, and 5,000 lines.
func TestLargeInputsToPostgres(t *testing.T) {
	t.Parallel()
	var fields strings.Builder
	fields.WriteString("wide,host=a ")
	for i := range 100_000 {
		if i > 0 {
			fields.WriteByte(',')
		}
		switch i % 4 {
		case 0:
			fmt.Fprintf(&fields, "f%d=%d.5", i, i)
		case 1:
			fmt.Fprintf(&fields, "f%d=%di", i, i)
		case 2:
			fmt.Fprintf(&fields, "f%d=\"s%d\x01\t\x7f\"", i, i) // control characters in the overflow's JSON
		default:
			fmt.Fprintf(&fields, "f%d=true", i)
		}
	}
	fields.WriteString(" 1700000000000000000\n")

	var tags strings.Builder
	tags.WriteString("manytags")
	for i := range 3000 {
		fmt.Fprintf(&tags, ",t%d=v%d", i, i)
	}
	tags.WriteString(" f=1\n")

	// A 64 KiB line: one string field, with a small line around it.
	big := "small f=1 1\nbig,host=a s=\"" + strings.Repeat("x\\\"y", (64<<10-40)/4) + "\" 2\nsmall f=2 3\n"

	// 1,500 floats: as many double precision columns as --max-columns
	// allows make a row near PostgreSQL's 8 KiB limit for a heap tuple.
	var floats strings.Builder
	floats.WriteString("widefloat")
	for i := range 1500 {
		sep := ","
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&floats, "%sf%d=%d.5", sep, i, i)
	}
	floats.WriteString(" 1\n")

	var many strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&many, "many,host=h%d v=%di,w=%d.25 %d\n", i%7, i, i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	pool, err := pgxpool.New(t.Context(), pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the parallel subtests
	for _, c := range []struct {
		name, data string
	}{
		{"100000 fields", fields.String()},
		{"3000 tags", tags.String()},
		{"1500 floats", floats.String()},
		{"64 KiB line", big},
		{"5000 lines", many.String()},
	} {
		for _, storage := range []string{sink.StorageColumns, sink.StorageJSONB} {
			t.Run(c.name+"/"+storage, func(t *testing.T) {
				t.Parallel()
				checkThroughPostgres(t, pool, []byte(c.data), storage)
			})
		}
	}
}

const fuzzRejected = "pginflux_rejected"

// TestKeyNamedLikeSystemColumn: a key named like one of PostgreSQL's
// system columns (ctid, xmin, xmax, cmin, cmax, tableoid) cannot become a
// column of that name (ADD COLUMN fails with 42701). FuzzUDPToPostgres
// found that this cost the whole batch; such keys now get <key>_tag or
// <key>_field. The input is also a seed of the fuzz test.
func TestKeyNamedLikeSystemColumn(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(t.Context(), pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	checkThroughPostgres(t, pool, []byte("m,host=a f=1 1\nm,ctid=x,oid=y xmin=1,tableoid=2,cmax=3i 2\nm,host=b f=2 3\n"), sink.StorageColumns)
}

// checkThroughPostgres runs data through a pipeline and a sink in storage
// mode into a new schema, and checks what PostgreSQL holds against what
// the parser makes of data.
func checkThroughPostgres(t *testing.T, pool *pgxpool.Pool, data []byte, storage string) {
	t.Helper()
	// A safety net: the largest inputs take a minute on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	schema := "fuzz_" + storage + "_" + hex.EncodeToString(rnd[:])
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	}()

	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	s := sink.New(pool, sink.Config{
		Schema:  schema,
		Storage: storage,
		// Append: the model of expect is one row per line; point
		// identity has tests of its own (sink/merge_test.go).
		WriteMode:     sink.WriteAppend,
		BatchSize:     10000,
		FlushInterval: time.Hour,
		Writers:       2,
		RejectedTable: fuzzRejected,
	}, sink.NewMetrics(reg), log)
	p := pipeline.New(pipeline.Config{Transport: "udp", QueueSize: 1, Parsers: 1, Precision: parse.Nanosecond, FlushInterval: time.Hour},
		s, pipeline.NewMetrics(reg, "udp"), log)
	src := netip.MustParseAddrPort("192.0.2.7:4321")
	received := time.Unix(1_700_000_000, 123_456_789)
	p.Handle(data, src, received)
	p.Close()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("%s: close the sink: %v", storage, err)
	}

	want := expect(data, received)
	got := readBack(t, ctx, pool, schema, storage)
	compare(t, storage, want, got)
	checkCounters(t, storage, reg, want, got)
}
