package sink

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// holdCase is a fault that no row causes: rows must be held while it
// lasts, and all land, once each, when it is fixed.
type holdCase struct {
	name    string
	storage string
	// pool returns the pool the sink writes with (default: the test's).
	pool func(t *testing.T, admin *pgxpool.Pool, schema string) *pgxpool.Pool
	// breakIt happens after the first rows landed; fix undoes it.
	breakIt, fix func(t *testing.T, admin *pgxpool.Pool, schema string)
	// sqlstate is what the held writes fail with; "" for a fault that
	// pginflux mends itself (by making a table or column again), where
	// rows are not held for long.
	sqlstate string
}

func mustExec(t *testing.T, pool *pgxpool.Pool, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// rolePool makes a login role, runs grants (with %[1]s the role and %[2]s
// the schema, quoted) and returns a pool connecting as it.
func rolePool(t *testing.T, admin *pgxpool.Pool, schema string, grants ...string) *pgxpool.Pool {
	t.Helper()
	role := pgx.Identifier{"w_" + schema}.Sanitize()
	mustExec(t, admin, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP OWNED BY "+role)
		admin.Exec(context.Background(), "DROP ROLE "+role)
	})
	for _, g := range grants {
		mustExec(t, admin, fmt.Sprintf(g, role, pgx.Identifier{schema}.Sanitize()))
	}
	cfg, err := pgxpool.ParseConfig(pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User = "w_" + schema
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestFaultsHoldRows: a revoked privilege, a read-only database, a column
// dropped or a table dropped behind pginflux's back, the rejected table
// dropped: rows are held and retried, Blocked says why, nothing is
// dropped, and every row lands once the fault is fixed (or once pginflux
// made again what went away).
//
// Not in parallel: the read-only case makes the whole server read-only
// (ALTER SYSTEM), which would hold every other test's rows meanwhile.
func TestFaultsHoldRows(t *testing.T) {
	cases := []holdCase{{
		name: "insert revoked", storage: StorageColumns, sqlstate: "42501",
		pool: func(t *testing.T, admin *pgxpool.Pool, schema string) *pgxpool.Pool {
			return rolePool(t, admin, schema, "GRANT USAGE, CREATE ON SCHEMA %[2]s TO %[1]s")
		},
		breakIt: func(t *testing.T, admin *pgxpool.Pool, schema string) {
			mustExec(t, admin, "ALTER TABLE "+pgx.Identifier{schema, "m"}.Sanitize()+" OWNER TO CURRENT_USER",
				"GRANT SELECT ON "+pgx.Identifier{schema, "m"}.Sanitize()+" TO "+pgx.Identifier{"w_" + schema}.Sanitize())
		},
		fix: func(t *testing.T, admin *pgxpool.Pool, schema string) {
			mustExec(t, admin, "GRANT INSERT, UPDATE ON "+pgx.Identifier{schema, "m"}.Sanitize()+" TO "+pgx.Identifier{"w_" + schema}.Sanitize())
		},
	}, {
		name: "read-only database", storage: StorageJSONB, sqlstate: "25006",
		breakIt: func(t *testing.T, admin *pgxpool.Pool, schema string) {
			mustExec(t, admin, "ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()")
			t.Cleanup(func() { readWrite(t, admin) })
			// New connections see it at once; connections already open
			// when they next look at their signals.
			admin.Reset()
			dbtest.WaitFor(t, func() bool { return dbtest.Query(t, admin, "SHOW default_transaction_read_only")[0] == "on" })
		},
		fix: func(t *testing.T, admin *pgxpool.Pool, schema string) { readWrite(t, admin) },
	}, {
		name: "column dropped", storage: StorageColumns,
		breakIt: func(t *testing.T, admin *pgxpool.Pool, schema string) {
			mustExec(t, admin, "ALTER TABLE "+pgx.Identifier{schema, "m"}.Sanitize()+" DROP COLUMN v")
		},
	}, {
		name: "table dropped", storage: StorageJSONB,
		breakIt: func(t *testing.T, admin *pgxpool.Pool, schema string) {
			mustExec(t, admin, "DROP TABLE "+pgx.Identifier{schema, "m"}.Sanitize())
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { testHold(t, c) })
	}
}

func readWrite(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	conn, err := admin.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, sql := range []string{"SET default_transaction_read_only = off", "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

func testHold(t *testing.T, c holdCase) {
	admin, schema := pgtest.Schema(t)
	pool := admin
	if c.pool != nil {
		pool = c.pool(t, admin, schema)
	}
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: c.storage, BatchSize: 50, FlushInterval: 10 * time.Millisecond, Writers: 2,
		RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	add := func(from, to int) {
		for i := from; i < to; i++ {
			b.Add(dbtest.Line(t, fmt.Sprintf("m,host=h%d v=%di %d", i%3, i, (i+1)*1000)), origin)
		}
		b.Flush()
	}
	add(0, 100)
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, admin, schema, "m") == 100 })
	c.breakIt(t, admin, schema)
	add(100, 300)
	if c.sqlstate != "" {
		// Held: the writers keep failing, and say why.
		dbtest.WaitFor(t, func() bool { return s.Blocked() != nil && testutil.ToFloat64(m.Retries) >= 2 })
		var pgErr *pgconn.PgError
		if err := s.Blocked(); !errors.As(err, &pgErr) || pgErr.Code != c.sqlstate {
			t.Errorf("blocked by %v, want SQLSTATE %s", err, c.sqlstate)
		}
	}
	if c.fix != nil {
		c.fix(t, admin, schema)
	}
	closeSink(t, s)
	if s.Blocked() != nil {
		t.Errorf("still blocked by %v", s.Blocked())
	}
	var rows, distinct int
	sql := "SELECT count(*), count(DISTINCT v) FROM "
	if c.storage == StorageJSONB {
		sql = "SELECT count(*), count(DISTINCT fields->'v') FROM "
	}
	if err := admin.QueryRow(t.Context(), sql+pgx.Identifier{schema, "m"}.Sanitize()).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	wantRows, wantDistinct := 300, 300
	switch c.name {
	case "table dropped":
		wantRows, wantDistinct = 200, 200 // the first 100 went with the table
	case "column dropped":
		wantDistinct = 200 // the first 100 lost their v with the column
	}
	if rows != wantRows || distinct != wantDistinct {
		t.Errorf("got %d rows, %d distinct values, want %d and %d", rows, distinct, wantRows, wantDistinct)
	}
	for _, reason := range []string{DropPermanentError, DropAbandoned, ReasonRefused} {
		if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(reason)); got != 0 {
			t.Errorf("dropped %v rows (%s)", got, reason)
		}
	}
}

// TestTriggerRefusesOneRow: a trigger (or CHECK) refusing one row in a
// hundred sets that row aside in the rejected table; the rest lands.
func TestTriggerRefusesOneRow(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	fn := pgx.Identifier{schema, "refuse"}.Sanitize()
	mustExec(t, pool,
		"CREATE TABLE "+table+" (time timestamptz NOT NULL, series_id bigint NOT NULL, host text, v bigint, w bigint CHECK (w <> 13), PRIMARY KEY (series_id, time))",
		"CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.v % 100 = 42 THEN RAISE EXCEPTION 'no 42s'; END IF; RETURN NEW; END $$",
		"CREATE TRIGGER refuse BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION "+fn+"()",
	)
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("m,host=h%d v=%di,w=%di %d", i%5, i, i, (i+1)*1000))
	}
	m := write(t, pool, schema, Config{}, lines...)
	var rows int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 296 {
		t.Errorf("got %d rows, want 296 (300 less 42, 142, 242 and 13)", rows)
	}
	dbtest.Equal(t, "rejected", dbtest.Query(t, pool, "SELECT reason || ' ' || line FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY line"), []string{
		"refused m,host=h2 v=142i,w=142i 143000", "refused m,host=h2 v=242i,w=242i 243000",
		"refused m,host=h2 v=42i,w=42i 43000", "refused m,host=h3 v=13i,w=13i 14000",
	})
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropPermanentError)); got != 0 {
		t.Errorf("dropped %v rows", got)
	}
}

