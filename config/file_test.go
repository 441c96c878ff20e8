package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
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
			got, err := ReadFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), FileEnv) {
					t.Fatalf("got error %v, want one containing %q and %s", err, tt.wantErr, FileEnv)
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
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
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
	_, err := ReadFile(path)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("got %v, want an error without the value", err)
	}
}

// TestLoadFile: the file is read over the environment at start;
// the command line still wins.
func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("PGINFLUX_BATCH_SIZE=7\nPGINFLUX_SCHEMA=fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{FileEnv: path, "PGINFLUX_BATCH_SIZE": "5", "PGINFLUX_WRITERS": "3", "PGINFLUX_DATABASE_URL": "host=/nonexistent"}
	cfg, err := Load([]string{"--schema", "fromargs"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 7 || cfg.Writers != 3 || cfg.Schema != "fromargs" {
		t.Errorf("got batch size %d, writers %d, schema %q; want 7 (file over environment), 3 (environment), fromargs (command line over file)",
			cfg.BatchSize, cfg.Writers, cfg.Schema)
	}
	env[FileEnv] = filepath.Join(t.TempDir(), "missing")
	if _, err := Load(nil, func(k string) string { return env[k] }, &bytes.Buffer{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: got %v, want os.ErrNotExist", err)
	}
}
