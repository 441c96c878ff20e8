package query

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pginflux/pginflux/internal/budget"
)

// row is one row a plan reads: a window or a point.
type row struct {
	t    int64 // ns
	vals []any // the calls' values, then the refs'
}

// group is the rows of one series, in time order.
type group struct {
	tags map[string]string
	rows []row
	// A series of points comes in parts of rawPart rows: more says more
	// parts follow, sent that some part had rows to answer, skipped and
	// kept count its rows OFFSET skipped and LIMIT kept so far.
	more          bool
	sent          bool
	skipped, kept int
}

// rawPart is the rows of a series of points held at once: a longer one
// is answered in parts.
const rawPart = 10000

// rowBytes is what a row held is taken to cost, beside its values
// (valueBytes each), for the memory budget.
const rowBytes, valueBytes = 48, 24

// drawEvery is how many rows are drawn from the budget at once.
const drawEvery = 1024

// memory is what a statement's rows draw from the memory budget.
type memory struct {
	acct  *budget.Account
	drawn int64
}

// draw takes what n more rows of width values cost, or an error when the
// budget refuses it.
func (m *memory) draw(n, width int) error {
	b := int64(n) * int64(rowBytes+width*valueBytes)
	if !m.acct.Admit(b) {
		return errorf("the answer needs more memory than --max-memory leaves now: narrow the query (a shorter range, a longer GROUP BY time interval, fewer series)")
	}
	m.drawn += b
	return nil
}

// release gives back everything drawn.
func (m *memory) release() {
	m.acct.Give(m.drawn)
	m.drawn = 0
}

// read reads the rows of a plan's SQL, which come series after series
// (ordered by the dimensions), and hands each series' rows to each.
func (p *plan) read(rows pgx.Rows, each func(*group) error) error {
	defer rows.Close()
	var g *group
	var key, prev []byte
	n := 0
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return err
		}
		n++
		if err := p.q.checkPoints(n); err != nil {
			return err
		}
		t, tagVals, vals := p.decode(v)
		key = key[:0]
		for _, tv := range tagVals {
			s, _ := tv.(string)
			key = append(append(key, s...), 0)
		}
		if g == nil || string(key) != string(prev) {
			if g != nil {
				if err := each(g); err != nil {
					return err
				}
			}
			g = &group{}
			if len(p.dims) > 0 {
				g.tags = make(map[string]string, len(p.dims))
				for i, d := range p.dims {
					s, _ := tagVals[i].(string)
					g.tags[d] = s
				}
			}
			prev = append(prev[:0], key...)
		}
		g.rows = append(g.rows, row{t: t, vals: vals})
		if len(g.rows)%drawEvery == 0 {
			if err := p.mem.draw(drawEvery, len(vals)); err != nil {
				return err
			}
		}
		if len(g.rows) >= rawPart && !p.aggregate && !p.transforms() {
			g.more = true
			if err := each(g); err != nil {
				return err
			}
			g.rows, g.more = nil, false
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if g != nil {
		return each(g)
	}
	return nil
}

// decode splits a row of the plan's SQL into its time, its dimensions'
// values and its values (see sql.go for the layouts).
func (p *plan) decode(v []any) (t int64, tagVals, vals []any) {
	switch {
	case p.special != nil && p.special.Name != "distinct":
		i := 0
		if p.q.interval > 0 {
			i++
		}
		tagVals = v[i : i+len(p.dims)]
		i += len(p.dims)
		t = v[i].(time.Time).UnixNano()
		vals = v[i+1:]
		aux := len(vals) - len(p.refs) // the value and the tags named come first
		for j := range vals {
			vals[j] = normalize(vals[j], j >= aux && p.refJSON(p.refs[j-aux]))
		}
	case p.aggregate:
		i := 0
		if p.q.interval > 0 {
			t = v[0].(time.Time).UnixNano()
			i++
		} else if p.q.hasMin {
			t = p.q.min
		}
		tagVals = v[i : i+len(p.dims)]
		i += len(p.dims)
		vals = v[i : i+len(p.calls)]
		for j := range vals {
			vals[j] = normalize(vals[j], false)
			switch p.calls[j].Name {
			case "mode":
				vals[j] = mode(vals[j])
			case "distinct":
				vals[j] = firstOfEach(vals[j])
			}
		}
		i += len(p.calls)
		if p.lone != nil {
			if p.q.interval == 0 {
				if ts, ok := v[i].(time.Time); ok {
					t = ts.UnixNano()
				}
				i++
			}
			for j, r := range p.refs {
				vals = append(vals, normalize(v[i+j], p.refJSON(r)))
			}
		}
	default:
		t = v[0].(time.Time).UnixNano()
		i := 1
		if p.t.nanos {
			if ns, ok := v[1].(int16); ok {
				t += int64(ns)
			}
			i++
		}
		tagVals = v[i : i+len(p.dims)]
		i += len(p.dims)
		for j, r := range p.refs {
			vals = append(vals, normalize(v[i+j], p.refJSON(r)))
		}
	}
	return t, tagVals, vals
}

// refJSON says ref r is read as the text of a jsonb value.
func (p *plan) refJSON(r *influxql.VarRef) bool {
	f, ok := p.t.fields[r.Val]
	_, isTag := p.t.tags[r.Val]
	return ok && f.json && !(r.Type == influxql.Tag && isTag)
}

// normalize makes a value PostgreSQL returned one InfluxDB would answer:
// a float64, int64, string or bool (or a slice of them, of distinct()).
func normalize(v any, jsonText bool) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if !jsonText {
			return v
		}
		d := json.NewDecoder(strings.NewReader(v))
		d.UseNumber()
		var x any
		if d.Decode(&x) != nil {
			return nil
		}
		return normalize(x, false)
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
		f, err := v.Float64()
		if err != nil {
			return nil
		}
		return f
	case float32:
		return float64(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case pgtype.Numeric:
		if !v.Valid || v.NaN {
			return nil
		}
		if v.Exp >= 0 {
			i := new(big.Int).Set(v.Int)
			i.Mul(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(v.Exp)), nil))
			if i.IsInt64() {
				return i.Int64()
			}
		}
		f, err := v.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = normalize(v[i], jsonText)
		}
		return out
	}
	return v
}

// mode is the most frequent of values (in time order), the earliest of
// those as frequent; nil for none.
func mode(values any) any {
	vs, _ := values.([]any)
	count := make(map[any]int, len(vs))
	var best any
	n := 0
	for _, v := range vs {
		count[v]++
		if c := count[v]; c > n {
			best, n = v, c
		}
	}
	// The earliest of the most frequent.
	for _, v := range vs {
		if count[v] == n {
			return v
		}
	}
	return best
}

// firstOfEach keeps the first of each value of values, in order.
func firstOfEach(values any) any {
	vs, _ := values.([]any)
	seen := make(map[any]bool, len(vs))
	out := vs[:0:0]
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
