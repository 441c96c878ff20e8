package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeInfluxDB answers /ping, /write and /query as InfluxDB 1.8 does,
// and keeps what was written.
type fakeInfluxDB struct {
	mu     sync.Mutex
	writes []string
	dbs    []string
}

func (f *fakeInfluxDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/ping":
		w.WriteHeader(http.StatusNoContent)
	case "/write":
		b, _ := io.ReadAll(r.Body)
		f.writes = append(f.writes, string(b))
		w.WriteHeader(http.StatusNoContent)
	case "/query":
		q := r.URL.Query().Get("q")
		switch {
		case q == "SHOW DATABASES":
			fmt.Fprint(w, `{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["_internal"]]}]}]}`)
		case strings.HasPrefix(q, "CREATE DATABASE "):
			f.dbs = append(f.dbs, strings.TrimPrefix(q, "CREATE DATABASE "))
			fmt.Fprint(w, `{"results":[{"statement_id":0}]}`)
		default:
			epoch := "none"
			if r.URL.Query().Has("epoch") {
				epoch = "epoch=" + r.URL.Query().Get("epoch")
			}
			fmt.Fprintf(w, `{"results":[{"statement_id":0,"series":[{"name":%q,"columns":["time","epoch"],"values":[[0,%q]]}]}]}`,
				r.URL.Query().Get("db"), epoch)
		}
	default:
		http.NotFound(w, r)
	}
}

func TestNewClientRefusesRemote(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://192.0.2.1:8086", "ftp://127.0.0.1:8086", "127.0.0.1:8086"} {
		if _, err := newClient(t.Context(), u, time.Second); err == nil {
			t.Errorf("got no error for %s, want one", u)
		}
	}
}

func TestRunRecords(t *testing.T) {
	t.Parallel()
	fake := &fakeInfluxDB{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.lp")
	lines := strings.Repeat("m,t=a v=1 1\n", chunkLines+1)
	queries := filepath.Join(dir, "queries.txt")
	out := filepath.Join(dir, "answers")
	for name, text := range map[string]string{data: lines, queries: "SHOW X\ndb=other SHOW Y\nepoch=ms SHOW Z\nepoch=rfc3339 SHOW W\n"} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(out, "007.json")
	if err := os.WriteFile(stale, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	args := []string{"-influxd", srv.URL, "-data", data, "-queries", queries, "-out", out}
	if err := run(t.Context(), args, &stdout); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	writes, dbs := len(fake.writes), fake.dbs
	fake.mu.Unlock()
	if writes != 2 {
		t.Errorf("got %d write requests, want 2 (chunks of %d lines)", writes, chunkLines)
	}
	if len(dbs) != 1 || dbs[0] != `"telegraf"` {
		t.Errorf("got databases created %q, want telegraf", dbs)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("got stale answer kept (%v), want it removed", err)
	}
	for i, want := range []struct {
		query
		sent string
	}{
		{query: query{DB: "telegraf", Text: "SHOW X"}, sent: "epoch=ns"},
		{query: query{DB: "other", Text: "SHOW Y"}, sent: "epoch=ns"},
		{query: query{DB: "telegraf", Epoch: "ms", Text: "SHOW Z"}, sent: "epoch=ms"},
		{query: query{DB: "telegraf", Epoch: "rfc3339", Text: "SHOW W"}, sent: "none"},
	} {
		g, err := readGolden(filepath.Join(out, fmt.Sprintf("%03d.json", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if g.Query != want.Text || g.DB != want.DB || g.Epoch != want.Epoch || g.Status != 200 {
			t.Errorf("got %q on %q, epoch %q (%d), want %q on %q, epoch %q", g.Query, g.DB, g.Epoch, g.Status, want.Text, want.DB, want.Epoch)
		}
		if s := fmt.Sprint(g.Answer); !strings.Contains(s, want.DB) || !strings.Contains(s, want.sent+"]") {
			t.Errorf("got answer %s, want the database and %s sent", s, want.sent)
		}
	}
}

func TestRunRefusesExistingDatabase(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeInfluxDB{})
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	queries := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(queries, []byte("SHOW X\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-influxd", srv.URL, "-db", "_internal", "-queries", queries, "-out", filepath.Join(dir, "out")}
	if err := run(t.Context(), args, io.Discard); err == nil {
		t.Errorf("got no error writing into an existing database without -reuse")
	}
}

func TestRunDataDatabase(t *testing.T) {
	t.Parallel()
	fake := &fakeInfluxDB{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.lp")
	queries := filepath.Join(dir, "queries.txt")
	out := filepath.Join(dir, "answers")
	for name, text := range map[string]string{data: contextDatabasePrefix + "NOAA_water_database\nm v=1 1\n", queries: "SHOW X\n"} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-influxd", srv.URL, "-data", data, "-queries", queries, "-out", out}
	if err := run(t.Context(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	writes, dbs := fake.writes, fake.dbs
	fake.mu.Unlock()
	if len(dbs) != 1 || dbs[0] != `"NOAA_water_database"` {
		t.Errorf("got databases created %q, want NOAA_water_database", dbs)
	}
	if len(writes) != 1 || writes[0] != "m v=1 1\n" {
		t.Errorf("got writes %q, want the line without the comment", writes)
	}
	g, err := readGolden(filepath.Join(out, "001.json"))
	if err != nil {
		t.Fatal(err)
	}
	if g.DB != "NOAA_water_database" {
		t.Errorf("got the query sent to %q, want NOAA_water_database", g.DB)
	}
	args = append(args, "-db", "telegraf", "-reuse")
	if err := run(t.Context(), args, io.Discard); err == nil {
		t.Errorf("got no error for -db telegraf and data naming another database")
	}
}
