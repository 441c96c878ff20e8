package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/budget"
)

// Options configures an Engine.
type Options struct {
	// Pool returns the pool to read through, or an error while pginflux
	// starts or stops (returned as it is).
	Pool func() (*pgxpool.Pool, error)
	// Schema names the schema of database db, and says whether it must
	// exist for db to: a statement on a database whose schema does not
	// exist is then "database not found", as in InfluxDB.
	Schema func(db string) (schema string, mustExist bool)
	// RejectedTable is the name of the rejected table (--rejected-table),
	// which is no measurement.
	RejectedTable string
	// Timeout bounds each statement in PostgreSQL (statement_timeout); 0
	// leaves the server's.
	Timeout time.Duration
	// Memory is what the rows of the series being finished draw from the
	// memory budget (--max-memory); a draw it refuses ends the statement
	// with an error. Nil draws nothing.
	Memory *budget.Account
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
	// Partial says more rows of this series follow, in the next Series
	// handed over: a long series of points comes in parts.
	Partial bool
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

// Run runs one statement in a read-only transaction, as req.Role,
// handing each series of its answer to emit, in InfluxDB's order. An
// error of emit ends it and is returned.
func (e *Engine) Run(ctx context.Context, st influxql.Statement, req Request, emit func(Series) error) error {
	if !Supported(st) {
		return Unsupported(st)
	}
	pool, err := e.opt.Pool()
	if err != nil {
		return err
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return e.pgErr(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if e.opt.Timeout > 0 {
		ms := strconv.FormatInt(max(e.opt.Timeout.Milliseconds(), 1), 10)
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = "+ms); err != nil {
			return e.pgErr(err)
		}
	}
	if req.Role != "" {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{req.Role}.Sanitize()); err != nil {
			return e.pgErr(err)
		}
	}
	r := &run{e: e, tx: tx, req: req}
	var out []Series
	emitted := false
	switch st := st.(type) {
	case *influxql.SelectStatement:
		err = r.selectStmt(ctx, st, func(s Series) error {
			emitted = true
			if err := emit(s); err != nil {
				return &emitError{err}
			}
			return nil
		})
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
	var ee *emitError
	if errors.As(err, &ee) {
		return ee.err
	}
	if err != nil {
		err = e.pgErr(err)
		if emitted && errors.Is(err, ErrUnavailable) {
			err = errorf("%s", err) // part of the answer is sent: the statement's error
		}
		return err
	}
	for _, s := range out {
		if err := emit(s); err != nil {
			return err
		}
	}
	return nil
}

// emitError is an error of Run's emit, returned as it is.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

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

// Unsupported is the error of a statement pginflux does not run, naming
// its kind; one that would change data is told that /query only reads.
func Unsupported(st influxql.Statement) error {
	kind := strings.Fields(st.String())
	name := strings.Join(kind[:min(2, len(kind))], " ")
	if _, ok := st.(*influxql.SelectStatement); ok || len(kind) == 1 {
		name = kind[0]
	}
	switch strings.ToUpper(kind[0]) {
	case "CREATE", "DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "SET", "KILL":
		return errorf("%s is not supported by pginflux: /query only reads; the data is in PostgreSQL, change it there", name)
	}
	return errorf("%s is not supported by pginflux", name)
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
	sch, mustExist := r.e.opt.Schema(db)
	if !mustExist {
		return sch, nil
	}
	var exists bool
	if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", sch).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		return "", errorf("database not found: %s", db)
	}
	return sch, nil
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
	sch, err := r.schema(ctx, db)
	if err != nil {
		return nil, err
	}
	all, err := r.allMeasurements(ctx, sch)
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
