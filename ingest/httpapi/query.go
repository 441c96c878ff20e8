package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pginflux/pginflux/internal/auth"
)

// Catalog tells /query what InfluxDB tools ask before they write, from
// where the data is. Its methods are called concurrently, with a context
// that ends when the request does. An error wrapping ErrNotFound or
// ErrInvalid is the statement's, told in its result as InfluxDB tells it
// (with status 200); ErrUnavailable is answered 503; any other 500.
type Catalog interface {
	// CreateDatabase makes database db ready to be written into, or does
	// nothing where databases are not kept apart.
	CreateDatabase(ctx context.Context, db string) error
	// Databases lists the databases written into, in order.
	Databases(ctx context.Context) ([]string, error)
	// Measurements lists the measurements of database db ("" for the
	// default one), in order.
	Measurements(ctx context.Context, db string) ([]string, error)
	// Retention returns how long database db keeps data; 0 is forever.
	Retention(ctx context.Context, db string) (time.Duration, error)
}

// ErrNotFound: the database named does not exist. Its text is InfluxDB's.
var ErrNotFound = errors.New("database not found")

// maxQueryBody bounds a /query form.
const maxQueryBody = 1 << 20

// queryTimeout bounds the Catalog's work for one request.
const queryTimeout = 10 * time.Second

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
	Error       string   `json:"error,omitempty"`
}

type series struct {
	Name    string   `json:"name,omitempty"`
	Columns []string `json:"columns"`
	Values  [][]any  `json:"values,omitempty"`
}

// maxStatements bounds the statements of one /query request: each may be
// a round trip to PostgreSQL, and tools send one or two.
const maxStatements = 100

// query answers /query as InfluxDB 1.x does, for the statements InfluxDB
// tools send before they write (see parseQuery); anything else is
// answered 501, a malformed statement 400. q is read from the URL or a
// form body; db is the database of statements without ON; pretty=true
// indents. Statements run in order, and the first that fails ends the
// request, its error in its result.
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
	q := r.Form.Get("q")
	if strings.TrimSpace(q) == "" {
		s.fail(w, r, apiV1, http.StatusBadRequest, `missing required parameter "q"`)
		return
	}
	stmts, err := parseQuery(q)
	switch {
	case errors.Is(err, errUnsupported):
		s.fail(w, r, apiV1, http.StatusNotImplemented, err.Error())
		return
	case err != nil:
		s.fail(w, r, apiV1, http.StatusBadRequest, "error parsing query: "+err.Error())
		return
	case len(stmts) > maxStatements:
		s.fail(w, r, apiV1, http.StatusBadRequest, fmt.Sprintf("error parsing query: %d statements, more than the %d pginflux takes in one request", len(stmts), maxStatements))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	db := r.Form.Get("db")
	for _, st := range stmts {
		if verb, target, ok := permitted(cred, st, db); !ok {
			s.fail(w, r, apiV1, http.StatusForbidden, forbidden(cred, verb, target))
			return
		}
	}
	results := make([]result, 0, len(stmts))
	for i, st := range stmts {
		res, err := s.execute(ctx, st, db)
		if st.kind == showDatabases {
			res = visible(res, cred)
		}
		res.StatementID = i
		switch {
		case errors.Is(err, errUnsupported):
			s.fail(w, r, apiV1, http.StatusNotImplemented, err.Error())
			return
		case errors.Is(err, ErrUnavailable):
			w.Header().Set("Retry-After", retryUnavailable)
			s.fail(w, r, apiV1, http.StatusServiceUnavailable, err.Error())
			return
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid):
			res.Error = err.Error()
		case err != nil:
			s.log.Warn("a query failed", "request_id", requestID(r), "err", err)
			s.fail(w, r, apiV1, http.StatusInternalServerError, err.Error())
			return
		}
		results = append(results, res)
		if res.Error != "" {
			break
		}
	}
	body := struct {
		Results []result `json:"results"`
	}{results}
	if r.Form.Get("pretty") != "true" {
		writeJSON(w, r, http.StatusOK, body)
		return
	}
	b, _ := json.MarshalIndent(body, "", "    ")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// execute runs one statement; db is the request's database.
// permitted says whether c may run st, whose database is db unless it
// names one (ON); if not, what it may not do to which database.
func permitted(c *auth.Credential, st statement, db string) (verb, target string, ok bool) {
	if st.on || st.kind == createDatabase {
		db = st.db
	}
	switch st.kind {
	case createDatabase:
		return "create", db, c.CanWrite(db)
	case showDatabases:
		return "", "", true // each is shown only if c may write to or query it
	}
	return "query", db, c.CanQuery(db)
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

func (s *Server) execute(ctx context.Context, st statement, db string) (result, error) {
	if st.on {
		db = st.db
	}
	c := s.cfg.Catalog
	if c == nil {
		if st.kind == createDatabase {
			return result{}, nil
		}
		return result{}, fmt.Errorf("%w (pginflux answers SHOW statements only with its database)", errUnsupported)
	}
	switch st.kind {
	case createDatabase:
		return result{}, c.CreateDatabase(ctx, st.db)
	case showDatabases:
		names, err := c.Databases(ctx)
		if err != nil {
			return result{}, err
		}
		return result{Series: []series{{Name: "databases", Columns: []string{"name"}, Values: column(names)}}}, nil
	case showMeasurements:
		names, err := c.Measurements(ctx, db)
		if err != nil {
			return result{}, err
		}
		if st.match != nil {
			kept := names[:0]
			for _, n := range names {
				if st.match(n) {
					kept = append(kept, n)
				}
			}
			names = kept
		}
		names = names[min(st.offset, len(names)):]
		if st.limit > 0 {
			names = names[:min(st.limit, len(names))]
		}
		if len(names) == 0 {
			return result{}, nil // InfluxDB's answer: no series
		}
		return result{Series: []series{{Name: "measurements", Columns: []string{"name"}, Values: column(names)}}}, nil
	case showRetentionPolicies:
		d, err := c.Retention(ctx, db)
		if err != nil {
			return result{}, err
		}
		return result{Series: []series{{
			Columns: []string{"name", "duration", "shardGroupDuration", "replicaN", "default"},
			Values:  [][]any{{"autogen", d.String(), shardGroupDuration(d).String(), 1, true}},
		}}}, nil
	}
	return result{}, fmt.Errorf("statement kind %d: %w", st.kind, errUnsupported)
}

// column makes the values of a one-column series.
func column(names []string) [][]any {
	v := make([][]any, len(names))
	for i, n := range names {
		v[i] = []any{n}
	}
	return v
}

// shardGroupDuration is the shard group duration InfluxDB 1.x gives a
// retention policy of duration d: a week for 0 (forever) or six months
// and more, a day for two days and more, else an hour.
func shardGroupDuration(d time.Duration) time.Duration {
	switch {
	case d == 0 || d >= 180*24*time.Hour:
		return 7 * 24 * time.Hour
	case d >= 2*24*time.Hour:
		return 24 * time.Hour
	}
	return time.Hour
}
