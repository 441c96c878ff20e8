// Package poolstats exposes a pgxpool.Pool's statistics as Prometheus
// metrics, read from pool.Stat() on every scrape.
package poolstats

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector for one pool. Safe for concurrent
// use, like the pool; it may be collected after the pool was closed (the
// gauges then read zero, the counters keep their totals).
type Collector struct {
	pool *pgxpool.Pool

	acquired, idle, constructing, total, max *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires  *prometheus.Desc
	emptyAcquireWaitSeconds, canceled        *prometheus.Desc
	newConns, lifetimeClosed, idleClosed     *prometheus.Desc
}

// New returns a Collector for pool; register it with the process's
// registry.
func New(pool *pgxpool.Pool) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pginflux_pg_pool_"+name, help, nil, nil)
	}
	return &Collector{
		pool:                    pool,
		acquired:                d("acquired_conns", "Connections of the PostgreSQL pool in use."),
		idle:                    d("idle_conns", "Idle connections of the PostgreSQL pool."),
		constructing:            d("constructing_conns", "Connections of the PostgreSQL pool being opened."),
		total:                   d("total_conns", "Connections of the PostgreSQL pool: acquired, idle and being opened."),
		max:                     d("max_conns", "Most connections the PostgreSQL pool may hold."),
		acquires:                d("acquires_total", "Connections taken from the PostgreSQL pool."),
		acquireSeconds:          d("acquire_duration_seconds_total", "Time spent taking connections from the PostgreSQL pool."),
		emptyAcquires:           d("empty_acquires_total", "Connections taken from the PostgreSQL pool that had to wait for one (none was idle)."),
		emptyAcquireWaitSeconds: d("empty_acquire_wait_seconds_total", "Time spent waiting for a connection when none was idle."),
		canceled:                d("canceled_acquires_total", "Attempts to take a connection from the PostgreSQL pool given up because their context ended."),
		newConns:                d("new_conns_total", "Connections the PostgreSQL pool opened."),
		lifetimeClosed:          d("max_lifetime_closed_conns_total", "Connections the PostgreSQL pool closed for reaching their maximum lifetime."),
		idleClosed:              d("max_idle_closed_conns_total", "Connections the PostgreSQL pool closed for being idle too long."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.acquired, c.idle, c.constructing, c.total, c.max,
		c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyAcquireWaitSeconds, c.canceled,
		c.newConns, c.lifetimeClosed, c.idleClosed,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v int32) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.constructing, s.ConstructingConns())
	gauge(c.total, s.TotalConns())
	gauge(c.max, s.MaxConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyAcquireWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceled, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.lifetimeClosed, float64(s.MaxLifetimeDestroyCount()))
	counter(c.idleClosed, float64(s.MaxIdleDestroyCount()))
}
