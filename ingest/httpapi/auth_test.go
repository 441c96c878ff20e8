package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/auth"
)

// tenantFile is a credentials file of a writer, a reader and a user, with
// fast hashes.
func tenantFile(t *testing.T) *auth.File {
	t.Helper()
	user, err := auth.HashPassword("alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`
writer %s write=team_a,team_a_* role=team_a
reader %s query=team_a
alice  %s write=team_b query=team_b max-writes=1
`, auth.HashToken("w-token"), auth.HashToken("r-token"), user)
	f, err := auth.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCredentials: with --auth-file, a request without a good credential
// is 401, one writing or querying outside its grant 403 (in each API's
// dialect), one inside it goes on, its credential handed to the Writer;
// --http-token still opens everything; the metrics count by credential.
func TestCredentials(t *testing.T) {
	t.Parallel()
	f := tenantFile(t)
	reg := prometheus.NewRegistry()
	s, fw := writeServer(t, Config{Registry: reg, Token: "all", Auth: func() *auth.File { return f }})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))
	line := []byte("m v=1\n")
	for _, c := range []struct {
		name, target, authz string
		want                int
		who                 string
	}{
		{"no credential", "/write?db=team_a", "", http.StatusUnauthorized, ""},
		{"unknown token", "/write?db=team_a", "Token nope", http.StatusUnauthorized, ""},
		{"wrong password", "/write?db=team_b", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:x")), http.StatusUnauthorized, ""},
		{"writer, its database", "/write?db=team_a", "Token w-token", http.StatusNoContent, "writer"},
		{"writer, a pattern", "/api/v2/write?bucket=team_a_x", "Bearer w-token", http.StatusNoContent, "writer"},
		{"writer, another database", "/write?db=team_b", "Token w-token", http.StatusForbidden, ""},
		{"writer, v2, another bucket", "/api/v2/write?bucket=team_b", "Token w-token", http.StatusForbidden, ""},
		{"writer, no database", "/write", "Token w-token", http.StatusForbidden, ""},
		{"reader may not write", "/write?db=team_a", "Token r-token", http.StatusForbidden, ""},
		{"user, basic auth", "/write?db=team_b", basic, http.StatusNoContent, "alice"},
		{"user, u and p", "/write?db=team_b&u=alice&p=wonderland", "", http.StatusNoContent, "alice"},
		{"--http-token", "/api/v3/write_lp?db=anything", "Token all", http.StatusNoContent, "http-token"},
	} {
		resp, body := req{target: c.target, body: line, header: map[string]string{"Authorization": c.authz}}.do(t, s.Handler())
		if resp.StatusCode != c.want {
			t.Errorf("%s: got %d %q, want %d", c.name, resp.StatusCode, body, c.want)
			continue
		}
		if c.want == http.StatusForbidden && !strings.Contains(body, "is not authorized to write to") {
			t.Errorf("%s: got %q, want a message naming what may not be done", c.name, body)
		}
		if strings.HasPrefix(c.target, "/api/v2") && c.want == http.StatusForbidden && !strings.Contains(body, `"code":"forbidden"`) {
			t.Errorf("%s: got %q, want InfluxDB 2's forbidden code", c.name, body)
		}
		if c.who != "" {
			if got := fw.last(t).Credential.Name; got != c.who {
				t.Errorf("%s: the writer got credential %q, want %q", c.name, got, c.who)
			}
		}
	}
	if got := testutil.ToFloat64(s.wm.CredentialRequests.WithLabelValues("writer", "403")); got != 3 {
		t.Errorf("writer's 403s: got %v, want 3", got)
	}
	if got := testutil.ToFloat64(s.wm.CredentialLines.WithLabelValues("alice", "taken")); got != 0 {
		t.Errorf("alice's lines: got %v, want 0 (the fake writer stores none)", got)
	}
	for _, secret := range []string{"w-token", "wonderland", auth.HashToken("w-token")} {
		n, err := testutil.GatherAndCount(reg)
		if err != nil || n == 0 {
			t.Fatal(n, err)
		}
		mfs, _ := reg.Gather()
		if strings.Contains(fmt.Sprint(mfs), secret) {
			t.Errorf("a secret or its hash is in the metrics")
		}
	}
}

// TestCredentialQuery: /query needs a credential too; a credential sees in
// SHOW DATABASES only what it may write to or query, may not ask about
// another database (403), and may CREATE only a database it may write to.
func TestCredentialQuery(t *testing.T) {
	t.Parallel()
	f := tenantFile(t)
	s := newServer(t, Config{Catalog: &fakeCatalog{dbs: map[string][]string{"team_a": {"cpu"}, "team_b": {"mem"}, "other": nil}}, Writer: &fakeWriter{},
		Auth: func() *auth.File { return f }})
	for _, c := range []struct {
		name, q, authz string
		want           int
		body           string
	}{
		{"none", "SHOW DATABASES", "", http.StatusUnauthorized, "authorization failed"},
		{"reader's databases", "SHOW DATABASES", "Token r-token", http.StatusOK, `"values":[["team_a"]]`},
		{"writer's databases", "SHOW DATABASES", "Token w-token", http.StatusOK, `"values":[["team_a"]]`},
		{"reader, its measurements", "SHOW MEASUREMENTS ON team_a", "Token r-token", http.StatusOK, ""},
		{"reader, another's", "SHOW MEASUREMENTS ON team_b", "Token r-token", http.StatusForbidden, `reader\" is not authorized to query database \"team_b`},
		{"writer may not query", "SHOW MEASUREMENTS ON team_a", "Token w-token", http.StatusForbidden, "not authorized to query"},
		{"writer creates its own", "CREATE DATABASE team_a_new", "Token w-token", http.StatusOK, ""},
		{"writer creates another", "CREATE DATABASE team_b", "Token w-token", http.StatusForbidden, "not authorized to create"},
	} {
		resp, body := req{method: http.MethodGet, target: "/query?q=" + strings.ReplaceAll(c.q, " ", "+"),
			header: map[string]string{"Authorization": c.authz}}.do(t, s.Handler())
		if resp.StatusCode != c.want || !strings.Contains(body, c.body) {
			t.Errorf("%s: got %d %q, want %d with %q", c.name, resp.StatusCode, body, c.want, c.body)
		}
	}
}

// TestCredentialMaxWrites: a credential holds at most its max-writes
// requests at once; others' requests are not kept out by it.
func TestCredentialMaxWrites(t *testing.T) {
	t.Parallel()
	f := tenantFile(t)
	w := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := newServer(t, Config{Writer: w, Auth: func() *auth.File { return f }})
	basic := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))}
	first := make(chan int, 1)
	go func() {
		resp, _ := req{target: "/write?db=team_b", body: []byte("m v=1\n"), header: basic}.do(t, s.Handler())
		first <- resp.StatusCode
	}()
	<-w.entered
	resp, body := req{target: "/write?db=team_b", body: []byte("m v=1\n"), header: basic}.do(t, s.Handler())
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `alice\" has its most write requests under way`) {
		t.Errorf("alice's second request: got %d %q, want 503", resp.StatusCode, body)
	}
	close(w.release)
	resp, body = req{target: "/write?db=team_a", body: []byte("m v=1\n"), header: map[string]string{"Authorization": "Token w-token"}}.do(t, s.Handler())
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("the writer, meanwhile: got %d %q", resp.StatusCode, body)
	}
	if code := <-first; code != http.StatusNoContent {
		t.Errorf("alice's first request: got %d", code)
	}
}
