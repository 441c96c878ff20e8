package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxQueries bounds a query file: answers are numbered in three digits.
const maxQueries = 999

// query is one line of a query file.
type query struct {
	// Line is the line's number in the file.
	Line int
	// DB is the database the query goes to.
	DB string
	// Text is the query: one or more statements.
	Text string
}

// readQueriesFile reads the queries of file; db is the database of a
// query that names none.
func readQueriesFile(file, db string) ([]query, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot open queries: %w", err)
	}
	defer f.Close()
	qs, err := parseQueries(f, db)
	if err != nil {
		return nil, fmt.Errorf("queries %s: %w", file, err)
	}
	return qs, nil
}

// parseQueries reads one query a line; blank lines and lines starting
// with '#' are skipped; "db=NAME " at the start of a line picks the
// database, db otherwise.
func parseQueries(r io.Reader, db string) ([]query, error) {
	var qs []query
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		q := query{Line: n, DB: db, Text: text}
		if rest, ok := strings.CutPrefix(text, "db="); ok {
			name, stmt, found := strings.Cut(rest, " ")
			stmt = strings.TrimSpace(stmt)
			if !found || name == "" || stmt == "" {
				return nil, fmt.Errorf("line %d: want db=NAME QUERY", n)
			}
			q.DB, q.Text = name, stmt
		}
		if len(qs) == maxQueries {
			return nil, fmt.Errorf("line %d: more than %d queries", n, maxQueries)
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("no queries")
	}
	return qs, nil
}
