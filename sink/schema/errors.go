package schema

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsTemporary reports whether err is one a retry is expected to fix soon
// (the server restarting, a lost connection), as opposed to one that needs
// someone to act (a privilege, a read-only database).
func IsTemporary(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "53400" {
			return false // a setting of the server's: someone must change it
		}
		switch pgErr.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	return true
}

// isInsufficientPrivilege reports SQLSTATE 42501.
func isInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// isInternal reports SQLSTATE class XX, an internal error: how Citus
// reports an error a worker raised, a worker gone included.
func isInternal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "XX"
}