// TestRejectedTableDropped: the rejected table dropped after its first use
// is made again; the batch with a bad value lands whole, good rows
// included.
func TestRejectedTableDropped(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	b.Add(dbtest.Line(t, "m v=1i 1000"), origin)
	b.Add(dbtest.Line(t, `m v="x" 2000`), origin)
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "pginflux_rejected") == 1 })
	mustExec(t, pool, "DROP TABLE "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize())
	b.Add(dbtest.Line(t, "m v=3i 3000"), origin)
	b.Add(dbtest.Line(t, `m v="y" 4000`), origin)
	b.Flush()
	closeSink(t, s)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT v FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{"1", "∅", "3", "∅"})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{`type_conflict: m v="y" 4000`})
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropPermanentError)); got != 0 {
		t.Errorf("dropped %v rows", got)
	}
}

// TestTriggerDivertsRows: a BEFORE trigger that returns NULL (routing the
// row elsewhere) takes it out of the table; the batch is done, not retried
// (which would write the other rows twice).
func TestTriggerDivertsRows(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	other := pgx.Identifier{schema, "elsewhere"}.Sanitize()
	fn := pgx.Identifier{schema, "divert"}.Sanitize()
	mustExec(t, pool,
		"CREATE TABLE "+table+" (time timestamptz NOT NULL, v bigint)",
		"CREATE TABLE "+other+" (time timestamptz NOT NULL, v bigint)",
		"CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.v % 2 = 1 THEN INSERT INTO "+other+" VALUES (NEW.time, NEW.v); RETURN NULL; END IF; RETURN NEW; END $$",
		"CREATE TRIGGER divert BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION "+fn+"()",
	)
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("m v=%di %d", i, (i+1)*1000))
	}
	m := write(t, pool, schema, Config{}, lines...)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT (SELECT count(*) FROM "+table+") || ' ' || (SELECT count(*) FROM "+other+")"), []string{"50 50"})
	if got := testutil.ToFloat64(m.Retries); got != 0 {
		t.Errorf("%v retries", got)
	}
}

