// Package dbtest holds what the tests of the sink and its schema layer
// share: reading tables back, comparing what they hold, making points from
// lines, and waiting for a condition. It knows nothing of the sink itself,
// so that the tests of package sink and of package schema can both use it.
package dbtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/parse"
)

// Line parses one line of line protocol into a Point the test owns.
func Line(t testing.TB, text string) *parse.Point {
	t.Helper()
	p := parse.NewParser(parse.Nanosecond)
	p.Reset([]byte(text), time.Unix(0, 0))
	pt, err := p.Next()
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	c := &parse.Point{Measurement: []byte(string(pt.Measurement)), Time: pt.Time}
	for _, tg := range pt.Tags {
		c.Tags = append(c.Tags, parse.Tag{Key: []byte(string(tg.Key)), Value: []byte(string(tg.Value))})
	}
	for _, f := range pt.Fields {
		c.Fields = append(c.Fields, parse.Field{Key: []byte(string(f.Key)), Kind: f.Kind, Num: f.Num, Str: []byte(string(f.Str))})
	}
	return c
}

// Columns returns "name type" of every column of a table, in order.
func Columns(t testing.TB, pool *pgxpool.Pool, schema, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Query returns the rows of a query as text, one string per row with the
// columns separated by |, NULL as ∅.
func Query(t testing.TB, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "∅"
			case time.Time:
				parts[i] = v.UTC().Format(time.RFC3339Nano)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Equal reports, as an error of t, rows that are not the ones wanted.
func Equal(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		if len(got) > 20 {
			t.Errorf("%s: got %d rows, first %q; want %q", what, len(got), got[:20], want)
			return
		}
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

// Count returns the rows of a table.
func Count(t testing.TB, pool *pgxpool.Pool, schema, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TryCount returns the rows of a table, or -1 when they cannot be counted
// (the table is not there yet, say): for polling.
func TryCount(t testing.TB, pool *pgxpool.Pool, schema, table string) int {
	var n int
	err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

// Rejected is one row of the rejected table: where it came from, its
// measurement, why it was rejected, and its line of line protocol.
type Rejected struct {
	Source, Measurement, Reason, Line string
}

// ReadRejected returns the rows of the rejected table pginflux_rejected,
// by line.
func ReadRejected(t testing.TB, pool *pgxpool.Pool, schema string) []Rejected {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT coalesce(source, ''), coalesce(measurement, ''), reason, line FROM "+
		pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY line")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rejected, error) {
		var x Rejected
		return x, r.Scan(&x.Source, &x.Measurement, &x.Reason, &x.Line)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// RejectedLines returns the rejected table as "reason: line", by line.
func RejectedLines(t testing.TB, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	var out []string
	for _, r := range ReadRejected(t, pool, schema) {
		out = append(out, r.Reason+": "+r.Line)
	}
	return out
}

// WaitFor polls cond until it holds, failing t when it does not within
// 20 seconds: a deadline for a stuck test, never a measure of speed.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
