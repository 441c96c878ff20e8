package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/sink"
)

func TestReadConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]string
		wantErr string
	}{
		{name: "empty", text: "", want: map[string]string{}},
		{name: "comments and blanks", text: "# a\n; b\n\n   \nPGINFLUX_SCHEMA=x\n", want: map[string]string{"PGINFLUX_SCHEMA": "x"}},
		{name: "spaces trimmed", text: "  PGINFLUX_SCHEMA = x y  \n", want: map[string]string{"PGINFLUX_SCHEMA": "x y"}},
		{name: "quotes", text: "A=\"x y\"\nB='z'\nC=\"unclosed\nD=\"\"\n", want: map[string]string{"A": "x y", "B": "z", "C": "\"unclosed", "D": ""}},
		{name: "export", text: "export PGINFLUX_SCHEMA=x\n", want: map[string]string{"PGINFLUX_SCHEMA": "x"}},
		{name: "equals in value", text: "PGINFLUX_DATABASE_URL=host=/tmp user=a password=p=q\n", want: map[string]string{"PGINFLUX_DATABASE_URL": "host=/tmp user=a password=p=q"}},
		{name: "last wins", text: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "crlf", text: "A=1\r\nB=2\r\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "no equals", text: "A=1\nPGINFLUX_SCHEMA x\n", wantErr: "line 2: not KEY=VALUE"},
		{name: "bad key", text: "A B=1\n", wantErr: "line 1: not KEY=VALUE"},
		{name: "digit first", text: "1A=1\n", wantErr: "line 1: not KEY=VALUE"},
		{name: "every bad line", text: "x\ny\n", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readConfigFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), configFileEnv) {
					t.Fatalf("got error %v, want one containing %q and %s", err, tt.wantErr, configFileEnv)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := readConfigFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: got %v, want os.ErrNotExist", err)
	}
}

// TestConfigFileNeverShowsValues: an error about the file names the line,
// never what is on it, which may be a password.
func TestConfigFileNeverShowsValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("PGINFLUX_DATABASE_URL postgres://u:s3cr3t@h/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := readConfigFile(path)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("got %v, want an error without the value", err)
	}
}

