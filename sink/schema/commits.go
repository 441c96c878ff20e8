package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// commitTable holds a marker of each committed batch of a table without a
// point key, for a day, so that a retry after a connection lost during
// the commit can tell whether the commit happened.
const commitTable = "pginflux_commits"

// commitKeep is how long commit markers are kept, and cleanEvery how often
// old ones are deleted.
const (
	commitKeep       = 24 * time.Hour
	commitCleanEvery = 10 * time.Minute
)

// CommitsReady makes the commit marker table, once, and deletes old
// markers every commitCleanEvery. Writers that come meanwhile wait for the
// one making it. CommitsOff says whether the table could be made.
func (c *Catalog) CommitsReady(ctx context.Context, conn *pgx.Conn) error {
	now := time.Now().UnixNano()
	if last := c.commitsCleaned.Load(); last != 0 && now-last < int64(commitCleanEvery) {
		return nil
	}
	c.commitsMu.Lock()
	defer c.commitsMu.Unlock()
	last := c.commitsCleaned.Load()
	if last != 0 && now-last < int64(commitCleanEvery) {
		return nil // another writer did it meanwhile
	}
	ident := pgx.Identifier{c.schema, commitTable}.Sanitize()
	if last != 0 {
		if _, err := conn.Exec(ctx, "DELETE FROM "+ident+" WHERE committed < now() - $1::interval", strconv.Itoa(int(commitKeep.Seconds()))+" seconds"); err != nil {
			c.log.Debug("could not delete old commit markers", "err", err)
		}
		c.commitsCleaned.Store(now)
		return nil
	}
	if err := c.Ready(ctx, conn); err != nil {
		return err
	}
	usable := false
	_, err := c.createOwn(ctx, conn, commitTable, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, commitDDL(ident))
		return err
	})
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT has_table_privilege($1, 'SELECT, INSERT')", ident).Scan(&usable)
	}
	if isInsufficientPrivilege(err) {
		err, usable = nil, false
	}
	if err != nil {
		return err
	}
	if !usable {
		c.commitsOff.Store(true)
		c.log.Warn("cannot create or use the commit marker table; without it, a batch of a table without a point key retried after a connection lost during its commit may be written twice (create it as docs/deployment.md says, Least privilege)",
			"schema", c.schema, "table", commitTable)
	}
	c.commitsCleaned.Store(now)
	return nil
}

// commitDDL makes the commit marker table.
func commitDDL(ident string) string {
	return "CREATE TABLE IF NOT EXISTS " + ident +
		" (batch bigint NOT NULL, lo int NOT NULL, hi int NOT NULL, committed timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (batch, lo, hi))"
}

// MarkCommit records, in tx, that rows lo..hi-1 of batch id are committed.
func (c *Catalog) MarkCommit(ctx context.Context, tx pgx.Tx, id int64, lo, hi int) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{c.schema, commitTable}.Sanitize()+" (batch, lo, hi) VALUES ($1, $2, $3)", id, lo, hi)
	return err
}

// CommitMarked reports whether rows lo..hi-1 of batch id were committed
// by an earlier attempt.
func (c *Catalog) CommitMarked(ctx context.Context, conn *pgx.Conn, id int64, lo, hi int) (bool, error) {
	// Looked up before CommitsReady could delete old markers.
	var done bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{c.schema, commitTable}.Sanitize()+
		" WHERE batch = $1 AND lo <= $2 AND hi >= $3)", id, lo, hi).Scan(&done)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return false, nil // no marker table: no marker
	}
	if err != nil {
		return false, fmt.Errorf("look up commit markers: %w", err)
	}
	return done, nil
}

// CommitsOff reports that the commit marker table cannot be used (see
// CommitsReady): batches then go without markers.
func (c *Catalog) CommitsOff() bool { return c.commitsOff.Load() }

// MarkerTable holds a marker of each replayed spool record (see the
// sink's spool), so that a record is replayed once.
const MarkerTable = "pginflux_spool"

// MarkersReady makes sure the schema and the spool's marker table exist.
func (c *Catalog) MarkersReady(ctx context.Context, conn *pgx.Conn) error {
	if err := c.Ready(ctx, conn); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, markerDDL(pgx.Identifier{c.schema, MarkerTable}.Sanitize()))
	return err
}

// markerDDL makes the table of replayed records.
func markerDDL(ident string) string {
	return "CREATE TABLE IF NOT EXISTS " + ident + ` (spool text NOT NULL, segment bigint NOT NULL, record bigint NOT NULL,
		lo int NOT NULL, hi int NOT NULL, replayed timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (spool, segment, record, lo, hi))`
}
