package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	influxdb1 "github.com/influxdata/influxdb1-client/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// /query: what Telegraf, InfluxDB 1.x's client library and Grafana ask
// (CREATE DATABASE, SHOW DATABASES, SHOW MEASUREMENTS, SHOW RETENTION
// POLICIES), and SELECT refused.

// TestQueryEndpoint: CREATE DATABASE, which Telegraf's influxdb output
// sends at startup, is a no-op answered as InfluxDB does; a SELECT of a
// measurement without a table answers no series; what would write is
// refused in the statement's result.
func TestQueryEndpoint(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h").Base
	form := url.Values{"q": {`CREATE DATABASE "telegraf"`}}.Encode()
	a := post(t, nil, base+"/query", []byte(form), "Content-Type", "application/x-www-form-urlencoded")
	if a.code != http.StatusOK || a.body != `{"results":[{"statement_id":0}]}`+"\n" {
		t.Errorf("CREATE DATABASE: got %d %q", a.code, a.body)
	}
	resp, body := daemontest.Get(t, http.MethodGet, base+"/query?q="+url.QueryEscape("SELECT * FROM cpu"))
	if resp.StatusCode != http.StatusOK || body != `{"results":[{"statement_id":0}]}`+"\n" {
		t.Errorf("SELECT from no table: got %s %q, want no series", resp.Status, body)
	}
	resp, body = daemontest.Get(t, http.MethodGet, base+"/query?q="+url.QueryEscape("DROP SERIES FROM cpu"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"error":"DROP SERIES is not supported by pginflux: /query only reads`) {
		t.Errorf("DROP SERIES: got %s %q, want refused", resp.Status, body)
	}
}

// TestClientV1 drives pginflux with influxdb1-client: Ping reports the
// version; CREATE DATABASE makes a schema (--schema-from-db) that SHOW
// DATABASES then lists; a batch written into it is committed; SHOW
// MEASUREMENTS lists its measurements, not pginflux's own tables, and a
// long name whole; SHOW RETENTION POLICIES and Grafana's "Save & test"
// query answer; SELECT is an error in InfluxDB's shape.
func TestClientV1(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	db := schema + "_created"
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{db}.Sanitize()+" CASCADE")
	})
	p := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", clientToken, "--schema-from-db", "--retention", "720h", "--partition-by", "day")
	base := p.Base
	client, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: base, Username: "telegraf", Password: clientToken, Timeout: daemontest.Client.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if _, v, err := client.Ping(0); err != nil || v != "pginflux-"+daemontest.Version {
		t.Errorf("Ping: got version %q, %v", v, err)
	}
	query := func(q, on string) [][]any {
		t.Helper()
		resp, err := client.Query(influxdb1.NewQuery(q, on, ""))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(resp.Results) != 1 {
			t.Fatalf("%s: got %d results, want 1", q, len(resp.Results))
		}
		var rows [][]any
		for _, s := range resp.Results[0].Series {
			rows = append(rows, s.Values...)
		}
		return rows
	}
	names := func(rows [][]any) []string {
		var n []string
		for _, r := range rows {
			n = append(n, r[0].(string))
		}
		return n
	}

	query(`CREATE DATABASE "`+db+`"`, "")
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", db).Scan(&exists); err != nil || !exists {
		t.Fatalf("CREATE DATABASE: schema %s exists: %v, %v", db, exists, err)
	}
	if got := names(query("SHOW DATABASES", "")); !slices.Contains(got, db) || !slices.Contains(got, schema) {
		t.Errorf("SHOW DATABASES: got %v, want %s and %s among them", got, db, schema)
	}

	long := "v1_" + strings.Repeat("long", 20)
	bp, err := influxdb1.NewBatchPoints(influxdb1.BatchPointsConfig{Database: db, Precision: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"v1cpu", "v1mem", long} {
		pt, err := influxdb1.NewPoint(m, map[string]string{"host": "a"}, map[string]any{"v": float64(i)}, time.Unix(time.Now().Unix()-int64(i), 0))
		if err != nil {
			t.Fatal(err)
		}
		bp.AddPoint(pt)
	}
	if err := client.Write(bp); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n := count(t, pool, db, "v1cpu", "host = 'a'"); n != 1 {
		t.Errorf("Write: got %d rows in %s.v1cpu, want 1", n, db)
	}
	// A bad line makes the rejected table: it is no measurement.
	if a := post(t, nil, base+"/write?db="+url.QueryEscape(db)+"&u=x&p="+clientToken, []byte("v1cpu v=\n")); a.code != http.StatusBadRequest {
		t.Errorf("a bad line: got %d %q", a.code, a.body)
	}
	want := []string{"v1cpu", long, "v1mem"}
	slices.Sort(want)
	if got := names(query("SHOW MEASUREMENTS", db)); !slices.Equal(got, want) {
		t.Errorf("SHOW MEASUREMENTS: got %v, want %v", got, want)
	}
	if got := names(query(`SHOW MEASUREMENTS ON "`+db+`" WITH MEASUREMENT =~ /^v1[cm]/ LIMIT 1`, "")); !slices.Equal(got, []string{"v1cpu"}) {
		t.Errorf("SHOW MEASUREMENTS WITH MEASUREMENT: got %v, want [v1cpu]", got)
	}
	rp := query(`SHOW RETENTION POLICIES ON "`+db+`"`, "")
	if len(rp) != 1 || rp[0][0] != "autogen" || rp[0][1] != "720h0m0s" || rp[0][2] != "24h0m0s" || rp[0][4] != true {
		t.Errorf("SHOW RETENTION POLICIES: got %v", rp)
	}

	// SELECT, read back through the client: raw, and an aggregate by host
	// in chunks, the measurements in name order (v1_long... first).
	sel := query("SELECT * FROM v1cpu", db)
	if len(sel) != 1 || len(sel[0]) != 3 || sel[0][1] != "a" || sel[0][2] != json.Number("0") {
		t.Errorf("SELECT *: got %v, want one row: time, host a, v 0", sel)
	}
	q := influxdb1.NewQuery(`SELECT count("v"), last("v") FROM /^v1/ WHERE time > now() - 1h GROUP BY "host"`, db, "s")
	q.Chunked, q.ChunkSize = true, 1
	resp, err := client.Query(q)
	// The client makes a result of each chunk: one series each here.
	var chunks []influxdb1.Result
	if err == nil && resp.Error() == nil {
		chunks = resp.Results
	}
	if len(chunks) != 3 {
		t.Fatalf("SELECT count, last, chunked: got %+v, %v, want 3 chunks", resp, err)
	}
	for i, c := range chunks {
		if len(c.Series) != 1 {
			t.Fatalf("chunk %d: got %+v, want one series", i, c)
		}
		s := c.Series[0]
		if s.Tags["host"] != "a" || len(s.Values) != 1 || s.Values[0][1] != json.Number("1") || s.Values[0][2] != json.Number(strconv.Itoa([]int{2, 0, 1}[i])) {
			t.Errorf("SELECT count, last: series %d: got %+v", i, s)
		}
	}
	if resp, err := client.Query(influxdb1.NewQuery("DROP MEASUREMENT v1cpu", db, "")); err != nil || resp.Error() == nil || !strings.Contains(resp.Error().Error(), "only reads") {
		t.Errorf("DROP MEASUREMENT: got %v, %v, want refused", resp, err)
	}
	if resp, err := client.Query(influxdb1.NewQuery("SHOW MEASUREMENTS", "no_such_db", "")); err != nil || resp.Error() == nil || resp.Error().Error() != "database not found: no_such_db" {
		t.Errorf("SHOW MEASUREMENTS of no database: got %v, %v", resp, err)
	}

	// Grafana's InfluxQL "Save & test": GET /query?db=...&q=SHOW measurements
	// with basic auth; it counts the values of the first series.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/query?"+url.Values{"db": {db}, "q": {"SHOW measurements"}, "epoch": {"ms"}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("grafana", clientToken)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	var grafana struct {
		Results []struct {
			Series []struct {
				Name   string  `json:"name"`
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.NewDecoder(hr.Body).Decode(&grafana); err != nil || hr.StatusCode != 200 || len(grafana.Results) != 1 ||
		len(grafana.Results[0].Series) != 1 || grafana.Results[0].Series[0].Name != "measurements" || len(grafana.Results[0].Series[0].Values) != 3 {
		t.Errorf("Grafana's test: got %d %+v, %v, want 3 measurements", hr.StatusCode, grafana, err)
	}
	p.Stop(t)
}
