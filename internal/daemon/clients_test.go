package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	influxdb1 "github.com/influxdata/influxdb1-client/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The InfluxDB client libraries against a running pginflux: InfluxDB 2's
// Go client (Ping, Health, Ready, blocking and non-blocking writes with
// their retries) and InfluxDB 1.x's (Ping, Query, Write). InfluxDB 3's
// /api/v3/write_lp has no Go client without Arrow Flight; it is driven
// over plain HTTP as its documentation does.

const clientToken = "client-test-token"

// TestClientV2 drives pginflux with influxdb-client-go v2: Ping, Health
// and Ready answer as InfluxDB 2's do; a blocking write is committed when
// it returns, a bad line is an error naming it while the good lines are
// written; the non-blocking WriteAPI keeps a batch answered 429 and
// writes it on its retry.
func TestClientV2(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", clientToken, "--max-pending-rows", "1").Base
	ctx := t.Context()
	client := influxdb2.NewClientWithOptions(base, clientToken, influxdb2.DefaultOptions().
		SetPrecision(time.Second).SetBatchSize(1).SetFlushInterval(60_000).
		SetMaxRetries(5).SetRetryInterval(100).SetLogLevel(0))
	defer client.Close()

	if ok, err := client.Ping(ctx); !ok || err != nil {
		t.Errorf("Ping: got %v, %v", ok, err)
	}
	health, err := client.Health(ctx)
	if err != nil || health.Name != "pginflux" || health.Status != "pass" || health.Version == nil || *health.Version != daemontest.Version {
		t.Errorf("Health: got %+v, %v", health, err)
	} else if health.Checks == nil || len(*health.Checks) != 1 || (*health.Checks)[0].Name != "postgresql" {
		t.Errorf("Health: got checks %+v, want postgresql", health.Checks)
	}
	ready, err := client.Ready(ctx)
	if err != nil || ready.Status == nil || *ready.Status != "ready" || ready.Started == nil || ready.Up == nil {
		t.Errorf("Ready: got %+v, %v", ready, err)
	}

	blocking := client.WriteAPIBlocking("any-org", "any-bucket")
	p := influxdb2.NewPoint("v2cpu", map[string]string{"host": "a"}, map[string]any{"usage": 1.5}, time.Unix(1700000000, 0))
	if err := blocking.WritePoint(ctx, p); err != nil {
		t.Fatalf("WritePoint: %v", err)
	}
	if n := count(t, pool, schema, "v2cpu", "time = to_timestamp(1700000000) AND host = 'a' AND usage = 1.5"); n != 1 {
		t.Errorf("WritePoint: got %d rows, want the point, committed when the call returned", n)
	}
	// The retry: with --max-pending-rows 1 held by a request whose table is
	// locked, the next write is answered 429 with Retry-After; the
	// non-blocking API keeps its batch and writes it once it can.
	waitPending(t, base, 0)
	release := lockTable(t, pool, schema, "v2cpu")
	held := make(chan answer, 1)
	go func() {
		held <- post(t, nil, base+"/api/v2/write?precision=s", []byte("v2cpu,host=held usage=5 1700000004\n"), "Authorization", "Token "+clientToken)
	}()
	waitPending(t, base, 1)

	async := client.WriteAPI("any-org", "any-bucket")
	var mu sync.Mutex
	var failures []influxhttp.Error
	async.SetWriteFailedCallback(func(_ string, e influxhttp.Error, _ uint) bool {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, e)
		return true // keep the batch for a retry
	})
	point := func(i int) {
		async.WritePoint(influxdb2.NewPoint("v2retry", map[string]string{"n": string(rune('a' + i))}, map[string]any{"v": i}, time.Unix(1700000100+int64(i), 0)))
	}
	point(0) // a batch of one: sent at once
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(failures)
		mu.Unlock()
		if len(got) > 0 {
			if len(got) != 1 || got[0].StatusCode != http.StatusTooManyRequests || got[0].RetryAfter != 1 {
				t.Fatalf("while full: got failures %+v, want one 429 with Retry-After 1", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("while full: the batch was not refused within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(t, pool, schema, "v2retry", "true"); n != 0 {
		t.Fatalf("while full: got %d rows, want none", n)
	}
	release()
	select {
	case a := <-held:
		if a.code != http.StatusNoContent {
			t.Errorf("the held request: got %d %q", a.code, a.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the held request got no answer within 20s")
	}
	// The next write sends the kept batch first, once the Retry-After has
	// passed; Flush sends what is left in the retry queue.
	point(1)
	async.Flush()
	if n := count(t, pool, schema, "v2retry", "true"); n != 2 {
		t.Errorf("after the retry: got %d rows, want 2", n)
	}

	err = blocking.WriteRecord(ctx, "v2cpu,host=b usage=2 1700000001", "v2cpu,host=c usage= 1700000002", "v2cpu,host=d usage=4 1700000003")
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || he.Code != "invalid" ||
		!strings.Contains(he.Message, "partial write: unable to parse 'v2cpu,host=c usage= 1700000002' at line 2") {
		t.Errorf("a bad line: got %v, want 400 naming line 2", err)
	}
	if n := count(t, pool, schema, "v2cpu", "host IN ('b', 'd')"); n != 2 {
		t.Errorf("a bad line: got %d good rows, want 2", n)
	}

}

// waitPending polls /metrics until the sink holds want rows not yet
// committed.
func waitPending(t *testing.T, base string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, _ := daemontest.Sample(daemontest.Scrape(t, base), "pginflux_sink_pending_rows", nil); v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pginflux_sink_pending_rows is not %v after 20s", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientV1 drives pginflux with influxdb1-client: Ping reports the
// daemontest.Version; CREATE DATABASE makes a schema (--schema-from-db) that SHOW
// DATABASES then lists; a batch written into it is committed; SHOW
// MEASUREMENTS lists its measurements, not pginflux's own tables, and a
// long name whole; SHOW RETENTION POLICIES and Grafana's "Save & test"
// query answer; SELECT is an error in InfluxDB's shape.
func TestClientV1(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	db := schema + "_created"
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{db}.Sanitize()+" CASCADE")
	})
	p := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", clientToken, "--schema-from-db", "--retention", "720h", "--partition-by", "day")
	base := p.Base
	client, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: base, Username: "telegraf", Password: clientToken, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if _, v, err := client.Ping(0); err != nil || v != "pginflux-"+daemontest.Version {
		t.Errorf("Ping: got daemontest.Version %q, %v", v, err)
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

	resp, err := client.Query(influxdb1.NewQuery("SELECT * FROM v1cpu", db, ""))
	if err != nil || resp.Error() == nil || !strings.Contains(resp.Error().Error(), "query it there") {
		t.Errorf("SELECT: got %v, %v, want the error saying to query PostgreSQL", resp, err)
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

// TestClientV3WriteLP drives /api/v3/write_lp as InfluxDB 3 Core's
// documentation does: auto precision guesses each timestamp's unit;
// accept_partial=false stores nothing of a body with a bad line, the
// default stores the good lines and lists the bad; no_sync answers before
// the commit, and the rows come.
func TestClientV3WriteLP(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", clientToken).Base
	auth := []string{"Authorization", "Bearer " + clientToken}
	v3 := base + "/api/v3/write_lp?db=" + url.QueryEscape(schema)

	body := "v3auto,u=s v=1 1708976567\nv3auto,u=ms v=1 1708976567000\nv3auto,u=us v=1 1708976567000000\nv3auto,u=ns v=1 1708976567000000000\n"
	if a := post(t, nil, v3, []byte(body), auth...); a.code != http.StatusNoContent {
		t.Fatalf("auto: got %d %q", a.code, a.body)
	}
	if n := count(t, pool, schema, "v3auto", "time = to_timestamp(1708976567)"); n != 4 {
		t.Errorf("auto: got %d rows at 1708976567 s, want all 4", n)
	}

	bad := []byte("v3whole v=1 1708976567\nv3whole v= 1708976568\nv3whole v=3 1708976569\n")
	a := post(t, nil, v3+"&accept_partial=false&precision=second", bad, auth...)
	var whole struct {
		Error string `json:"error"`
		Data  struct {
			OriginalLine string `json:"original_line"`
			LineNumber   int    `json:"line_number"`
			ErrorMessage string `json:"error_message"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &whole); err != nil || a.code != http.StatusBadRequest ||
		whole.Error != "parsing failed for write_lp endpoint" || whole.Data.LineNumber != 2 || whole.Data.OriginalLine != "v3whole v= 1708976568" {
		t.Errorf("accept_partial=false: got %d %q", a.code, a.body)
	}
	if n, r := count(t, pool, schema, "v3whole", "true"), count(t, pool, schema, "pginflux_rejected", "true"); n != 0 || r != 0 {
		t.Errorf("accept_partial=false: got %d rows and %d rejected, want nothing written", n, r)
	}

	a = post(t, nil, v3+"&precision=second", bad, auth...)
	var partial struct {
		Error string `json:"error"`
		Data  []struct {
			LineNumber int `json:"line_number"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &partial); err != nil || a.code != http.StatusBadRequest ||
		partial.Error != "partial write of line protocol occurred" || len(partial.Data) != 1 || partial.Data[0].LineNumber != 2 {
		t.Errorf("accept_partial: got %d %q", a.code, a.body)
	}
	if n := count(t, pool, schema, "v3whole", "true"); n != 2 {
		t.Errorf("accept_partial: got %d rows, want 2", n)
	}
	// The rejected table's batch is committed on its own: not waited for.
	deadline := time.Now().Add(20 * time.Second)
	for count(t, pool, schema, "pginflux_rejected", "true") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("accept_partial: the bad line was not kept in the rejected table within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if a := post(t, nil, v3+"&no_sync=true&precision=millisecond", []byte("v3nosync v=1 1708976567000\n"), auth...); a.code != http.StatusNoContent {
		t.Fatalf("no_sync: got %d %q", a.code, a.body)
	}
	deadline = time.Now().Add(20 * time.Second)
	for count(t, pool, schema, "v3nosync", "time = to_timestamp(1708976567)") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no_sync: the row was not written within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := post(t, nil, v3, []byte("v3 v=1\n")); a.code != http.StatusUnauthorized {
		t.Errorf("no token: got %d %q, want 401", a.code, a.body)
	}
}

// TestClientHealthDown: with PostgreSQL unreachable, the v2 client's
// Health is an error carrying the reason (503, status "fail"), Ready too,
// while Ping still answers.
func TestClientHealthDown(t *testing.T) {
	t.Parallel()
	p := daemontest.Config{ConnString: daemontest.Unreachable}.Start(t, "unused")
	client := influxdb2.NewClient(p.Base, "")
	defer client.Close()
	if ok, err := client.Ping(t.Context()); !ok || err != nil {
		t.Errorf("Ping: got %v, %v, want true", ok, err)
	}
	if h, err := client.Health(t.Context()); err == nil || !strings.Contains(err.Error(), "postgresql: database unreachable: ") {
		t.Errorf("Health: got %+v, %v, want the reason", h, err)
	}
	if rd, err := client.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "unavailable: not ready: database unreachable: ") {
		t.Errorf("Ready: got %+v, %v, want the reason", rd, err)
	}
}
