package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pginflux/pginflux/parse"
)

// v3Params reads the parameters of InfluxDB 3's /api/v3/write_lp: db;
// precision, auto (the default: each timestamp's unit guessed from its
// magnitude), nanosecond, microsecond, millisecond or second, or the
// short forms InfluxDB 3 takes too (ns, n, us, u, ms, s); accept_partial
// (default true); no_sync (default false).
func v3Params(q url.Values) (writeParams, error) {
	p := writeParams{db: q.Get("db"), prec: parse.Auto}
	switch s := q.Get("precision"); s {
	case "", "auto":
	case "nanosecond", "ns", "n":
		p.prec = parse.Nanosecond
	case "microsecond", "us", "u":
		p.prec = parse.Microsecond
	case "millisecond", "ms":
		p.prec = parse.Millisecond
	case "second", "s":
		p.prec = parse.Second
	default:
		return p, fmt.Errorf("invalid precision %q: want auto, nanosecond, microsecond, millisecond or second", s)
	}
	acceptPartial, err := boolParam(q, "accept_partial", true)
	if err != nil {
		return p, err
	}
	p.allOrNothing = !acceptPartial
	p.noWait, err = boolParam(q, "no_sync", false)
	return p, err
}

// boolParam reads a boolean parameter, def when it is absent.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return def, fmt.Errorf("invalid %s %q: want true or false", name, s)
	}
	return b, nil
}

// lineError is InfluxDB 3's account of one bad line of a write.
type lineError struct {
	OriginalLine string `json:"original_line"`
	LineNumber   int64  `json:"line_number"`
	ErrorMessage string `json:"error_message"`
}

// partialV3 answers a /api/v3/write_lp request that was not stored whole
// as InfluxDB 3 Core does, 400 in both cases: with accept_partial=false
// and bad lines, nothing was stored, and "data" is the first bad line;
// otherwise the good lines were stored, and "data" lists the bad ones.
// Values their columns could not hold are found at commit, with no line
// number: they get an entry of line_number 0, as do bad lines beyond
// those listed.
func (s *Server) partialV3(w http.ResponseWriter, r *http.Request, p writeParams, res WriteResult) int {
	line := func(b BadLine) lineError {
		return lineError{OriginalLine: b.Text, LineNumber: b.Line, ErrorMessage: b.Err}
	}
	if p.allOrNothing && res.BadLines > 0 && len(res.Listed) > 0 {
		s.log.Debug("http request refused", "path", r.URL.Path, "code", http.StatusBadRequest, "request_id", requestID(r), "credential", credentialName(r),
			"err", fmt.Sprintf("%d bad lines, nothing written (accept_partial=false)", res.BadLines))
		writeJSON(w, r, http.StatusBadRequest, struct {
			Error string    `json:"error"`
			Data  lineError `json:"data"`
		}{"parsing failed for write_lp endpoint", line(res.Listed[0])})
		return http.StatusBadRequest
	}
	kept := "not kept: --rejected-table is empty"
	if res.KeptIn != "" {
		kept = "kept in " + res.KeptIn
	}
	data := make([]lineError, 0, len(res.Listed)+2)
	for _, b := range res.Listed {
		data = append(data, line(b))
	}
	if more := res.BadLines - len(res.Listed); more > 0 {
		data = append(data, lineError{ErrorMessage: fmt.Sprintf("%d more bad lines, not listed; all are %s", more, kept)})
	}
	if res.Rejected > 0 {
		data = append(data, lineError{ErrorMessage: fmt.Sprintf(
			"%d rows written with values their columns cannot hold (type conflicts), or refused whole by PostgreSQL; those values and rows are %s", res.Rejected, kept)})
	}
	s.log.Debug("http request refused", "path", r.URL.Path, "code", http.StatusBadRequest, "request_id", requestID(r), "credential", credentialName(r), "err", partialWrite(res))
	writeJSON(w, r, http.StatusBadRequest, struct {
		Error string      `json:"error"`
		Data  []lineError `json:"data"`
	}{"partial write of line protocol occurred", data})
	return http.StatusBadRequest
}
