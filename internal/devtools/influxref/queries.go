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

// epochRFC3339 is the epoch= of a query sent without an epoch parameter:
// InfluxDB answers its times as RFC3339 strings.
const epochRFC3339 = "rfc3339"

// epochs are the values epoch= takes: InfluxDB's epoch parameters, and
// epochRFC3339. ns is the default, and written as "".
var epochs = map[string]bool{"u": true, "µ": true, "ms": true, "s": true, "m": true, "h": true, epochRFC3339: true}

// query is one line of a query file.
type query struct {
	// Line is the line's number in the file.
	Line int
	// DB is the database the query goes to.
	DB string
	// Epoch is the epoch parameter sent with it: "" for ns,
	// epochRFC3339 for none.
	Epoch string
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
// with '#' are skipped. A line may start with options, each followed by
// a space, in any order: "db=NAME" picks the database (db otherwise),
// "epoch=E" the epoch parameter (ns otherwise; rfc3339 sends none).
func parseQueries(r io.Reader, db string) ([]query, error) {
	var qs []query
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		q, err := parseQueryLine(text, db)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		q.Line = n
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

// parseQueryLine splits the options off one line of a query file.
func parseQueryLine(text, db string) (query, error) {
	q := query{DB: db}
	seen := map[string]bool{}
	for {
		key, rest, ok := strings.Cut(text, "=")
		if !ok || (key != "db" && key != "epoch") {
			break
		}
		value, stmt, _ := strings.Cut(rest, " ")
		stmt = strings.TrimSpace(stmt)
		if value == "" || stmt == "" {
			return q, fmt.Errorf("want %s=VALUE QUERY", key)
		}
		if seen[key] {
			return q, fmt.Errorf("%s= twice", key)
		}
		seen[key] = true
		switch key {
		case "db":
			q.DB = value
		case "epoch":
			if value != "ns" && !epochs[value] {
				return q, fmt.Errorf("epoch=%s: want ns, u, µ, ms, s, m, h or %s", value, epochRFC3339)
			}
			if value != "ns" {
				q.Epoch = value
			}
		}
		text = stmt
	}
	q.Text = text
	return q, nil
}
