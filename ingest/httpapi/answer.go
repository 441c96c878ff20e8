package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// How the write endpoints, /query and /ready say what went wrong, each in
// its InfluxDB API's dialect.

// partialWrite words the answer to a request that was not stored whole,
// with "partial write" and "unable to parse" where InfluxDB says them:
// clients look for those words to decide not to send the batch again. As
// InfluxDB 1.x and 2.x do, it names every bad line listed, one a line.
func partialWrite(res WriteResult) string {
	kept := "not kept: --rejected-table is empty"
	if res.KeptIn != "" {
		kept = "kept in " + res.KeptIn
	}
	var b strings.Builder
	if res.Lines > 0 {
		b.WriteString("partial write: ")
	}
	if res.BadLines > 0 {
		for i, l := range res.Listed {
			if i > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "unable to parse '%s' at line %d: %s", l.Text, l.Line, l.Err)
		}
		if more := res.BadLines - len(res.Listed); more > 0 {
			fmt.Fprintf(&b, "\n(and %d more)", more)
		}
		fmt.Fprintf(&b, "; %d of %d lines rejected (%s)", res.BadLines, res.BadLines+res.Lines, kept)
		if res.Rejected > 0 {
			b.WriteString("; ")
		}
	}
	if res.Rejected > 0 {
		fmt.Fprintf(&b, "%d rows written with values their columns cannot hold (type conflicts), or refused whole by PostgreSQL; those values and rows are %s", res.Rejected, kept)
	}
	return b.String()
}

// failWith answers with the status a Writer's error calls for.
func (s *Server) failWith(w http.ResponseWriter, r *http.Request, v api, err error) int {
	switch {
	case errors.Is(err, ErrFull):
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", retryFull)
		}
		if v == apiV1 {
			return s.fail(w, r, v, http.StatusServiceUnavailable, err.Error())
		}
		return s.fail(w, r, v, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", retryUnavailable)
		return s.fail(w, r, v, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrInvalid):
		return s.fail(w, r, v, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrForbidden):
		return s.fail(w, r, v, http.StatusForbidden, err.Error())
	}
	return s.fail(w, r, v, http.StatusInternalServerError, err.Error())
}

// v2Codes are InfluxDB 2's error codes for the statuses pginflux answers.
var v2Codes = map[int]string{
	http.StatusBadRequest:            "invalid",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusRequestTimeout:        "request timeout",
	http.StatusRequestEntityTooLarge: "request too large",
	http.StatusUnsupportedMediaType:  "unsupported media type",
	http.StatusTooManyRequests:       "too many requests",
	http.StatusInternalServerError:   "internal error",
	http.StatusNotImplemented:        "not implemented",
	http.StatusServiceUnavailable:    "unavailable",
}

// fail answers with an error in the endpoint's dialect and returns code.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, v api, code int, msg string) int {
	return s.failLine(w, r, v, code, msg, nil)
}

// failLine is fail naming, in v2's "line", the first of the bad lines
// listed.
func (s *Server) failLine(w http.ResponseWriter, r *http.Request, v api, code int, msg string, listed []BadLine) int {
	s.log.Debug("http request refused", "path", r.URL.Path, "code", code, "request_id", requestID(r), "credential", credentialName(r), "err", msg)
	var body any
	switch v {
	case apiV2:
		c := v2Codes[code]
		w.Header().Set("X-Platform-Error-Code", c)
		e := struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Line    int64  `json:"line,omitempty"`
		}{Code: c, Message: msg}
		if len(listed) > 0 {
			e.Line = listed[0].Line
		}
		body = e
	case apiV3:
		body = struct {
			Error string `json:"error"`
			Data  any    `json:"data"`
		}{msg, nil}
	default:
		// InfluxDB 1.x repeats the error in a header.
		w.Header().Set("X-Influxdb-Error", headerSafe(msg))
		body = struct {
			Error string `json:"error"`
		}{msg}
	}
	writeJSON(w, r, code, body)
	return code
}

// headerSafe makes msg a valid header value: no control bytes, bounded.
func headerSafe(msg string) string {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
}
