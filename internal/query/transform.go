package query

import (
	"math"
	"time"

	"github.com/influxdata/influxql"
)

// transform computes transformation c over rows, as InfluxDB's
// iterators do: its argument's rows without a value are skipped.
func (p *plan) transform(c *influxql.Call, rows []row, trans map[*influxql.Call][]opt) []opt {
	out := make([]opt, len(rows))
	type point struct {
		i int
		t int64
		v any
	}
	var prev *point
	var window []float64
	var sum any
	unit := p.unit(c)
	for i := range rows {
		v, _ := p.eval(c.Args[0], rows, i, trans)
		if v == nil {
			continue
		}
		cur := &point{i: i, t: rows[i].t, v: v}
		switch c.Name {
		case "derivative", "non_negative_derivative":
			if prev != nil && prev.t == cur.t {
				continue
			}
			if prev != nil {
				a, _ := toFloat(prev.v)
				b, ok := toFloat(cur.v)
				// In time order as InfluxDB counts it: with ORDER BY time
				// DESC the elapsed time is still positive, so the rate
				// has the sign of the change in the answer's order.
				dt := cur.t - prev.t
				if p.q.desc {
					dt = -dt
				}
				if ok && (c.Name == "derivative" || b-a >= 0) {
					out[i] = opt{(b - a) / (float64(dt) / unit), true}
				}
			}
		case "difference", "non_negative_difference":
			if prev != nil && prev.t == cur.t {
				continue
			}
			if prev != nil {
				d := arithmetic(influxql.SUB, cur.v, prev.v)
				if f, ok := toFloat(d); ok && (c.Name == "difference" || f >= 0) {
					out[i] = opt{d, true}
				}
			}
		case "elapsed":
			if prev != nil {
				out[i] = opt{int64(float64(cur.t-prev.t) / unit), true}
			}
		case "moving_average":
			f, ok := toFloat(v)
			if !ok {
				continue
			}
			n := int(c.Args[1].(*influxql.IntegerLiteral).Val)
			window = append(window, f)
			if len(window) > n {
				window = window[1:]
			}
			if len(window) == n {
				s := 0.0
				for _, x := range window {
					s += x
				}
				out[i] = opt{s / float64(n), true}
			}
		case "cumulative_sum":
			if sum == nil {
				sum = v
			} else {
				sum = arithmetic(influxql.ADD, sum, v)
			}
			out[i] = opt{sum, true}
		}
		prev = cur
	}
	return out
}

// unit is the unit of a transformation, in ns: its duration argument,
// else the GROUP BY time interval for the derivatives (1s without), 1ns
// for elapsed.
func (p *plan) unit(c *influxql.Call) float64 {
	if len(c.Args) == 2 {
		if d, ok := c.Args[1].(*influxql.DurationLiteral); ok {
			return float64(d.Val)
		}
	}
	switch {
	case c.Name == "elapsed":
		return 1
	case p.q.interval > 0:
		return float64(p.q.interval)
	}
	return float64(time.Second)
}

// toFloat reads a number.
func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// arithmetic computes l op r as InfluxQL does: integers stay integers
// but for division; anything else with a non-number is nil.
func arithmetic(op influxql.Token, l, r any) any {
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lInt && rInt && op != influxql.DIV {
		switch op {
		case influxql.ADD:
			return li + ri
		case influxql.SUB:
			return li - ri
		case influxql.MUL:
			return li * ri
		case influxql.MOD:
			if ri == 0 {
				return nil
			}
			return li % ri
		}
		return nil
	}
	a, aok := toFloat(l)
	b, bok := toFloat(r)
	if !aok || !bok {
		return nil
	}
	var v float64
	switch op {
	case influxql.ADD:
		v = a + b
	case influxql.SUB:
		v = a - b
	case influxql.MUL:
		v = a * b
	case influxql.DIV:
		if b == 0 {
			return float64(0)
		}
		v = a / b
	case influxql.MOD:
		v = math.Mod(a, b)
	default:
		return nil
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}
