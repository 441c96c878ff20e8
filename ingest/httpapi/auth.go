package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pginflux/pginflux/internal/auth"
)

// Who may write and query: with an --auth-file, the credential a request
// carries, with the databases it may write to and query; with
// --http-token, that token, which may do everything; with neither, anyone.

// The credentials that are not in a file.
var (
	// anyone: no --auth-file, no --http-token.
	anyone = &auth.Credential{Write: []string{"*"}, Query: []string{"*"}}
	// tokenHolder: whoever gives --http-token.
	tokenHolder = &auth.Credential{Name: "http-token", Write: []string{"*"}, Query: []string{"*"}}
)

// credential returns the credential r carries, or false when it carries
// none that is good (answered 401).
func (s *Server) credential(r *http.Request) (*auth.Credential, bool) {
	var f *auth.File
	if s.cfg.Auth != nil {
		f = s.cfg.Auth()
	}
	if f == nil && s.cfg.Token == "" {
		return anyone, true
	}
	if s.cfg.Token != "" && s.tokenGiven(r) {
		return tokenHolder, true
	}
	if f != nil {
		if c, err := f.Authenticate(r); err == nil {
			return c, true
		}
	}
	return nil, false
}

// unauthorized is the message of a 401.
func (s *Server) unauthorized() string {
	if s.cfg.Auth != nil {
		return "authorization failed: give a token or a user and password of --auth-file"
	}
	return "authorization failed: give the token of --http-token"
}

// forbidden is the message of a 403, as InfluxDB 1.x words it.
func forbidden(c *auth.Credential, verb, db string) string {
	if db == "" {
		return fmt.Sprintf("%q is not authorized to %s without naming a database", c.Name, verb)
	}
	return fmt.Sprintf("%q is not authorized to %s database %q", c.Name, verb, db)
}

// tokenGiven reports whether r carries the token of Config.Token, in any
// of the forms InfluxDB clients send it: "Authorization: Token <t>" (2.x
// and Telegraf's influxdb_v2 output), "Authorization: Bearer <t>", basic
// auth with <t> as the password (1.x clients with a username and
// password), or ?p=<t> (1.x). The user name is not looked at. Tokens are
// compared in constant time, through their SHA-256, so that neither their
// bytes nor their length leak through timing.
func (s *Server) tokenGiven(r *http.Request) bool {
	ok := false
	check := func(given string) {
		if given == "" {
			return
		}
		h := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1 {
			ok = true
		}
	}
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, cred, _ := strings.Cut(a, " ")
		switch {
		case strings.EqualFold(scheme, "Token"), strings.EqualFold(scheme, "Bearer"):
			check(strings.TrimSpace(cred))
		case strings.EqualFold(scheme, "Basic"):
			if _, pw, found := r.BasicAuth(); found {
				check(pw)
			}
		}
	}
	check(r.URL.Query().Get("p"))
	return ok
}

// credentialWrites counts the write requests of each credential under
// way, by name, so that one credential's requests cannot take every slot
// of --http-max-writes: each may hold its max-writes, or half the slots.
type credentialWrites struct {
	mu sync.Mutex
	n  map[string]*atomic.Int64
}

// take takes a slot of c's, or reports false.
func (cw *credentialWrites) take(c *auth.Credential, maxWrites int) bool {
	if c == anyone || c == tokenHolder {
		return true
	}
	limit := int64(max(maxWrites/2, 1))
	if c.MaxWrites > 0 {
		limit = int64(c.MaxWrites)
	}
	cw.mu.Lock()
	if cw.n == nil {
		cw.n = make(map[string]*atomic.Int64)
	}
	n := cw.n[c.Name]
	if n == nil {
		n = new(atomic.Int64)
		cw.n[c.Name] = n
	}
	cw.mu.Unlock()
	if n.Add(1) > limit {
		n.Add(-1)
		return false
	}
	return true
}

// give gives back a slot taken for c.
func (cw *credentialWrites) give(c *auth.Credential) {
	if c == anyone || c == tokenHolder {
		return
	}
	cw.mu.Lock()
	n := cw.n[c.Name]
	cw.mu.Unlock()
	n.Add(-1)
}

// credentialKey keys a request's credential in its context, for the log.
type credentialKey struct{}

// withCredential returns r carrying c, whose name the log lines of its
// answer show.
func withCredential(r *http.Request, c *auth.Credential) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), credentialKey{}, c))
}

// credentialName is the name of the credential r carries, "" for none
// (or anyone's).
func credentialName(r *http.Request) string {
	if c, ok := r.Context().Value(credentialKey{}).(*auth.Credential); ok {
		return c.Name
	}
	return ""
}
