package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/query"
)

// Catalog answers the statements of /query about databases. Its methods
// are called concurrently, with a context that ends when the request
// does. An error wrapping ErrNotFound or ErrInvalid is the statement's,
// told in its result as InfluxDB tells it (with status 200);
// ErrUnavailable is answered 503; any other 500.
type Catalog interface {
	// CreateDatabase makes database db ready to be written into, or does
	// nothing where databases are not kept apart.
	CreateDatabase(ctx context.Context, db string) error
	// Databases lists the databases written into, in order.
	Databases(ctx context.Context) ([]string, error)
	// Retention returns how long database db keeps data; 0 is forever.
	Retention(ctx context.Context, db string) (time.Duration, error)
}

// Reader answers the statements of /query that read data (those
// query.Supported names), with errors as query.Engine's.
type Reader interface {
	Run(ctx context.Context, st influxql.Statement, req query.Request, emit func(query.Series) error) error
}

// ErrNotFound: the database named does not exist. Its text is InfluxDB's.
var ErrNotFound = errors.New("database not found")

// maxQueryBody bounds a /query form.
const maxQueryBody = 1 << 20

// DefaultChunkSize is the rows of a chunk of a chunked answer when
// chunk_size does not say, InfluxDB's.
const DefaultChunkSize = 10000

// queryRoutes serves /query, GET and POST, when there is a Writer.
func (s *Server) queryRoutes() {
	if s.cfg.Writer == nil {
		return
	}
	s.mux.HandleFunc("GET /query", s.query)
	s.mux.HandleFunc("POST /query", s.query)
}

// result and series are InfluxDB 1.x's JSON of a statement's result.
type result struct {
	StatementID int      `json:"statement_id"`
	Series      []series `json:"series,omitempty"`
	Partial     bool     `json:"partial,omitempty"`
	Error       string   `json:"error,omitempty"`
}

type series struct {
	Name    string            `json:"name,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values,omitempty"`
	Partial bool              `json:"partial,omitempty"`
}

// maxStatements bounds the statements of one /query request.
const maxStatements = 100

// queryRequest is what /query's form says besides q.
type queryRequest struct {
	db        string
	cred      *auth.Credential
	epoch     int64 // the divisor of times in ns; 0 writes RFC3339 strings
	chunked   bool
	chunkSize int
	now       time.Time
}

// query answers /query as InfluxDB 1.x does: q is parsed with InfluxQL's
// parser (params binds its $parameters), db is the database of
// statements that name none, epoch chooses how times are written,
// chunked=true streams the answer in chunks of chunk_size rows, and
// pretty=true indents. A malformed query is 400; a statement that fails
// has its error in its result (200), and the statements after it are
// "not executed", as in InfluxDB.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	cred, ok := s.credential(r)
	if !ok {
		s.fail(w, r, apiV1, http.StatusUnauthorized, s.unauthorized())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxQueryBody)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, apiV1, http.StatusBadRequest, "cannot read the query: "+err.Error())
		return
	}
	parsed, msg := parseStatements(r)
	if msg != "" {
		s.fail(w, r, apiV1, http.StatusBadRequest, msg)
		return
	}
	qr := queryRequest{db: r.Form.Get("db"), cred: cred, now: time.Now(), chunked: r.Form.Get("chunked") == "true", chunkSize: DefaultChunkSize}
	if n, err := strconv.Atoi(r.Form.Get("chunk_size")); err == nil && n > 0 {
		qr.chunkSize = n
	}
	if qr.epoch, ok = epochDivisor(r.Form.Get("epoch")); !ok {
		s.fail(w, r, apiV1, http.StatusBadRequest, fmt.Sprintf("invalid epoch %q: one of ns, u, ms, s, m, h", r.Form.Get("epoch")))
		return
	}
	for _, st := range parsed.Statements {
		if verb, target, ok := permitted(cred, st, qr.db); !ok {
			s.fail(w, r, apiV1, http.StatusForbidden, forbidden(cred, verb, target))
			return
		}
	}
	// Each statement may take the Reader's timeout, then the answer is
	// written.
	deadline := time.Now().Add(time.Duration(len(parsed.Statements))*s.cfg.QueryTimeout + writeTimeout)
	_ = http.NewResponseController(w).SetWriteDeadline(deadline)
	out := &queryWriter{w: w, chunked: qr.chunked, chunkSize: qr.chunkSize, pretty: r.Form.Get("pretty") == "true"}
	failed := false
	for i, st := range parsed.Statements {
		out.open(i)
		if failed {
			out.close("not executed")
			continue
		}
		err := s.execute(r.Context(), st, qr, out)
		switch {
		case err == nil:
		case errors.Is(err, ErrUnavailable), errors.Is(err, query.ErrUnavailable):
			if out.started {
				break
			}
			w.Header().Set("Retry-After", retryUnavailable)
			s.fail(w, r, apiV1, http.StatusServiceUnavailable, err.Error())
			return
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid), errors.Is(err, query.ErrStatement):
		default:
			if out.started || r.Context().Err() != nil {
				break
			}
			s.log.Warn("a query failed", "request_id", requestID(r), "err", err)
			s.fail(w, r, apiV1, http.StatusInternalServerError, err.Error())
			return
		}
		if err != nil {
			failed = true
			out.close(err.Error())
			continue
		}
		out.close("")
	}
	out.finish()
}

