package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/pginflux/pginflux/parse"
)

// TestWriteV3Params: /api/v3/write_lp's db, precision (auto by default),
// accept_partial and no_sync reach the Writer; bad values are 400 in
// InfluxDB 3's error shape.
func TestWriteV3Params(t *testing.T) {
	s, f := writeServer(t, Config{})
	h := s.Handler()
	for _, c := range []struct {
		query      string
		want       int
		prec       parse.Precision
		whole, now bool
	}{
		{query: "db=x", want: 204, prec: parse.Auto},
		{query: "db=x&precision=auto", want: 204, prec: parse.Auto},
		{query: "db=x&precision=nanosecond", want: 204, prec: parse.Nanosecond},
		{query: "db=x&precision=microsecond", want: 204, prec: parse.Microsecond},
		{query: "db=x&precision=millisecond", want: 204, prec: parse.Millisecond},
		{query: "db=x&precision=second", want: 204, prec: parse.Second},
		{query: "db=x&precision=ms", want: 204, prec: parse.Millisecond},
		{query: "db=x&precision=u", want: 204, prec: parse.Microsecond},
		{query: "db=x&accept_partial=false", want: 204, prec: parse.Auto, whole: true},
		{query: "db=x&accept_partial=true&no_sync=true", want: 204, prec: parse.Auto, now: true},
		{query: "db=x&precision=m", want: 400},
		{query: "db=x&precision=hour", want: 400},
		{query: "db=x&no_sync=maybe", want: 400},
		{query: "db=x&accept_partial=2", want: 400},
	} {
		t.Run(c.query, func(t *testing.T) {
			resp, b := req{target: "/api/v3/write_lp?" + c.query, body: []byte("m v=1 1")}.do(t, h)
			if resp.StatusCode != c.want {
				t.Fatalf("got %s %q, want %d", resp.Status, b, c.want)
			}
			if c.want != 204 {
				var e struct {
					Error string `json:"error"`
					Data  any    `json:"data"`
				}
				if err := json.Unmarshal([]byte(b), &e); err != nil || e.Error == "" || e.Data != nil {
					t.Errorf("got %q, %v, want {\"error\": ..., \"data\": null}", b, err)
				}
				return
			}
			got := f.last(t)
			if got.DB != "x" || got.Precision != c.prec || got.AllOrNothing != c.whole || got.NoWait != c.now {
				t.Errorf("got db %q, precision %v, all or nothing %v, no wait %v", got.DB, got.Precision, got.AllOrNothing, got.NoWait)
			}
		})
	}
}

// TestWriteV3Partial: InfluxDB 3 Core's answers to a write not stored
// whole, both 400: the bad lines listed in "data" with accept_partial
// (and the rest said with line number 0), the first alone, as an object,
// without.
func TestWriteV3Partial(t *testing.T) {
	s, f := writeServer(t, Config{})
	h := s.Handler()
	listed := []BadLine{{Line: 2, Text: "m v=", Err: "syntax: x"}, {Line: 4, Text: "m v=\"a", Err: "syntax: y"}}
	type entry struct {
		OriginalLine string `json:"original_line"`
		LineNumber   int64  `json:"line_number"`
		ErrorMessage string `json:"error_message"`
	}

	f.mu.Lock()
	f.result = WriteResult{Lines: 2, BadLines: 3, Rejected: 1, Listed: listed, KeptIn: "m.rej"}
	f.mu.Unlock()
	resp, b := req{target: "/api/v3/write_lp?db=x"}.do(t, h)
	var partial struct {
		Error string  `json:"error"`
		Data  []entry `json:"data"`
	}
	if err := json.Unmarshal([]byte(b), &partial); err != nil || resp.StatusCode != 400 {
		t.Fatalf("got %s %q, %v", resp.Status, b, err)
	}
	if partial.Error != "partial write of line protocol occurred" || len(partial.Data) != 4 ||
		partial.Data[0] != (entry{"m v=", 2, "syntax: x"}) || partial.Data[1] != (entry{"m v=\"a", 4, "syntax: y"}) ||
		partial.Data[2].LineNumber != 0 || partial.Data[3].LineNumber != 0 {
		t.Errorf("got %+v", partial)
	}

	f.mu.Lock()
	f.result = WriteResult{BadLines: 2, Listed: listed}
	f.mu.Unlock()
	resp, b = req{target: "/api/v3/write_lp?db=x&accept_partial=false"}.do(t, h)
	var whole struct {
		Error string `json:"error"`
		Data  entry  `json:"data"`
	}
	if err := json.Unmarshal([]byte(b), &whole); err != nil || resp.StatusCode != 400 {
		t.Fatalf("accept_partial=false: got %s %q, %v", resp.Status, b, err)
	}
	if whole.Error != "parsing failed for write_lp endpoint" || whole.Data != (entry{"m v=", 2, "syntax: x"}) {
		t.Errorf("accept_partial=false: got %+v", whole)
	}
}
