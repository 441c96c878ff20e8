package daemon_test

import (
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
	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The InfluxDB client libraries against a running pginflux: InfluxDB 2's
// Go client (Ping, Health, Ready, blocking and non-blocking writes with
// their retries; InfluxDB 1.x's is http_query_test.go's). InfluxDB 3's
// /api/v3/write_lp has no Go client without Arrow Flight; it is driven
// over plain HTTP as its documentation does.

// clientToken is the token of the client tests' daemons.
const clientToken = "client-test-token"

// TestClientV2 drives pginflux with influxdb-client-go v2: Ping, Health
// and Ready answer as InfluxDB 2's do; a blocking write is committed when
// it returns, a bad line is an error naming it while the good lines are
// written; the non-blocking WriteAPI keeps a batch answered 429 and
// writes it on its retry.
func TestClientV2(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", clientToken, "--max-pending-rows", "1").Base
	ctx := t.Context()
	client := influxdb2.NewClientWithOptions(base, clientToken, influxdb2.DefaultOptions().
		SetPrecision(time.Second).SetBatchSize(1).SetFlushInterval(60_000).
		SetMaxRetries(5).SetRetryInterval(100).SetLogLevel(0).
		SetHTTPRequestTimeout(uint(daemontest.Client.Timeout/time.Second)))
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
	daemontest.WaitMetricIs(t, base, "pginflux_sink_pending_rows", nil, 0)
	release := lockTable(t, pool, schema, "v2cpu")
	held := make(chan answer, 1)
	go func() {
		a, _ := tryPost(t.Context(), nil, base+"/api/v2/write?precision=s", []byte("v2cpu,host=held usage=5 1700000004\n"), "Authorization", "Token "+clientToken)
		held <- a
	}()
	daemontest.WaitMetricIs(t, base, "pginflux_sink_pending_rows", nil, 1)

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
	deadline := time.Now().Add(daemontest.Patience)
	var poll daemontest.Poller
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
			t.Fatalf("while full: the batch was not refused within %v", daemontest.Patience)
		}
		poll.Sleep()
	}
	if n := count(t, pool, schema, "v2retry", ""); n != 0 {
		t.Fatalf("while full: got %d rows, want none", n)
	}
	release()
	select {
	case a := <-held:
		if a.code != http.StatusNoContent {
			t.Errorf("the held request: got %d %q", a.code, a.body)
		}
	case <-time.After(daemontest.Patience):
		t.Fatalf("the held request got no answer within %v", daemontest.Patience)
	}
	// The next write sends the kept batch first, once the Retry-After has
	// passed; Flush sends what is left in the retry queue.
	point(1)
	async.Flush()
	// Flush may return while the client's writer still sends the new
	// batch (its retry queue is flushed beside it): wait for both.
	pollRows(t, pool, "SELECT count(*)::text FROM "+pgx.Identifier{schema, "v2retry"}.Sanitize(), "2")

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

// TestClientV3WriteLP drives /api/v3/write_lp as InfluxDB 3 Core's
// documentation does: auto precision guesses each timestamp's unit;
// accept_partial=false stores nothing of a body with a bad line, the
// default stores the good lines and lists the bad; no_sync answers before
// the commit, and the rows come.
func TestClientV3WriteLP(t *testing.T) {
	t.Parallel()
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
	if n, r := count(t, pool, schema, "v3whole", ""), count(t, pool, schema, "pginflux_rejected", ""); n != 0 || r != 0 {
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
	if n := count(t, pool, schema, "v3whole", ""); n != 2 {
		t.Errorf("accept_partial: got %d rows, want 2", n)
	}
	// The rejected table's batch is committed on its own: not waited for.
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "pginflux_rejected"}.Sanitize(), 1)

	if a := post(t, nil, v3+"&no_sync=true&precision=millisecond", []byte("v3nosync v=1 1708976567000\n"), auth...); a.code != http.StatusNoContent {
		t.Fatalf("no_sync: got %d %q", a.code, a.body)
	}
	pollRows(t, pool, "SELECT count(*)::text FROM "+pgx.Identifier{schema, "v3nosync"}.Sanitize()+" WHERE time = to_timestamp(1708976567)", "1")
	if a := post(t, nil, v3, []byte("v3 v=1\n")); a.code != http.StatusUnauthorized {
		t.Errorf("no token: got %d %q, want 401", a.code, a.body)
	}
}
