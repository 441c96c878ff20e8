package daemon_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	influxdb1 "github.com/influxdata/influxdb1-client/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Several tenants (--auth-file, docs/operations.md "Several tenants"),
// end to end: InfluxDB's client libraries with tokens and 1.x users, each
// kept to its grant; rows written as a credential's PostgreSQL role, and
// what that role may not do answered 403 without holding anyone else's
// rows; a reload that takes a credential away mid-stream; and secrets
// that never show in the log, the metrics or an answer.

// tenantSecret returns 32 random hex digits: a token or a password that
// no other text holds, so that finding it in a log means it leaked.
func tenantSecret(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// tenantUser returns the SECRET field of a 1.x user with password, as
// auth.HashPassword makes it but at bcrypt's lowest cost: the file takes
// any, and HashPassword's costs a second or more a verification under the
// race detector.
func tenantUser(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "user:" + user + ":" + string(hash)
}

// writeCredentials writes lines as the credentials file at path, whole:
// a reload never reads half of it.
func writeCredentials(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tokenHeader is the Authorization header of a token, as InfluxDB 2's
// clients send it.
func tokenHeader(token string) []string { return []string{"Authorization", "Token " + token} }

// TestTenantClients: InfluxDB's client libraries with credentials of
// --auth-file. influxdb-client-go v2 with a write-only token writes its
// bucket and gets a 403 ("forbidden") for another, and cannot query;
// influxdb1-client with a user and password writes to its databases; a
// query-only user can SHOW MEASUREMENTS and SHOW DATABASES (only its own)
// but not write; a wrong password is 401. The metrics count each
// credential's answers.
func TestTenantClients(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	_, other := pgtest.Schema(t)
	writerToken, alicePW, grafanaPW := tenantSecret(t), tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	writeCredentials(t, file,
		"# the tenants of TestTenantClients",
		"writer  "+auth.HashToken(writerToken)+" write="+schema,
		"alice   "+tenantUser(t, "alice", alicePW)+" write="+schema+","+other,
		"grafana "+tenantUser(t, "grafana", grafanaPW)+" query="+schema,
	)
	base := daemontest.Start(t, schema, "--schema-from-db", "--auth-file", file).Base
	ctx := t.Context()

	// influxdb-client-go v2, a token that may write to its bucket only.
	v2 := influxdb2.NewClientWithOptions(base, writerToken, influxdb2.DefaultOptions().
		SetLogLevel(0).SetHTTPRequestTimeout(uint(daemontest.Client.Timeout/time.Second)))
	defer v2.Close()
	if err := v2.WriteAPIBlocking("any-org", schema).WriteRecord(ctx, "tenant_v2,host=a v=1i 1700000000000000000"); err != nil {
		t.Fatalf("v2 write to its bucket: %v", err)
	}
	if n := count(t, pool, schema, "tenant_v2", "host = 'a' AND v = 1"); n != 1 {
		t.Errorf("v2 write to its bucket: got %d rows, want 1", n)
	}
	err := v2.WriteAPIBlocking("any-org", other).WriteRecord(ctx, "tenant_v2,host=b v=2i 1700000001000000000")
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden || he.Code != "forbidden" ||
		!strings.Contains(he.Message, fmt.Sprintf(`"writer" is not authorized to write to database %q`, other)) {
		t.Errorf("v2 write to another bucket: got %v, want a 403 forbidden naming the bucket", err)
	}
	if n := count(t, pool, other, "tenant_v2", ""); n != 0 {
		t.Errorf("v2 write to another bucket: got %d rows in %s, want none", n, other)
	}
	q := "/query?db=" + url.QueryEscape(schema) + "&q=" + url.QueryEscape("SHOW MEASUREMENTS")
	if a := post(t, nil, base+q, nil, tokenHeader(writerToken)...); a.code != http.StatusForbidden ||
		!strings.Contains(a.message(t), fmt.Sprintf(`"writer" is not authorized to query database %q`, schema)) {
		t.Errorf("a write-only token's query: got %d %q, want 403", a.code, a.body)
	}

	// influxdb1-client, users and passwords.
	v1 := func(user, password string) influxdb1.Client {
		t.Helper()
		c, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: base, Username: user, Password: password, Timeout: daemontest.Client.Timeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	batch := func(db, m string, v float64) influxdb1.BatchPoints {
		t.Helper()
		bp, err := influxdb1.NewBatchPoints(influxdb1.BatchPointsConfig{Database: db, Precision: "s"})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := influxdb1.NewPoint(m, map[string]string{"host": "a"}, map[string]any{"v": v}, time.Unix(1700000000+int64(v), 0))
		if err != nil {
			t.Fatal(err)
		}
		bp.AddPoint(pt)
		return bp
	}
	alice := v1("alice", alicePW)
	for _, db := range []string{schema, other} {
		if err := alice.Write(batch(db, "tenant_v1", 1)); err != nil {
			t.Fatalf("v1 write to %s: %v", db, err)
		}
		if n := count(t, pool, db, "tenant_v1", "host = 'a' AND v = 1"); n != 1 {
			t.Errorf("v1 write to %s: got %d rows, want 1", db, n)
		}
	}

	grafana := v1("grafana", grafanaPW)
	show := func(q, db string) []string {
		t.Helper()
		resp, err := grafana.Query(influxdb1.NewQuery(q, db, ""))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("%s on %q: %v", q, db, err)
		}
		var names []string
		for _, r := range resp.Results {
			for _, s := range r.Series {
				for _, v := range s.Values {
					names = append(names, v[0].(string))
				}
			}
		}
		return names
	}
	if got, want := show("SHOW MEASUREMENTS", schema), []string{"tenant_v1", "tenant_v2"}; !slices.Equal(got, want) {
		t.Errorf("SHOW MEASUREMENTS as a query-only user: got %v, want %v", got, want)
	}
	// Other tests' schemas hold pginflux's tables too, and other has
	// alice's: the user sees only its own.
	if got := show("SHOW DATABASES", ""); !slices.Equal(got, []string{schema}) {
		t.Errorf("SHOW DATABASES as a query-only user: got %v, want [%s]", got, schema)
	}
	resp, err := grafana.Query(influxdb1.NewQuery("SHOW MEASUREMENTS", other, ""))
	if err == nil {
		err = resp.Error()
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`"grafana" is not authorized to query database %q`, other)) {
		t.Errorf("SHOW MEASUREMENTS on another database: got %v, want 403", err)
	}
	// influxdb1-client's error of a write is the answer's body.
	if err := grafana.Write(batch(schema, "tenant_v1", 2)); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf(`\"grafana\" is not authorized to write to database \"%s\"`, schema)) {
		t.Errorf("a query-only user's write: got %v, want 403", err)
	}

	wrong := v1("alice", "wrong-"+alicePW)
	if err := wrong.Write(batch(schema, "tenant_v1", 3)); err == nil || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("a wrong password's write: got %v, want 401", err)
	}
	resp, err = wrong.Query(influxdb1.NewQuery("SHOW MEASUREMENTS", schema, ""))
	if err == nil {
		err = resp.Error()
	}
	if err == nil || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("a wrong password's query: got %v, want 401", err)
	}
	if a := post(t, nil, base+"/write?db="+schema+"&u=alice&p=wrong-"+alicePW, []byte("tenant_v1,host=a v=3 1700000003\n")); a.code != http.StatusUnauthorized {
		t.Errorf("a wrong password in the query string: got %d %q, want 401", a.code, a.body)
	}
	if n := count(t, pool, schema, "tenant_v1", ""); n != 1 {
		t.Errorf("after the refused writes: got %d rows, want 1", n)
	}

	mfs := daemontest.Scrape(t, base)
	for _, c := range []struct {
		cred, code string
		want       float64
	}{
		{"writer", "204", 1}, {"writer", "403", 1},
		{"alice", "204", 2},
		{"grafana", "403", 1},
	} {
		if got, _ := daemontest.Sample(mfs, "pginflux_http_credential_write_requests_total", map[string]string{"credential": c.cred, "code": c.code}); got != c.want {
			t.Errorf("write requests of %s answered %s: got %v, want %v", c.cred, c.code, got, c.want)
		}
	}
	if got, _ := daemontest.Sample(mfs, "pginflux_http_write_requests_total", map[string]string{"code": "401"}); got != 2 {
		t.Errorf("write requests answered 401: got %v, want 2", got)
	}
	if got, _ := daemontest.Sample(mfs, "pginflux_http_credential_lines_total", map[string]string{"credential": "alice", "outcome": "taken"}); got != 2 {
		t.Errorf("lines taken of alice: got %v, want 2", got)
	}
}