// TestParseConfigFile: the file is read over the environment at start;
// the command line still wins.
func TestParseConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("PGINFLUX_BATCH_SIZE=7\nPGINFLUX_SCHEMA=fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{configFileEnv: path, "PGINFLUX_BATCH_SIZE": "5", "PGINFLUX_WRITERS": "3", "PGINFLUX_DATABASE_URL": "host=/nonexistent"}
	cfg, err := parseConfig([]string{"--schema", "fromargs"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 7 || cfg.Writers != 3 || cfg.Schema != "fromargs" {
		t.Errorf("got batch size %d, writers %d, schema %q; want 7 (file over environment), 3 (environment), fromargs (command line over file)",
			cfg.BatchSize, cfg.Writers, cfg.Schema)
	}
	env[configFileEnv] = filepath.Join(t.TempDir(), "missing")
	if _, err := parseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: got %v, want os.ErrNotExist", err)
	}
}

// TestFlagOfField: every field of config.Config maps to a real flag, so
// that a reload names the settings that need a restart as the user knows
// them.
func TestFlagOfField(t *testing.T) {
	var usage bytes.Buffer
	if _, err := config.Parse([]string{"--help"}, func(string) string { return "" }, &usage); !errors.Is(err, config.ErrHelp) {
		t.Fatalf("--help: got %v", err)
	}
	ty := reflect.TypeFor[config.Config]()
	for i := range ty.NumField() {
		field := ty.Field(i).Name
		flag := flagOfField(field)
		list := "\n" + usage.String()
		if !strings.Contains(list, "\n  --"+flag+" ") && !strings.Contains(list, "\n  --"+flag+"\n") {
			t.Errorf("config.Config.%s: flag --%s does not exist; add the field to fieldFlags in reload.go", field, flag)
		}
	}
	for field, want := range map[string]string{"UDPReadBuffer": "udp-read-buffer", "DatabaseURL": "database-url", "HTTPMaxBody": "http-max-body", "SchemaFromDB": "schema-from-db"} {
		if got := flagOfField(field); got != want {
			t.Errorf("flagOfField(%s): got %s, want %s", field, got, want)
		}
	}
}

func TestNeedRestart(t *testing.T) {
	noEnv := func(string) string { return "" }
	args := []string{"--database-url", "host=/a", "--create-table-sql", "CREATE INDEX ON {{.Table}} ({{.TimeColumn}})", "--udp-allow", "10.0.0.0/8"}
	a, err := config.Parse(args, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// Parsed again, as a reload does: the same settings.
	b, err := config.Parse(args, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := needRestart(a, b); len(got) != 0 {
		t.Errorf("same config: got %v, want none", got)
	}
	c, err := config.Parse(append(args, "--create-table-sql", "SELECT 1"), noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := needRestart(a, c); !slices.Equal(got, []string{"create-table-sql"}) {
		t.Errorf("another template: got %v, want create-table-sql", got)
	}
	b.DatabaseURL, b.Database, b.Writers = "host=/b", "user= database= host=/b", a.Writers+1
	got := needRestart(a, b)
	slices.Sort(got)
	if want := []string{"database-url", "writers"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestReloadApplies calls the reloader directly: what changed is applied
// and logged, the rest named for a restart, and a broken file changes
// nothing.
func TestReloadApplies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("PGINFLUX_LOG_LEVEL=error\n")
	env := map[string]string{configFileEnv: path, "PGINFLUX_DATABASE_URL": "host=/nonexistent"}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseConfig(nil, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	log := newLogger(&logs, cfg, level)
	s := newTestSink(t)
	r := &reloader{getenv: getenv, cfg: cfg, level: level, sink: s, log: log}

	write("PGINFLUX_LOG_LEVEL=info\nPGINFLUX_FLUSH_INTERVAL=250ms\nPGINFLUX_MAX_PENDING_ROWS=1234\nPGINFLUX_SCHEMA=other\nPGINFLUX_HTTP_TOKEN=s3cr3t\n")
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("log level: got %v, want INFO", level.Level())
	}
	out := logs.String()
	for _, want := range []string{
		`setting=log-level old=ERROR new=INFO`,
		`setting=flush-interval old=1s new=250ms`,
		`setting=max-pending-rows old=200000 new=1234`,
		`settings="schema, http-token"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("the log shows the token:\n%s", out)
	}
	if r.cfg.FlushInterval != 250*time.Millisecond || r.cfg.Schema == "other" {
		t.Errorf("running config: flush interval %v, schema %q; want 250ms and the old schema", r.cfg.FlushInterval, r.cfg.Schema)
	}

	logs.Reset()
	write("PGINFLUX_LOG_LEVEL=loud\n")
	if err := r.reload(); err == nil || !strings.Contains(err.Error(), "PGINFLUX_LOG_LEVEL") {
		t.Errorf("a bad level: got %v, want an error naming PGINFLUX_LOG_LEVEL", err)
	}
	if level.Level() != slog.LevelInfo || r.cfg.FlushInterval != 250*time.Millisecond {
		t.Errorf("after a failed reload: level %v, flush interval %v; want them kept", level.Level(), r.cfg.FlushInterval)
	}
	if logs.Len() != 0 {
		t.Errorf("a failed reload logged changes:\n%s", logs.String())
	}
}

// newTestSink returns a sink on a pool that never connects: enough for
// SetLimits.
func newTestSink(t *testing.T) *sink.Sink {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), "host=/nonexistent-pginflux-reload-test")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(pool, sink.Config{Schema: "unused"}, sink.NewMetrics(nil), slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		pool.Close()
	})
	return s
}
