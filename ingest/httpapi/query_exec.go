package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/influxdata/influxql"

	"github.com/pginflux/pginflux/internal/query"
)

// execute runs one statement of a /query request, its series into out.
func (s *Server) execute(ctx context.Context, st influxql.Statement, qr queryRequest, out *queryWriter) error {
	db := qr.db
	c := s.cfg.Catalog
	switch st := st.(type) {
	case *influxql.CreateDatabaseStatement:
		if c == nil {
			return nil
		}
		return c.CreateDatabase(ctx, st.Name)
	case *influxql.ShowDatabasesStatement:
		if c == nil {
			return query.StatementError("SHOW DATABASES is answered only with a database")
		}
		names, err := c.Databases(ctx)
		if err != nil {
			return err
		}
		res := visible(result{Series: []series{{Name: "databases", Columns: []string{"name"}, Values: column(names)}}}, qr.cred)
		out.series(res.Series[0], false)
		return nil
	case *influxql.ShowRetentionPoliciesStatement:
		if c == nil {
			return query.StatementError("SHOW RETENTION POLICIES is answered only with a database")
		}
		if st.Database != "" {
			db = st.Database
		}
		d, err := c.Retention(ctx, db)
		if err != nil {
			return err
		}
		out.series(series{
			Columns: []string{"name", "duration", "shardGroupDuration", "replicaN", "default"},
			Values:  [][]any{{"autogen", d.String(), shardGroupDuration(d).String(), 1, true}},
		}, false)
		return nil
	}
	if !query.Supported(st) || s.cfg.Reader == nil {
		return query.Unsupported(st)
	}
	return s.cfg.Reader.Run(ctx, st, query.Request{DB: db, Role: qr.cred.Role, Now: qr.now}, func(o query.Series) error {
		if qr.epoch > 0 {
			for _, v := range o.Values {
				if t, ok := v[0].(time.Time); ok {
					v[0] = t.UnixNano() / qr.epoch
				}
			}
		}
		out.series(series{Name: o.Name, Tags: o.Tags, Columns: o.Columns, Values: o.Values}, o.Partial)
		return out.err
	})
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

// queryWriter writes /query's answer as it comes, series after series,
// so that an answer of millions of points is never held whole: as one
// JSON document, or with chunked=true as a JSON object a chunk of at most
// chunkSize rows of one series, each on a line of its own, as InfluxDB
// streams them. Nothing is sent until a statement ends or 64 KiB are
// ready, so that a failure to reach PostgreSQL at the start is still a
// 503; a failure after that is the statement's error, after the series
// sent. pretty=true holds the whole answer to indent it.
type queryWriter struct {
	w         http.ResponseWriter
	chunked   bool
	chunkSize int
	pretty    bool
	pending   bytes.Buffer
	started   bool  // the status is sent
	err       error // of writing to the client
	// The statement being written: its id, whether a result object is
	// open (not chunked) and its series array, whether any result was
	// written yet.
	id             int
	inSeries, some bool
	// open says a series' values array is open: more of its rows
	// follow; rows counts those written.
	seriesOpen bool
	rows       int
	scratch    []byte // a row's JSON
	// held is the last chunk of a chunked answer, sent once it is known
	// whether more of its statement follows (then marked partial).
	held *result
}

// flushAt is how much of the answer waits before it is sent.
const flushAt = 64 << 10

// open starts statement id's result.
func (q *queryWriter) open(id int) {
	q.id, q.inSeries = id, false
	if q.chunked {
		return
	}
	if !q.some {
		q.pending.WriteString(`{"results":[`)
	} else {
		q.pending.WriteByte(',')
	}
	q.some = true
	fmt.Fprintf(&q.pending, `{"statement_id":%d`, id)
}

// series adds a series to the statement's result; more says more of
// its rows follow, in the next call, which continues it.
func (q *queryWriter) series(s series, more bool) {
	if q.chunked {
		q.chunks(s, more)
		return
	}
	if !q.seriesOpen {
		if q.inSeries {
			q.pending.WriteByte(',')
		} else {
			q.pending.WriteString(`,"series":[`)
			q.inSeries = true
		}
		head := s
		head.Values = nil
		b, _ := json.Marshal(head)
		q.pending.Write(b[:len(b)-1]) // without its }
		q.pending.WriteString(`,"values":[`)
		q.seriesOpen, q.rows = true, 0
	}
	for _, v := range s.Values {
		if q.rows > 0 {
			q.pending.WriteByte(',')
		}
		q.encodeRow(v)
		q.rows++
		if q.pending.Len() >= flushAt && !q.pretty {
			q.flush()
		}
	}
	if !more {
		q.pending.WriteString("]}")
		q.seriesOpen = false
	}
}

// encode writes v as JSON, without a newline.
func (q *queryWriter) encode(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(err.Error())
	}
	q.pending.Write(b)
}

