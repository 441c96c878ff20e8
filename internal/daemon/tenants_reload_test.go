package daemon_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Several tenants: reloads and secrets (see tenants_test.go).

// TestTenantReloadRevokes: credentials change while clients write. X is
// removed from the file and Z's write= moved elsewhere, then pginflux
// reloads (Daemon.Reload, what SIGHUP does): every request of X and Z
// sent after the reload is answered 401 and 403, every request answered
// 204 before it is stored exactly once, none is lost or left waiting, and
// Y, unchanged, writes all along.
func TestTenantReloadRevokes(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	tokX, tokY, tokZ := tenantSecret(t), tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	lineX := "x " + auth.HashToken(tokX) + " write=" + schema
	lineY := "y " + auth.HashToken(tokY) + " write=" + schema
	writeCredentials(t, file, lineX, lineY, "z "+auth.HashToken(tokZ)+" write="+schema)
	p := daemontest.Start(t, schema, "--auth-file", file)
	base := p.Base

	// Each client writes until it has sent afterReload requests after the
	// reload, at most maxRequests; the reload comes once each has had
	// beforeReload answered.
	const perRequest, beforeReload, afterReload, maxRequests = 5, 40, 30, 400
	var reloaded atomic.Bool
	type sent struct {
		code  int
		after bool // sent once the reload had returned
	}
	type stream struct {
		token, measurement string
		answers            []sent
		err                error
	}
	streams := []*stream{{token: tokX, measurement: "revoke_x"}, {token: tokY, measurement: "revoke_y"}, {token: tokZ, measurement: "revoke_z"}}
	var ready, wg sync.WaitGroup
	ready.Add(len(streams))
	for _, s := range streams {
		wg.Go(func() {
			readied := false
			setReady := func() {
				if !readied {
					readied = true
					ready.Done()
				}
			}
			defer setReady()
			sentAfter := 0
			for i, body := range distinctLines(s.measurement, maxRequests*perRequest, perRequest) {
				after := reloaded.Load()
				if after {
					if sentAfter == afterReload {
						break
					}
					sentAfter++
				}
				a, err := tryPost(t.Context(), nil, base+"/api/v2/write?bucket="+url.QueryEscape(schema), []byte(body), tokenHeader(s.token)...)
				if err != nil {
					s.err = fmt.Errorf("request %d: %w", i, err)
					return
				}
				s.answers = append(s.answers, sent{a.code, after})
				if i+1 == beforeReload {
					setReady()
				}
			}
		})
	}
	ready.Wait()
	writeCredentials(t, file, lineY, "z "+auth.HashToken(tokZ)+" write="+schema+"_elsewhere")
	if err := p.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloaded.Store(true)
	wg.Wait()

	for _, c := range []struct {
		s       *stream
		revoked int // the answer once revoked; 0: never
	}{{streams[0], http.StatusUnauthorized}, {streams[1], 0}, {streams[2], http.StatusForbidden}} {
		s := c.s
		if s.err != nil {
			t.Errorf("%s: %v", s.measurement, s.err)
			continue
		}
		ok, after := 0, 0
		for i, a := range s.answers {
			switch {
			case a.code == http.StatusNoContent && !(a.after && c.revoked != 0):
				ok++
			case a.code == c.revoked && c.revoked != 0:
			default:
				t.Errorf("%s: request %d (sent after the reload: %v) answered %d", s.measurement, i, a.after, a.code)
			}
			if a.after {
				after++
			}
		}
		if ok < beforeReload || after != afterReload {
			t.Errorf("%s: %d requests answered 204, %d sent after the reload; want at least %d and %d: the reload did not come mid-stream",
				s.measurement, ok, after, beforeReload, afterReload)
		}
		if c.revoked == 0 && ok != len(s.answers) {
			t.Errorf("%s: %d of %d requests answered 204, want all", s.measurement, ok, len(s.answers))
		}
		rows, distinct := countRows(t, pool, pgx.Identifier{schema, s.measurement}.Sanitize())
		if rows != ok*perRequest || distinct != rows {
			t.Errorf("%s: got %d rows (%d distinct), want %d: %d requests answered 204, %d lines each", s.measurement, rows, distinct, ok*perRequest, ok, perRequest)
		}
		name := strings.TrimPrefix(s.measurement, "revoke_")
		if got := daemontest.Metric(t, base, "pginflux_http_credential_write_requests_total", map[string]string{"credential": name, "code": "204"}); got != float64(ok) {
			t.Errorf("%s: pginflux_http_credential_write_requests_total{code=204}: got %v, want %d", name, got, ok)
		}
	}
	p.Log.WaitFor(t, `msg="credentials reread" .* credentials=2`)
}

