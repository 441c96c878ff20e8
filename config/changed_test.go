package config

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFlagOfField: every field of config.Config maps to a real flag, so
// that a reload names the settings that need a restart as the user knows
// them.
func TestFlagOfField(t *testing.T) {
	var usage bytes.Buffer
	if _, err := Parse([]string{"--help"}, func(string) string { return "" }, &usage); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: got %v", err)
	}
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		field := ty.Field(i).Name
		flag := flagOfField(field)
		list := "\n" + usage.String()
		if !strings.Contains(list, "\n  --"+flag+" ") && !strings.Contains(list, "\n  --"+flag+"\n") {
			t.Errorf("Config.%s: flag --%s does not exist; add the field to fieldFlags in changed.go", field, flag)
		}
	}
	for field, want := range map[string]string{"UDPReadBuffer": "udp-read-buffer", "DatabaseURL": "database-url", "HTTPMaxBody": "http-max-body", "SchemaFromDB": "schema-from-db"} {
		if got := flagOfField(field); got != want {
			t.Errorf("flagOfField(%s): got %s, want %s", field, got, want)
		}
	}
}

func TestChanged(t *testing.T) {
	noEnv := func(string) string { return "" }
	args := []string{"--database-url", "host=/a", "--create-table-sql", "CREATE INDEX ON {{.Table}} ({{.TimeColumn}})", "--udp-allow", "10.0.0.0/8"}
	a, err := Parse(args, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// Parsed again, as a reload does: the same settings.
	b, err := Parse(args, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := Changed(a, b); len(got) != 0 {
		t.Errorf("same config: got %v, want none", got)
	}
	c, err := Parse(append(args, "--create-table-sql", "SELECT 1"), noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := Changed(a, c); !slices.Equal(got, []string{"create-table-sql"}) {
		t.Errorf("another template: got %v, want create-table-sql", got)
	}
	b.DatabaseURL, b.Database, b.Writers = "host=/b", "user= database= host=/b", a.Writers+1
	got := Changed(a, b)
	slices.Sort(got)
	if want := []string{"database-url", "writers"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
