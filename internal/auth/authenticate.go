package auth

import (
	"crypto/sha256"
	"net/http"
	"strings"
)

// Authenticate returns the credential of r. It reads credentials in the
// forms InfluxDB's clients send them, in this order, and only the first
// form that r carries:
//
//   - the query string's p, with u (InfluxDB 1.x's ?u=<user>&p=<password>),
//     when p is not empty: InfluxDB 1.x, too, looks at these first;
//   - Authorization: Token <token> or Bearer <token> (InfluxDB 2.x and 3,
//     Telegraf's influxdb_v2 output); Token <user>:<password> is also a
//     1.x user, as InfluxDB 1.8 takes it from InfluxDB 2's clients;
//   - Authorization: Basic, a user and password (InfluxDB 1.x's clients,
//     Grafana).
//
// A password is first taken as a token, since 1.x clients given a token
// send it as their password: the user name is then not looked at. Only
// then is it checked as the password of the user named.
//
// The error is ErrNoCredentials when r carries none, ErrBadCredentials
// when they match no credential, or are in no form above (an unknown
// Authorization scheme, ?u= without p=); both are answered 401. r's body
// is never read.
//
// A token costs a SHA-256 and a map lookup of the hash, so nothing of the
// token leaks through timing. A password costs a bcrypt verification
// (about 50 ms at cost 10) the first time its user and password are seen
// together: the File then remembers the pair (up to Options.CacheSize
// pairs) and concurrent requests of one pair share one verification. A
// wrong password is not remembered and costs a bcrypt each time. A user
// name that is not in the file costs nothing, so whether a user exists
// shows in the time of an answer.
//
// Safe for concurrent use.
func (f *File) Authenticate(r *http.Request) (*Credential, error) {
	q := r.URL.Query()
	if p := q.Get("p"); p != "" {
		return f.password(q.Get("u"), p)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		return f.header(r, h)
	}
	if q.Get("u") != "" {
		return nil, ErrBadCredentials
	}
	return nil, ErrNoCredentials
}

// header authenticates the Authorization header h of r.
func (f *File) header(r *http.Request, h string) (*Credential, error) {
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Token"):
		if c := f.token(rest); c != nil {
			return c, nil
		}
		if u, p, ok := strings.Cut(rest, ":"); ok {
			return f.password(u, p)
		}
	case strings.EqualFold(scheme, "Bearer"):
		if c := f.token(rest); c != nil {
			return c, nil
		}
	case strings.EqualFold(scheme, "Basic"):
		if u, p, ok := r.BasicAuth(); ok {
			return f.password(u, p)
		}
	}
	return nil, ErrBadCredentials
}

// token returns the credential of token, or nil.
func (f *File) token(token string) *Credential {
	if token == "" {
		return nil
	}
	return f.tokens[sha256.Sum256([]byte(token))]
}

// password returns the credential whose token is password, or that of
// user name if password is its password.
func (f *File) password(name, password string) (*Credential, error) {
	if password == "" {
		return nil, ErrBadCredentials
	}
	if c := f.token(password); c != nil {
		return c, nil
	}
	u, ok := f.users[name]
	if !ok {
		return nil, ErrBadCredentials
	}
	if c := f.v.verify(u, name, password); c != nil {
		return c, nil
	}
	return nil, ErrBadCredentials
}