// TestTenantSecretsNeverShown: with the log at debug, after requests
// refused 401 (wrong tokens and passwords, in every form clients send
// them), 403, writes, a bad line, a reload and a reload of a broken file
// whose secret stands where it should not, neither the log, nor
// /metrics, nor any answer (body or header) holds a token, a password,
// the basic-auth header of either, or their hashes.
func TestTenantSecretsNeverShown(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	tokA, bobPW, carolTok, daveTok := tenantSecret(t), tenantSecret(t), tenantSecret(t), tenantSecret(t)
	wrongTok, wrongPW := tenantSecret(t), tenantSecret(t)
	bob := tenantUser(t, "bob", bobPW)
	file := filepath.Join(t.TempDir(), "credentials")
	lineA := "team-a " + auth.HashToken(tokA) + " write=" + schema + " query=" + schema
	lineBob := "bob " + bob + " write=" + schema
	writeCredentials(t, file, lineA, lineBob)
	p := daemontest.Start(t, schema, "--log-level", "debug", "--auth-file", file)
	base := p.Base

	var shown strings.Builder // every answer, headers and body
	do := func(target string, want int, body string, headers ...string) {
		t.Helper()
		a := post(t, nil, base+target, []byte(body), headers...)
		fmt.Fprintf(&shown, "%d %v %s\n", a.code, a.header, a.body)
		if a.code != want {
			t.Errorf("%s %v: got %d %q, want %d", target, headers, a.code, a.body, want)
		}
	}
	db := url.QueryEscape(schema)
	line := func(i int) string {
		return fmt.Sprintf("secrets,host=h v=%di %d\n", i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	// Refused: 401.
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(0), tokenHeader(wrongTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(0), "Authorization", "Bearer "+wrongTok)
	do("/write?db="+db+"&u=bob&p="+wrongPW, http.StatusUnauthorized, line(0))
	do("/write?db="+db, http.StatusUnauthorized, line(0), "Authorization", basicAuth("bob", wrongPW))
	do("/write?db="+db, http.StatusUnauthorized, line(0), "Authorization", "Token bob:"+wrongPW)
	do("/query?q=SHOW+DATABASES&u=bob&p="+wrongPW, http.StatusUnauthorized, "")
	// Refused: 403.
	do("/api/v2/write?bucket="+db+"_other", http.StatusForbidden, line(0), tokenHeader(tokA)...)
	do("/write?db="+db+"_other&u=bob&p="+bobPW, http.StatusForbidden, line(0))
	do("/query?db="+db+"&q=SHOW+MEASUREMENTS&u=bob&p="+bobPW, http.StatusForbidden, "")
	// Taken.
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(1), tokenHeader(tokA)...)
	do("/write?db="+db+"&u=bob&p="+bobPW, http.StatusNoContent, line(2))
	do("/write?db="+db, http.StatusNoContent, line(3), "Authorization", basicAuth("bob", bobPW))
	do("/write?db="+db, http.StatusNoContent, line(4), "Authorization", "Token bob:"+bobPW)
	do("/write?db="+db+"&u=anyone&p="+tokA, http.StatusNoContent, line(5))
	do("/write?db="+db, http.StatusBadRequest, "secrets,host=h v=\n", tokenHeader(tokA)...)
	do("/query?db="+db+"&q=SHOW+MEASUREMENTS", http.StatusOK, "", tokenHeader(tokA)...)

	// A reload that adds a credential, then one of a broken file, with a
	// token where a right should be and a hash where a name should be.
	writeCredentials(t, file, lineA, lineBob, "carol "+auth.HashToken(carolTok)+" write="+schema)
	if err := p.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(6), tokenHeader(carolTok)...)
	writeCredentials(t, file, lineA, "dave "+auth.HashToken(daveTok)+" "+daveTok, auth.HashToken(daveTok)+" "+bob)
	if err := p.Reload(); err != nil {
		fmt.Fprintln(&shown, err) // Reload's error is no secret either
	}
	// Each problem named by its line, none by its text.
	p.Log.WaitFor(t, `cannot reread --auth-file.*credentials:2: .*credentials:3: `)
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(7), tokenHeader(carolTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(7), tokenHeader(daveTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(7), "Authorization", "Token "+wrongTok)

	for _, target := range []string{"/metrics", "/health", "/readyz", "/ping?verbose=true"} {
		resp, body := daemontest.Get(t, http.MethodGet, base+target)
		fmt.Fprintf(&shown, "%s %v %s\n", resp.Status, resp.Header, body)
	}
	logs := p.Log.String()
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "credentials read") {
		t.Fatalf("the log has no debug lines, or does not say the credentials were read:\n%s", logs)
	}
	secrets := map[string]string{}
	for name, s := range map[string]string{"team A's token": tokA, "carol's token": carolTok, "dave's token": daveTok, "a wrong token": wrongTok} {
		h := auth.HashToken(s)
		secrets[name] = s
		secrets[name+"'s hash"] = h[strings.LastIndex(h, ":")+1:]
	}
	for name, pw := range map[string]string{"bob's password": bobPW, "a wrong password": wrongPW} {
		secrets[name] = pw
		secrets[name+" in basic auth"] = strings.TrimPrefix(basicAuth("bob", pw), "Basic ")
		secrets[name+" in base64"] = base64.StdEncoding.EncodeToString([]byte(pw))
	}
	secrets["bob's bcrypt hash"] = bob[strings.Index(bob, "$"):]
	secrets["bob's bcrypt salt and hash"] = bob[len(bob)-53:]
	for name, s := range secrets {
		for where, text := range map[string]string{"the log": logs, "the answers and /metrics": shown.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}
}
