// Package auth is pginflux's credentials file (--auth-file): named
// credentials, each a token or an InfluxDB 1.x user and password, with
// the databases it may write to and query, the PostgreSQL role its rows
// are written as, and its own limit of concurrent writes. Parse or Load
// reads a file into a *File; File.Authenticate finds the credential of an
// HTTP request.
//
// # The file
//
// One credential a line; a # at the start of a line or after whitespace
// starts a comment, which runs to the end of the line; blank lines are
// ignored. Fields are separated by spaces or tabs:
//
//	NAME SECRET [key=value ...]
//
// NAME is the credential's name, unique in the file, of letters, digits,
// '_', '.' and '-'; it is what the metrics and the log show of a request.
//
// SECRET is one of:
//
//   - token:sha256:<64 hex digits>, the SHA-256 of a token (HashToken, or
//     the digits printf %s "$TOKEN" | sha256sum prints). Tokens are long
//     and random, so a fast hash is enough.
//   - user:<username>:<bcrypt hash>, an InfluxDB 1.x user (HashPassword,
//     or "user:" followed by the line htpasswd -nbBC 10 <username>
//     <password> prints). Passwords may be weak, so they are kept as
//     bcrypt ($2a$, $2b$ or $2y$) hashes. The user name may hold any
//     character but ':', whitespace and control characters.
//
// The keys, each at most once:
//
//   - write=<patterns>: the databases (1.x) or buckets (2.x, 3) it may
//     write to;
//   - query=<patterns>: those it may query;
//   - role=<role>: the PostgreSQL role its rows are written as;
//   - max-writes=<n>: at most n of its write requests at once.
//
// Patterns are comma-separated names or path.Match patterns (team_a,
// team_*, metrics_[ab]), case-sensitive; as in path.Match, a * within a
// pattern does not match '/' (team_*/* matches team_a/autogen). * alone
// is every database, and the only pattern that matches a request that
// names none. Without write= a credential writes nowhere, without query=
// it queries nothing.
//
//	# name    secret                                    rights
//	team-a    token:sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae write=team_a query=team_a role=team_a_writer
//	grafana   user:grafana:$2y$10$...                    query=*
//	telegraf  token:sha256:...                          write=telegraf_* max-writes=4
//
// Every problem in a file is reported at once, each with its line number
// (ParseError); an error never shows a field's text, so that a secret or
// a hash put in the wrong place is not copied into a log.
//
// # Requests
//
// Authenticate reads credentials in the forms InfluxDB's clients send
// them; see its documentation. A File is never changed once made: a
// reload is a new File, and the old one, with what it cached, is dropped.
package auth

import (
	"errors"
	"log/slog"
	"path"
)

// ErrNoCredentials is Authenticate's error for a request that carries no
// credentials at all.
var ErrNoCredentials = errors.New("no credentials")

// ErrBadCredentials is Authenticate's error for a request whose
// credentials match none of the file's.
var ErrBadCredentials = errors.New("credentials match none")

// Credential is one line of a credentials file, without its secret: a
// Credential holds no token, password or hash, so printing one shows
// nothing to hide. The File that made it owns it; it is read-only, and
// safe for concurrent use.
type Credential struct {
	// Name is the credential's name, unique in its file.
	Name string
	// Write and Query are the patterns of the databases or buckets the
	// credential may write to and may query (see CanWrite); nil is none.
	Write, Query []string
	// Role is the PostgreSQL role its rows are written as; "" is the
	// connection's own.
	Role string
	// MaxWrites is the most write requests of this credential at once;
	// 0 is no limit of its own.
	MaxWrites int
}

// CanWrite reports whether c may write to database or bucket db. The
// empty db, a request that names none (pginflux's default schema),
// matches only the pattern *.
func (c *Credential) CanWrite(db string) bool { return matchAny(c.Write, db) }

// CanQuery reports whether c may query database db, as CanWrite.
func (c *Credential) CanQuery(db string) bool { return matchAny(c.Query, db) }

// matchAny reports whether db matches one of patterns, which Parse has
// checked are well formed.
func matchAny(patterns []string, db string) bool {
	for _, p := range patterns {
		if p == "*" {
			return true
		}
		if db == "" {
			continue
		}
		if ok, _ := path.Match(p, db); ok {
			return true
		}
	}
	return false
}

// String returns c's name.
func (c *Credential) String() string {
	if c == nil {
		return ""
	}
	return c.Name
}

// LogValue logs c as its name alone.
func (c *Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }
