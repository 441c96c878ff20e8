package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDatasetFile checks that the committed data.lp is what writeDataset
// makes: regenerate it with -make-data after changing the data set.
func TestDatasetFile(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := writeDataset(&buf); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(corpusDir, "data.lp"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), file) {
		t.Errorf("got data.lp of %d bytes, want writeDataset's %d: run go run ./internal/devtools/influxref -make-data testdata/influxql/data.lp", len(file), buf.Len())
	}
	if n := bytes.Count(file, []byte("\n")); n != 14100 {
		t.Errorf("got %d lines, want 14100", n)
	}
}
