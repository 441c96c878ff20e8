package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures an Engine.
type Options struct {
	// Pool returns the pool to read through, or an error while pginflux
	// starts or stops (returned as it is).
	Pool func() (*pgxpool.Pool, error)
	// Schema returns the schema of database db, or an error when there is
	// none (returned as it is: the caller's error says "database not
	// found").
	Schema func(ctx context.Context, db string) (string, error)
	// Measurements lists the measurements of database db, sorted.
	Measurements func(ctx context.Context, db string) ([]string, error)
	// Timeout bounds each statement in PostgreSQL (statement_timeout); 0
	// leaves the server's.
	Timeout time.Duration
	// Log, when not nil, gets each SQL statement a SELECT runs, at debug
	// level.
	Log *slog.Logger
	// MaxPoints and MaxSeries bound what one SELECT returns, as InfluxDB's
	// max-select-point and max-select-series; 0 is no bound.
	MaxPoints, MaxSeries int
}

// Engine runs InfluxQL statements. Safe for concurrent use.
type Engine struct {
	opt  Options
	meta metaCache
}

// New returns an Engine.
func New(opt Options) *Engine { return &Engine{opt: opt} }

// Request is what a statement is run with.
type Request struct {
	DB   string    // the request's database (db=), for statements that name none
	Role string    // the PostgreSQL role to read as; "" reads as pginflux
	Now  time.Time // now(), the same for every statement of a request
}

// Series is one series of a statement's result, as InfluxDB 1.x answers
// it. A value of a time column is a time.Time (in the statement's tz()).
type Series struct {
	Name    string
	Tags    map[string]string
	Columns []string
	Values  [][]any
}

// ErrStatement marks an error of the statement itself (unsupported, bad
// arguments, a limit reached, a timeout): it is told in the statement's
// result, and the request's other statements are still answered.
var ErrStatement = errors.New("statement error")

// ErrUnavailable marks a failure to reach PostgreSQL.
var ErrUnavailable = errors.New("the database is unreachable")

// statementError is an ErrStatement with InfluxDB's text.
type statementError struct{ msg string }

func (e *statementError) Error() string        { return e.msg }
func (e *statementError) Is(target error) bool { return target == ErrStatement }

// errorf makes a statement error.
func errorf(format string, args ...any) error {
	return &statementError{fmt.Sprintf(format, args...)}
}

// StatementError is a statement error (see ErrStatement) saying msg.
func StatementError(msg string) error { return &statementError{msg} }

// unsupported is the error of what pginflux does not translate.
func unsupported(what string) error {
	return errorf("%s is not supported by pginflux", what)
}

// Supported reports whether Run answers statements of st's kind.
func Supported(st influxql.Statement) bool {
	switch st.(type) {
	case *influxql.SelectStatement, *influxql.ShowMeasurementsStatement, *influxql.ShowTagKeysStatement,
		*influxql.ShowTagValuesStatement, *influxql.ShowFieldKeysStatement, *influxql.ShowSeriesStatement:
		return true
	}
	return false
}

// Run runs one statement in a read-only transaction, as req.Role.
func (e *Engine) Run(ctx context.Context, st influxql.Statement, req Request) ([]Series, error) {
	if !Supported(st) {
		return nil, unsupported(statementName(st))
	}
	pool, err := e.opt.Pool()
	if err != nil {
		return nil, err
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, e.pgErr(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if e.opt.Timeout > 0 {
		ms := strconv.FormatInt(max(e.opt.Timeout.Milliseconds(), 1), 10)
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = "+ms); err != nil {
			return nil, e.pgErr(err)
		}
	}
	if req.Role != "" {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{req.Role}.Sanitize()); err != nil {
			return nil, e.pgErr(err)
		}
	}
	r := &run{e: e, tx: tx, req: req}
	var out []Series
	switch st := st.(type) {
	case *influxql.SelectStatement:
		out, err = r.selectStmt(ctx, st)
	case *influxql.ShowMeasurementsStatement:
		out, err = r.showMeasurements(ctx, st)
	case *influxql.ShowTagKeysStatement:
		out, err = r.showTagKeys(ctx, st)
	case *influxql.ShowTagValuesStatement:
		out, err = r.showTagValues(ctx, st)
	case *influxql.ShowFieldKeysStatement:
		out, err = r.showFieldKeys(ctx, st)
	case *influxql.ShowSeriesStatement:
		out, err = r.showSeries(ctx, st)
	}
	if err != nil {
		return nil, e.pgErr(err)
	}
	return out, nil
}

// pgErr tells a statement PostgreSQL refused or cancelled (ErrStatement,
// with PostgreSQL's message) from a failure to reach it (ErrUnavailable);
// other errors are returned as they are.
func (e *Engine) pgErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, ErrStatement), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &pe) && pe.Code == "57014":
		return errorf("query timeout: the statement ran longer than --query-timeout (%s)", e.opt.Timeout)
	case errors.As(err, &pe) && pe.Code[:2] != "08" && pe.Code[:2] != "53" && pe.Code[:2] != "57":
		return errorf("%s", pe.Message)
	case pgconn.SafeToRetry(err), errors.As(err, &pe):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// statementName names a statement's kind for an error, as InfluxQL
// writes it ("DROP MEASUREMENT").
func statementName(st influxql.Statement) string {
	s := st.String()
	words := 0
	for i, c := range s {
		if c == ' ' {
			words++
			if words == 2 || (words == 1 && !twoWords(s[:i])) {
				return s[:i]
			}
		}
	}
	return s
}

func twoWords(first string) bool {
	switch first {
	case "SHOW", "DROP", "CREATE", "ALTER", "GRANT", "REVOKE", "SET", "KILL", "DELETE":
		return true
	}
	return false
}

// run is one statement being run.
type run struct {
	e   *Engine
	tx  pgx.Tx
	req Request
}

// schema returns the schema of database db (the request's when "").
func (r *run) schema(ctx context.Context, db string) (string, error) {
	if db == "" {
		db = r.req.DB
	}
	return r.e.opt.Schema(ctx, db)
}

// measurements lists the measurements of db that src names: one by name
// (whether it has a table or not), or those a regex matches.
func (r *run) measurements(ctx context.Context, db string, src *influxql.Measurement) ([]string, error) {
	if src.Regex == nil {
		return []string{src.Name}, nil
	}
	if db == "" {
		db = r.req.DB
	}
	all, err := r.e.opt.Measurements(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if src.Regex.Val.MatchString(m) {
			out = append(out, m)
		}
	}
	return out, nil
}