// heldSink writes, as a role that may create tables in its schema, in
// batches of 10 rows with two writers; revoke and grant take that role's
// INSERT on a table away and give it back.
type heldSink struct {
	t      *testing.T
	admin  *pgxpool.Pool
	schema string
	s      *Sink
	m      *Metrics
	b      *Batcher
}

func newHeldSink(t *testing.T) *heldSink {
	admin, schema := pgtest.Schema(t)
	pool := rolePool(t, admin, schema, "GRANT USAGE, CREATE ON SCHEMA %[2]s TO %[1]s")
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 10, FlushInterval: 10 * time.Millisecond, Writers: 2,
		RejectedTable: "pginflux_rejected"}, m, quiet)
	return &heldSink{t: t, admin: admin, schema: schema, s: s, m: m, b: s.NewBatcher()}
}

// add adds rows from..to-1 of measurement and hands them over.
func (h *heldSink) add(measurement string, from, to int) {
	for i := from; i < to; i++ {
		h.b.Add(dbtest.Line(h.t, fmt.Sprintf("%s,host=h%d v=%di %d", measurement, i%3, i, (i+1)*1000)), origin)
	}
	h.b.Flush()
}

func (h *heldSink) rows(table string) int { return dbtest.TryCount(h.t, h.admin, h.schema, table) }

func (h *heldSink) revoke(table string) {
	ident := pgx.Identifier{h.schema, table}.Sanitize()
	mustExec(h.t, h.admin, "ALTER TABLE "+ident+" OWNER TO CURRENT_USER",
		"GRANT SELECT ON "+ident+" TO "+pgx.Identifier{"w_" + h.schema}.Sanitize())
}

