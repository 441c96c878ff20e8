package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDatasetFile checks that the committed data.lp of each corpus made
// by influxref is what -make-data makes: regenerate it after changing a
// data set.
func TestDatasetFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		dataset string
		lines   int
	}{
		{dataset: "fleet", lines: 14100},
		{dataset: "docs", lines: 4998},
	} {
		t.Run(c.dataset, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := datasets[c.dataset](&buf); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(corporaDir, c.dataset, "data.lp")
			file, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), file) {
				t.Errorf("got %s of %d bytes, want -make-data's %d: run go run ./internal/devtools/influxref -dataset %s -make-data testdata/influxql/%s/data.lp",
					name, len(file), buf.Len(), c.dataset, c.dataset)
			}
			if n := bytes.Count(file, []byte("\n")); n != c.lines {
				t.Errorf("got %d lines, want %d", n, c.lines)
			}
		})
	}
}

func TestDocsDatasetDatabase(t *testing.T) {
	t.Parallel()
	db, err := dataDatabase(filepath.Join(corporaDir, "docs", "data.lp"))
	if err != nil || db != docsDatabase {
		t.Errorf("got database %q (%v), want %s", db, err, docsDatabase)
	}
	db, err = dataDatabase(filepath.Join(corporaDir, "fleet", "data.lp"))
	if err != nil || db != "" {
		t.Errorf("got database %q (%v) for fleet, want none", db, err)
	}
}
