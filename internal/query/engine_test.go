package query

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestRunOneConnection: a statement runs on one connection, its
// transaction's, so that statements at once never wait on each other
// for a second one: 8 at once through a pool of one all answer, SELECT
// and SHOW, with a regex FROM (which lists the measurements) and a
// database that does not exist (which looks for its schema).
func TestRunOneConnection(t *testing.T) {
	t.Parallel()
	_, pool, sch := showFixture(t, "columns", showPoints())
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(one.Close)
	e := New(Options{
		Pool: func() (*pgxpool.Pool, error) { return one, nil },
		Schema: func(db string) (string, bool) {
			if db != "telegraf" {
				return "no_such_" + db, true
			}
			return sch, false
		},
	})
	statements := []string{
		`SELECT count(*) FROM /.*/`,
		`SELECT max(usage_idle) FROM cpu GROUP BY host`,
		`SHOW TAG VALUES WITH KEY = "host"`,
		`SHOW MEASUREMENTS`,
		`SELECT count(*) FROM nosuchdb.autogen.cpu`,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(statements))
	for range 8 {
		for _, q := range statements {
			wg.Go(func() {
				st, err := influxql.ParseStatement(q)
				if err != nil {
					errs <- err
					return
				}
				err = e.Run(ctx, st, Request{DB: "telegraf", Now: time.Now()}, func(Series) error { return nil })
				if err != nil && !strings.Contains(err.Error(), "database not found: nosuchdb") {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
