package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// contextDatabasePrefix starts a comment line of a data file that names
// the database its lines go to, as in the files influx_inspect export
// writes and influx -import reads. Only the comment lines before the
// first line of data are read for it.
const contextDatabasePrefix = "# CONTEXT-DATABASE: "

// dataDatabase returns the database data file names in its first
// comment lines, or "" if it names none.
func dataDatabase(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("cannot open data: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	db := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		if name, ok := strings.CutPrefix(line, contextDatabasePrefix); ok {
			if name = strings.TrimSpace(name); name == "" || (db != "" && db != name) {
				return "", fmt.Errorf("data %s: want one %sNAME", file, contextDatabasePrefix)
			}
			db = name
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cannot read data %s: %w", file, err)
	}
	return db, nil
}
