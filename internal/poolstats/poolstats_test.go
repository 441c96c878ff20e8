package poolstats

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestCollector(t *testing.T) {
	pool, _ := pgtest.Schema(t)
	for range 3 {
		if _, err := pool.Exec(t.Context(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	c := New(pool)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 13 {
		t.Fatalf("got %d metrics (%v), want 13", n, err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if v := got["pginflux_pg_pool_acquires_total"]; v < 3 {
		t.Errorf("got pginflux_pg_pool_acquires_total %v, want at least 3", v)
	}
	if v := got["pginflux_pg_pool_idle_conns"]; v < 1 {
		t.Errorf("got pginflux_pg_pool_idle_conns %v, want at least 1", v)
	}
	if v := got["pginflux_pg_pool_acquired_conns"]; v != 0 {
		t.Errorf("got pginflux_pg_pool_acquired_conns %v, want 0", v)
	}
	if v, want := got["pginflux_pg_pool_max_conns"], float64(pool.Config().MaxConns); v != want {
		t.Errorf("got pginflux_pg_pool_max_conns %v, want %v", v, want)
	}
}
