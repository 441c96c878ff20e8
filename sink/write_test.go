package sink

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCommitLostNoDuplicates: attempts that committed but whose commit
// was not confirmed (the connection broke at that instant) are retried
// without writing anything twice: tables with a point key merge the
// batch into itself, others find the attempt's commit marker.
func TestCommitLostNoDuplicates(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{WriteMerge, WriteAppend} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			bothStorages(t, func(t *testing.T, storage string) {
				// The first two commits are lost.
				var asked, lost atomic.Int32
				commitLost := func() bool {
					if asked.Add(1) <= 2 {
						lost.Add(1)
						return true
					}
					return false
				}
				pool, schema := pgtest.Schema(t)
				var g1, g2 []string
				for i := range 300 {
					g1 = append(g1, fmt.Sprintf("m,host=h%d v=%di %d", i%7, i, (i+1)*1000))
					g2 = append(g2, fmt.Sprintf("m,host=h%d v=%di %d", i%7, i+300, (i+301)*1000))
				}
				// In columns storage, a value its column cannot hold puts a
				// rejected row in the same transaction too.
				g2 = append(g2, `m,host=x v="not a number" 1`)
				m := writeBatches(t, pool, Config{Schema: schema, Storage: storage, WriteMode: mode, Seams: Seams{CommitLost: commitLost}}, g1, g2)
				if lost.Load() < 2 {
					t.Fatalf("%d commits lost, want 2", lost.Load())
				}
				var rows, distinct int
				if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT time) FROM "+pgx.Identifier{schema, "m"}.Sanitize()).Scan(&rows, &distinct); err != nil {
					t.Fatal(err)
				}
				if rows != 601 || distinct != 601 {
					t.Errorf("got %d rows (%d distinct times), want 601", rows, distinct)
				}
				if storage == StorageColumns {
					if got := dbtest.Count(t, pool, schema, "pginflux_rejected"); got != 1 {
						t.Errorf("rejected: got %d rows, want 1", got)
					}
				}
				if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropPermanentError)); got != 0 {
					t.Errorf("dropped %v rows", got)
				}
			})
		})
	}
}