// parseStatements parses q of a /query form, with its params; a
// message for a 400 otherwise.
func parseStatements(r *http.Request) (*influxql.Query, string) {
	q := r.Form.Get("q")
	if strings.TrimSpace(q) == "" {
		return nil, `missing required parameter "q"`
	}
	p := influxql.NewParser(strings.NewReader(q))
	if raw := r.Form.Get("params"); raw != "" {
		params, err := queryParams(raw)
		if err != nil {
			return nil, err.Error()
		}
		p.SetParams(params)
	}
	parsed, err := p.ParseQuery()
	switch {
	case err != nil:
		return nil, "error parsing query: " + err.Error()
	case len(parsed.Statements) == 0:
		return nil, "error parsing query: found EOF, expected a statement"
	case len(parsed.Statements) > maxStatements:
		return nil, fmt.Sprintf("error parsing query: %d statements, more than the %d pginflux takes in one request", len(parsed.Statements), maxStatements)
	}
	return parsed, ""
}

// queryParams reads the params form value, as InfluxDB does: numbers
// with a decimal point are floats, others integers.
func queryParams(raw string) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	var params map[string]any
	if err := d.Decode(&params); err != nil {
		return nil, fmt.Errorf("error parsing query parameters: %v", err)
	}
	for k, v := range params {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		var err error
		if strings.Contains(string(n), ".") {
			params[k], err = n.Float64()
		} else {
			params[k], err = n.Int64()
		}
		if err != nil {
			return nil, fmt.Errorf("error parsing json value: %v", err)
		}
	}
	return params, nil
}

// epochDivisor is what a time in ns is divided by for epoch=e; 0 for
// RFC3339 strings (no epoch).
func epochDivisor(e string) (int64, bool) {
	switch e {
	case "":
		return 0, true
	case "ns", "n":
		return 1, true
	case "u", "µ":
		return int64(time.Microsecond), true
	case "ms":
		return int64(time.Millisecond), true
	case "s":
		return int64(time.Second), true
	case "m":
		return int64(time.Minute), true
	case "h":
		return int64(time.Hour), true
	}
	return 0, false
}

// databases names the databases st reads or changes; "" is the request's.
func databases(st influxql.Statement) (names []string, write bool) {
	switch st := st.(type) {
	case *influxql.CreateDatabaseStatement:
		return []string{st.Name}, true
	case *influxql.ShowDatabasesStatement:
		return nil, false
	case *influxql.SelectStatement:
		for _, src := range st.Sources {
			if m, ok := src.(*influxql.Measurement); ok {
				names = append(names, m.Database)
			}
		}
		return names, st.Target != nil
	case *influxql.ShowMeasurementsStatement:
		return []string{st.Database}, false
	case *influxql.ShowTagKeysStatement:
		return []string{st.Database}, false
	case *influxql.ShowTagValuesStatement:
		return []string{st.Database}, false
	case *influxql.ShowFieldKeysStatement:
		return []string{st.Database}, false
	case *influxql.ShowSeriesStatement:
		return []string{st.Database}, false
	case *influxql.ShowRetentionPoliciesStatement:
		return []string{st.Database}, false
	}
	return []string{""}, false
}

// permitted says whether c may run st in database db (those st names
// otherwise); if not, what it may not do to which database.
func permitted(c *auth.Credential, st influxql.Statement, db string) (verb, target string, ok bool) {
	names, write := databases(st)
	for _, n := range names {
		if n == "" {
			n = db
		}
		if write && !c.CanWrite(n) {
			return "create", n, false
		}
		if !write && !c.CanQuery(n) {
			return "query", n, false
		}
	}
	return "", "", true
}

// visible keeps, of SHOW DATABASES' answer, the databases c may write to
// or query.
func visible(res result, c *auth.Credential) result {
	if c.CanQuery("*") && c.CanWrite("*") || len(res.Series) == 0 {
		return res
	}
	kept := res.Series[0].Values[:0]
	for _, v := range res.Series[0].Values {
		if name, _ := v[0].(string); c.CanQuery(name) || c.CanWrite(name) {
			kept = append(kept, v)
		}
	}
	res.Series[0].Values = kept
	return res
}
