package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/influxdata/influxql"

	"github.com/pginflux/pginflux/internal/query"
)

// execute runs one statement of a /query request.
func (s *Server) execute(ctx context.Context, st influxql.Statement, qr queryRequest) (result, error) {
	db := qr.db
	c := s.cfg.Catalog
	switch st := st.(type) {
	case *influxql.CreateDatabaseStatement:
		if c == nil {
			return result{}, nil
		}
		return result{}, c.CreateDatabase(ctx, st.Name)
	case *influxql.ShowDatabasesStatement:
		if c == nil {
			return result{}, query.StatementError("SHOW DATABASES is answered only with a database")
		}
		names, err := c.Databases(ctx)
		if err != nil {
			return result{}, err
		}
		res := result{Series: []series{{Name: "databases", Columns: []string{"name"}, Values: column(names)}}}
		return visible(res, qr.cred), nil
	case *influxql.ShowRetentionPoliciesStatement:
		if c == nil {
			return result{}, query.StatementError("SHOW RETENTION POLICIES is answered only with a database")
		}
		if st.Database != "" {
			db = st.Database
		}
		d, err := c.Retention(ctx, db)
		if err != nil {
			return result{}, err
		}
		return result{Series: []series{{
			Columns: []string{"name", "duration", "shardGroupDuration", "replicaN", "default"},
			Values:  [][]any{{"autogen", d.String(), shardGroupDuration(d).String(), 1, true}},
		}}}, nil
	}
	if !query.Supported(st) || s.cfg.Reader == nil {
		return result{}, notSupported(st)
	}
	out, err := s.cfg.Reader.Run(ctx, st, query.Request{DB: db, Role: qr.cred.Role, Now: qr.now})
	if err != nil {
		return result{}, err
	}
	res := result{Series: make([]series, len(out))}
	for i, o := range out {
		if qr.epoch > 0 {
			for _, v := range o.Values {
				if t, ok := v[0].(time.Time); ok {
					v[0] = t.UnixNano() / qr.epoch
				}
			}
		}
		res.Series[i] = series{Name: o.Name, Tags: o.Tags, Columns: o.Columns, Values: o.Values}
	}
	return res, nil
}

// notSupported is the error of a statement /query does not run.
func notSupported(st influxql.Statement) error {
	kind := strings.Fields(st.String())
	name := strings.Join(kind[:min(2, len(kind))], " ")
	if _, ok := st.(*influxql.SelectStatement); ok || len(kind) == 1 {
		name = kind[0]
	}
	switch strings.ToUpper(kind[0]) {
	case "CREATE", "DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "SET", "KILL":
		return query.StatementError(name + " is not supported by pginflux: /query only reads; the data is in PostgreSQL, change it there")
	}
	return query.StatementError(name + " is not supported by pginflux")
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

// queryWriter writes /query's answer: whole at the end, or chunk by
// chunk, each a JSON object on a line of its own, as InfluxDB streams.
type queryWriter struct {
	w       http.ResponseWriter
	r       *http.Request
	chunked bool
	results []result
	wrote   bool
}

func newQueryWriter(w http.ResponseWriter, r *http.Request, chunked bool) *queryWriter {
	return &queryWriter{w: w, r: r, chunked: chunked}
}

// started says the status is sent: later failures go into results.
func (q *queryWriter) started() bool { return q.wrote }

func (q *queryWriter) result(res result) {
	if !q.chunked {
		q.results = append(q.results, res)
		return
	}
	q.send(res)
}

// chunks sends a result in chunks of at most size rows of one series,
// marked partial but the last (its series' last chunk unmarked too).
func (q *queryWriter) chunks(res result, size int) {
	if len(res.Series) == 0 {
		q.send(res)
		return
	}
	for i, s := range res.Series {
		for start := 0; start == 0 || start < len(s.Values); start += size {
			end := min(start+size, len(s.Values))
			part := s
			part.Values = s.Values[start:end]
			part.Partial = end < len(s.Values)
			q.send(result{StatementID: res.StatementID, Series: []series{part}, Partial: part.Partial || i < len(res.Series)-1})
			if end == len(s.Values) {
				break
			}
		}
	}
}

func (q *queryWriter) send(res result) {
	if !q.wrote {
		h := q.w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		q.w.WriteHeader(http.StatusOK)
		q.wrote = true
	}
	_ = json.NewEncoder(q.w).Encode(struct {
		Results []result `json:"results"`
	}{[]result{res}})
	if f, ok := q.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes the whole answer of an answer not chunked.
func (q *queryWriter) finish(pretty bool) {
	if q.chunked {
		if !q.wrote {
			q.send(result{})
		}
		return
	}
	body := struct {
		Results []result `json:"results"`
	}{q.results}
	if !pretty {
		writeJSON(q.w, q.r, http.StatusOK, body)
		return
	}
	b, _ := json.MarshalIndent(body, "", "    ")
	q.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(append(b, '\n'))
}
