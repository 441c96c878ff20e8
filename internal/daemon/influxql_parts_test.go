package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestInfluxQLLongSeries: a series of more points than pginflux holds at
// once is answered in parts that read as one series: whole and in
// order, its LIMIT and OFFSET counted across the parts, and in chunks
// with chunked=true, each but the last partial.
func TestInfluxQLLongSeries(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema).Base
	const n = 25000 // two and a half parts
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("m,host=a v=%di %d", i, 1700000000+i)
	}
	writeLines(t, base+"/write?db=x&precision=s", http.StatusNoContent, lines...)

	check := func(q string, first, count int) {
		t.Helper()
		code, qa := influxQL(t, base, "x", q)
		if code != http.StatusOK || len(qa.Results) != 1 || len(qa.Results[0].Series) != 1 {
			t.Fatalf("%s: got %d, %d results", q, code, len(qa.Results))
		}
		vals := qa.Results[0].Series[0].Values
		if len(vals) != count {
			t.Fatalf("%s: got %d points, want %d", q, len(vals), count)
		}
		for i, v := range vals {
			if v[1] != float64(first+i) {
				t.Fatalf("%s: point %d is %v, want %d", q, i, v[1], first+i)
			}
		}
	}
	check(`SELECT v FROM m`, 0, n)
	check(`SELECT v FROM m GROUP BY host LIMIT 3 OFFSET 19999`, 19999, 3)
	check(`SELECT v FROM m GROUP BY host LIMIT 12000 OFFSET 9000`, 9000, 12000)

	resp, err := http.Get(base + "/query?" + url.Values{"db": {"x"}, "q": {"SELECT v FROM m"}, "chunked": {"true"}, "chunk_size": {"7000"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sizes []int
	var partial []bool
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var chunk struct {
			Results []struct {
				Series []struct {
					Values  [][]any
					Partial bool
				}
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &chunk); err != nil || len(chunk.Results) != 1 || len(chunk.Results[0].Series) != 1 {
			t.Fatalf("chunk %q: %v", sc.Text(), err)
		}
		s := chunk.Results[0].Series[0]
		sizes, partial = append(sizes, len(s.Values)), append(partial, s.Partial)
	}
	total := 0
	for i, sz := range sizes {
		total += sz
		if sz > 7000 || partial[i] != (i < len(sizes)-1) {
			t.Errorf("chunk %d: %d points, partial %v (of %d chunks)", i, sz, partial[i], len(sizes))
		}
	}
	if total != n {
		t.Errorf("chunked: got %d points in %v, want %d", total, sizes, n)
	}
}
