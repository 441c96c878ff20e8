package main

import (
	"path/filepath"
	"testing"
)

// corpusDir is testdata/influxql at the root of the tree.
var corpusDir = filepath.Join("..", "..", "..", "testdata", "influxql")

// corpusQueries reads the committed queries.
func corpusQueries(t *testing.T) []query {
	t.Helper()
	qs, err := readQueriesFile(filepath.Join(corpusDir, "queries.txt"), "telegraf")
	if err != nil {
		t.Fatal(err)
	}
	return qs
}