func (h *heldSink) grant(table string) {
	mustExec(h.t, h.admin, "GRANT INSERT, UPDATE ON "+pgx.Identifier{h.schema, table}.Sanitize()+" TO "+pgx.Identifier{"w_" + h.schema}.Sanitize())
}

// TestOneTableHeld: PostgreSQL refuses one table's rows (its INSERT
// privilege revoked) while another table takes its own. The held table's
// batches, more than there are writers, are parked: the writers go on
// with the other table's rows. Blocked names the held table's error the
// whole time, not only until the other table's next write; the database
// is not reported down (HTTP keeps taking requests); once the privilege
// is back, everything lands and Blocked is nil.
func TestOneTableHeld(t *testing.T) {
	t.Parallel()
	h := newHeldSink(t)
	h.add("held", 0, 10)
	h.add("fine", 0, 10)
	dbtest.WaitFor(t, func() bool { return h.rows("held") == 10 && h.rows("fine") == 10 })
	h.revoke("held")

	h.add("held", 10, 50) // four batches, two writers
	dbtest.WaitFor(t, func() bool { return h.s.Blocked() != nil })
	for round := range 10 {
		h.add("fine", 10+round*10, 20+round*10)
		dbtest.WaitFor(t, func() bool { return h.rows("fine") == 20+round*10 })
		var pgErr *pgconn.PgError
		if err := h.s.Blocked(); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Fatalf("after the other table's write %d: Blocked() = %v, want the held table's 42501", round, err)
		}
		if _, down := h.s.Saturated(); down {
			t.Fatalf("after the other table's write %d: the database reported down for one table's privilege", round)
		}
	}
	if n := h.rows("held"); n != 10 {
		t.Fatalf("held table: %d rows while its INSERT privilege is revoked, want 10", n)
	}

	h.grant("held")
	dbtest.WaitFor(t, func() bool { return h.rows("held") == 50 })
	dbtest.WaitFor(t, func() bool { return h.s.Blocked() == nil })
	closeSink(t, h.s)
	if got := testutil.ToFloat64(h.m.RowsDropped.WithLabelValues(DropPermanentError)); got != 0 {
		t.Errorf("dropped %v rows", got)
	}
}

// TestParkedAtShutdown: batches parked because their table refuses them
// go back to the writers when the sink closes, and at the shutdown
// timeout are abandoned and counted, none lost without a trace; with the
// privilege back before the timeout, they are written.
func TestParkedAtShutdown(t *testing.T) {
	t.Parallel()
	for _, fixFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("fixed=%v", fixFirst), func(t *testing.T) {
			t.Parallel()
			h := newHeldSink(t)
			h.add("held", 0, 10)
			dbtest.WaitFor(t, func() bool { return h.rows("held") == 10 })
			h.revoke("held")
			h.add("held", 10, 50)
			dbtest.WaitFor(t, func() bool { return h.s.Blocked() != nil && testutil.ToFloat64(h.m.Retries) >= 4 })
			if fixFirst {
				// Parked now; Close hands them back to the writers.
				h.grant("held")
			}
			// The shutdown timeout: with the privilege back, a deadline
			// for a stuck Close, not a measure of speed; without it, the
			// rows can never be written, and any timeout abandons them.
			timeout := 3 * time.Second
			if fixFirst {
				timeout = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := h.s.Close(ctx)
			abandoned := testutil.ToFloat64(h.m.RowsDropped.WithLabelValues(DropAbandoned))
			rows := h.rows("held")
			if fixFirst {
				if err != nil || rows != 50 || abandoned != 0 {
					t.Errorf("privilege back before the timeout: Close = %v, %d rows, %v abandoned; want nil, 50, 0", err, rows, abandoned)
				}
				return
			}
			if err == nil || rows != 10 || abandoned != 40 {
				t.Errorf("Close = %v, %d rows, %v abandoned; want an error, 10 rows and 40 abandoned (counted)", err, rows, abandoned)
			}
		})
	}
}