// encodeRow writes a row of values as encoding/json would, the usual
// types (times as epoch integers, floats, strings) without reflection.
func (q *queryWriter) encodeRow(row []any) {
	b := q.scratch[:0]
	b = append(b, '[')
	for i, v := range row {
		if i > 0 {
			b = append(b, ',')
		}
		switch v := v.(type) {
		case nil:
			b = append(b, "null"...)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case float64:
			b = appendFloat(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				j, _ = json.Marshal(err.Error())
			}
			b = append(b, j...)
		}
	}
	b = append(b, ']')
	q.pending.Write(b)
	q.scratch = b
}

// appendFloat appends f as encoding/json writes a float64 (the shortest
// decimal that reads back as f; exponent form below 1e-6 and from 1e21).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// close ends the statement's result, with its error if any.
func (q *queryWriter) close(errText string) {
	if q.chunked {
		if errText != "" || !q.inSeries {
			q.chunk(result{StatementID: q.id, Error: errText})
		}
		q.send(false)
		return
	}
	if q.inSeries {
		q.pending.WriteByte(']')
	}
	if errText != "" {
		q.pending.WriteString(`,"error":`)
		q.encode(errText)
	}
	q.pending.WriteByte('}')
	if !q.pretty {
		q.flush()
	}
}

// chunks sends a series in chunks of at most chunkSize rows, each but
// the last of the series marked partial.
func (q *queryWriter) chunks(s series, more bool) {
	q.inSeries = true
	if len(s.Values) == 0 {
		// The end of a series sent in parts: its last chunk, held, is its
		// last.
		if q.held != nil && len(q.held.Series) == 1 {
			q.held.Series[0].Partial = false
			q.held.Partial = false
		}
		return
	}
	for start := 0; start < len(s.Values); start += q.chunkSize {
		end := min(start+q.chunkSize, len(s.Values))
		part := s
		part.Values = s.Values[start:end]
		part.Partial = more || end < len(s.Values)
		q.chunk(result{StatementID: q.id, Series: []series{part}, Partial: part.Partial})
		if end == len(s.Values) {
			break
		}
	}
}

// chunk sends the chunk held, partial, and holds res.
func (q *queryWriter) chunk(res result) {
	q.send(true)
	q.held = &res
}

// send sends the chunk held, as one JSON object on a line; partial says
// more of its statement follows.
func (q *queryWriter) send(partial bool) {
	if q.held == nil {
		return
	}
	res := *q.held
	q.held = nil
	res.Partial = res.Partial || (partial && res.Error == "")
	q.encode(struct {
		Results []result `json:"results"`
	}{[]result{res}})
	q.pending.WriteByte('\n')
	q.flush()
}

// flush sends what is ready.
func (q *queryWriter) flush() {
	if q.err != nil {
		q.pending.Reset()
		return
	}
	if !q.started {
		h := q.w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		q.w.WriteHeader(http.StatusOK)
		q.started = true
	}
	_, q.err = q.w.Write(q.pending.Bytes())
	q.pending.Reset()
	if f, ok := q.w.(http.Flusher); ok && q.chunked {
		f.Flush()
	}
}

// finish ends the answer.
func (q *queryWriter) finish() {
	if q.chunked {
		if !q.started {
			q.chunk(result{})
			q.send(false)
		}
		return
	}
	q.pending.WriteString("]}\n")
	if q.pretty {
		var b bytes.Buffer
		if json.Indent(&b, q.pending.Bytes(), "", "    ") == nil {
			q.pending.Reset()
			q.pending.Write(b.Bytes())
		}
	}
	q.flush()
}
