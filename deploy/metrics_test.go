package deploy

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/ingest/tcp"
	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/internal/poolstats"
	"github.com/pginflux/pginflux/internal/procmetrics"
	"github.com/pginflux/pginflux/sink"
)

// recorder is a prometheus.Registerer that only notes the names of what is
// registered, vectors without children included (a Gather would miss
// those).
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// knownMetrics returns the name of every metric a pginflux process
// exposes, found by building every package's metrics as main does.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := &recorder{names: map[string]bool{}}
	sink.NewMetrics(r)
	pipeline.NewMetrics(r, "udp")
	udp.NewMetrics(r)
	tcp.NewMetrics(r)
	httpapi.NewWriteMetrics(r)
	if _, err := httpapi.NewConnectionMetrics(r); err != nil {
		t.Fatal(err)
	}
	procmetrics.Register(r, "test")
	r.MustRegister(budget.New(1 << 20).Collector())

	// A pool that never connects: the collector only reads its statistics.
	pool, err := pgxpool.New(t.Context(), "host=/nonexistent-pginflux-deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	r.MustRegister(poolstats.New(pool))
	pool.Close()

	ctx, cancel := context.WithCancel(t.Context())
	l, err := udp.Listen(ctx, udp.Config{Address: "127.0.0.1:0", Readers: 1},
		func([]byte, netip.AddrPort, time.Time) {}, udp.NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kd, err := l.KernelDrops()
	cancel()
	_ = l.Run(ctx) // closes the sockets
	if err != nil {
		t.Fatal(err)
	}
	r.MustRegister(kd)

	if len(r.names) < 20 {
		t.Fatalf("found only %d metric names: %v", len(r.names), r.names)
	}
	return r.names
}

// exists reports whether a name used in a query is a known metric, or a
// histogram's series of one.
func exists(known map[string]bool, name string) bool {
	if known[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known[base] {
			return true
		}
	}
	return false
}

// metricRef finds metric names in PromQL: pginflux's and the Go and
// process collectors'.
var metricRef = regexp.MustCompile(`\b(?:pginflux|go|process)_[a-zA-Z0-9_:]+`)

// queries returns every PromQL expression of the dashboard: panel targets
// (rows included) and template variable queries.
func queries(t *testing.T, dash map[string]any) []string {
	t.Helper()
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition" || k == "query") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash["panels"])
	walk(dash["templating"])
	return out
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, k := range []string{"title", "uid", "panels", "templating", "schemaVersion"} {
		if dash[k] == nil {
			t.Errorf("the dashboard has no %s", k)
		}
	}
	known := knownMetrics(t)
	used := map[string]bool{}
	for _, q := range queries(t, dash) {
		for _, name := range metricRef.FindAllString(q, -1) {
			used[name] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok {
					used[base] = true
				}
			}
			if !exists(known, name) {
				t.Errorf("the dashboard queries %s, which pginflux does not expose (in %q)", name, q)
			}
		}
	}
	if len(used) < 20 {
		t.Errorf("the dashboard queries only %d metrics", len(used))
	}

	// Every panel but rows has a query, a unique id, and a place.
	ids := map[float64]bool{}
	panels, _ := dash["panels"].([]any)
	for _, p := range panels {
		p := p.(map[string]any)
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("panel id %v used twice", id)
		}
		ids[id] = true
		if p["gridPos"] == nil {
			t.Errorf("panel %q has no gridPos", p["title"])
		}
		if p["type"] != "row" {
			if ts, _ := p["targets"].([]any); len(ts) == 0 {
				t.Errorf("panel %q has no query", p["title"])
			}
		}
	}

	// Worth knowing, not failing for: metrics no panel shows.
	var unused []string
	for name := range known {
		if strings.HasPrefix(name, "pginflux_") && !used[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	if len(unused) > 0 {
		t.Logf("pginflux metrics on no panel: %s", strings.Join(unused, ", "))
	}
}

// TestDocsMetrics keeps docs/metrics.md the full list: every pginflux
// metric is there, and nothing else is.
func TestDocsMetrics(t *testing.T) {
	const path = "../docs/metrics.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, name := range regexp.MustCompile(`\bpginflux_[a-z0-9_]+`).FindAllString(string(b), -1) {
		documented[name] = true
	}
	known := knownMetrics(t)
	for name := range documented {
		if !exists(known, name) {
			t.Errorf("%s documents %s, which pginflux does not expose", path, name)
		}
	}
	for name := range known {
		if strings.HasPrefix(name, "pginflux_") && !documented[name] {
			t.Errorf("%s does not list %s", path, name)
		}
	}
}
