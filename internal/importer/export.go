package importer

import (
	"bytes"
	"slices"
)

// The comment lines of an `influx_inspect export` (InfluxDB 1.x) that say
// something. Without -lponly the export looks like this:
//
//	# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z
//	# DDL
//	CREATE DATABASE telegraf WITH NAME autogen
//	CREATE RETENTION POLICY weekly ON telegraf DURATION 0s REPLICATION 1
//	# DML
//	# CONTEXT-DATABASE:telegraf
//	# CONTEXT-RETENTION-POLICY:autogen
//	# writing tsm data
//	cpu,host=a usage_idle=95.9 1574753954000000000
//
// The lines between "# DDL" and "# DML" are InfluxQL, not line protocol:
// they are skipped. A CONTEXT-DATABASE line names the database of the lines
// after it (up to the next one), as `influx -import` reads it; the other
// comment lines are comments. With -lponly none of these lines is written,
// and neither is anything by `influxd inspect export-lp` (InfluxDB 2.x).
var (
	directiveDDL      = []byte("# DDL")
	directiveDatabase = []byte("# CONTEXT-DATABASE:")
	directiveRP       = []byte("# CONTEXT-RETENTION-POLICY:")

	nlDML     = []byte("\n# DML")
	nlComment = []byte("\n#")
)

// exportState follows the sections of an export through the chunks of one
// input, which come in order. Not safe for concurrent use.
type exportState struct {
	ddl      bool   // between "# DDL" and "# DML": skip every line
	database string // from the last CONTEXT-DATABASE line; "" before any
	rp       string // from the last CONTEXT-RETENTION-POLICY line
	skipped  int64  // DDL lines skipped
	// databases lists the databases named, in order, at most
	// maxDatabasesListed.
	databases []string
}

// part is a run of whole lines of line protocol in a chunk, and the
// database in effect for them.
type part struct {
	data     []byte
	offset   int64 // line ends in the chunk before data
	database string
}

// split returns the parts of chunk (whole lines) that are line protocol,
// in order, skipping the DDL section and, when byDatabase, cutting at each
// change of the context database. parts is reused for the result. A chunk
// with no directive, the common case, costs one search for "\n#".
func (st *exportState) split(chunk []byte, byDatabase bool, parts []part) []part {
	parts = parts[:0]
	start := 0 // of the part being gathered
	emit := func(end int) {
		// A part of comments only (the export's first line, say) would
		// open a schema for nothing. For line protocol the test stops at
		// the first line.
		if end > start && !onlyComments(chunk[start:end]) {
			parts = append(parts, part{data: chunk[start:end], offset: int64(bytes.Count(chunk[:start], newline)), database: st.database})
		}
	}
	pos := 0 // always at the start of a line
	for pos < len(chunk) {
		if st.ddl {
			p := findLine(chunk, pos, nlDML)
			if p < 0 {
				st.skipped += int64(bytes.Count(chunk[pos:], newline))
				start = len(chunk)
				break
			}
			st.skipped += int64(bytes.Count(chunk[pos:p], newline))
			st.ddl = false
			pos = lineEnd(chunk, p)
			start = pos
			continue
		}
		p := findLine(chunk, pos, nlComment)
		if p < 0 {
			break
		}
		end := lineEnd(chunk, p)
		line := bytes.TrimSpace(chunk[p:end])
		switch {
		case bytes.HasPrefix(line, directiveDDL):
			emit(p)
			st.ddl = true
			start = end
		case bytes.HasPrefix(line, directiveDatabase):
			db := string(bytes.TrimSpace(line[len(directiveDatabase):]))
			if db != st.database {
				if len(st.databases) < maxDatabasesListed && !slices.Contains(st.databases, db) {
					st.databases = append(st.databases, db)
				}
				if byDatabase {
					emit(p)
					start = p
				}
				st.database = db
			}
		case bytes.HasPrefix(line, directiveRP):
			st.rp = string(bytes.TrimSpace(line[len(directiveRP):]))
		}
		pos = end
	}
	if start < len(chunk) {
		emit(len(chunk))
	}
	return parts
}

// findLine returns the index of the first line at or after pos (a line
// start) that begins with needle[1:], or -1. needle starts with '\n'.
func findLine(chunk []byte, pos int, needle []byte) int {
	if bytes.HasPrefix(chunk[pos:], needle[1:]) {
		return pos
	}
	i := bytes.Index(chunk[pos:], needle)
	if i < 0 {
		return -1
	}
	return pos + i + 1
}

// lineEnd returns the index just after the line end of the line at p, or
// len(chunk) for a last line without one.
func lineEnd(chunk []byte, p int) int {
	if i := bytes.IndexByte(chunk[p:], '\n'); i >= 0 {
		return p + i + 1
	}
	return len(chunk)
}

// onlyComments reports whether data holds nothing but comment lines and
// blank lines.
func onlyComments(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}
