package main

import (
	"os"
	"path/filepath"
	"testing"
)

// corporaDir is testdata/influxql at the root of the tree: a directory
// per corpus.
var corporaDir = filepath.Join("..", "..", "..", "testdata", "influxql")

// corpus is one directory of corporaDir.
type corpus struct {
	Name string
	Dir  string
}

// corpora lists the corpora: the directories of corporaDir with a
// queries.txt.
func corpora(t *testing.T) []corpus {
	t.Helper()
	entries, err := os.ReadDir(corporaDir)
	if err != nil {
		t.Fatal(err)
	}
	var cs []corpus
	for _, e := range entries {
		dir := filepath.Join(corporaDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "queries.txt")); e.IsDir() && err == nil {
			cs = append(cs, corpus{Name: e.Name(), Dir: dir})
		}
	}
	if len(cs) == 0 {
		t.Fatalf("no corpus in %s", corporaDir)
	}
	return cs
}

// corpusQueries reads the committed queries of c, with the database
// influxref gives them.
func corpusQueries(t *testing.T, c corpus) []query {
	t.Helper()
	o := options{}
	if data := filepath.Join(c.Dir, "data.lp"); fileExists(data) {
		o.data = data
	}
	db, err := database(o)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := readQueriesFile(filepath.Join(c.Dir, "queries.txt"), db)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
