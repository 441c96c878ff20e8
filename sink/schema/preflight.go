package schema

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrRefused says the server refuses pginflux's configuration outright: a
// wrong password, a role or database that does not exist, a privilege
// missing. Waiting does not help, unlike a server that cannot be reached.
var ErrRefused = errors.New("the database refuses pginflux's configuration")

// refusals are the SQLSTATEs of a refused connection, with what to tell
// the user.
var refusals = map[string]string{
	"28P01": "password authentication failed: check the password of --database-url (or PGPASSWORD, ~/.pgpass)",
	"28000": "the role may not connect (it does not exist, or pg_hba.conf has no entry for it)",
	"3D000": "the database does not exist: create it, or name another in --database-url",
	"42501": "the role lacks the CONNECT privilege on the database",
}

// Refusal returns an error wrapping ErrRefused that names the problem when
// err (from connecting or from Preflight) is the server refusing
// pginflux's configuration, and nil otherwise: for no error, and for a
// server that cannot be reached or is starting, which is waited for. Its
// text has the server's message and never the password, which no server
// message holds.
func Refusal(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrRefused) {
		return err
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	what, ok := refusals[pgErr.Code]
	if !ok {
		return nil
	}
	return fmt.Errorf("%w: %s (SQLSTATE %s: %s)", ErrRefused, what, pgErr.Code, pgErr.Message)
}

// Preflight checks, on one connection of pool, that pginflux can work in
// schema: that the role has USAGE on it, or, when it does not exist yet,
// CREATE on the database to make it. It returns an error wrapping
// ErrRefused when it cannot (see Refusal), or the error of connecting
// when the server cannot be reached; ctx bounds it.
func Preflight(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		if r := Refusal(err); r != nil {
			return r
		}
		return err
	}
	defer conn.Release()
	var role string
	var exists, usage, create bool
	err = conn.QueryRow(ctx, `SELECT current_user, n.oid IS NOT NULL,
			n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE'),
			has_database_privilege(current_database(), 'CREATE')
		FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1`, schema).Scan(&role, &exists, &usage, &create)
	if err != nil {
		return fmt.Errorf("check the privileges of the database role: %w", err)
	}
	switch {
	case exists && !usage:
		return fmt.Errorf("%w: role %s has no USAGE privilege on schema %s: GRANT USAGE, CREATE ON SCHEMA %s TO %s",
			ErrRefused, role, schema, quoteIdent(schema), quoteIdent(role))
	case !exists && !create:
		return fmt.Errorf("%w: schema %s does not exist, and role %s may not create it (no CREATE privilege on the database): create it, then GRANT USAGE, CREATE ON SCHEMA %s TO %s",
			ErrRefused, schema, role, quoteIdent(schema), quoteIdent(role))
	}
	return nil
}

// quoteIdent quotes an identifier for the SQL a message suggests.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }
