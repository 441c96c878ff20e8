package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The golden files of /query's InfluxQL (testdata/influxql, see its
// README.md): a directory per corpus, each with data.lp, queries.txt,
// answers/NNN.json and known_failures.txt; reading them, and comparing an
// answer with InfluxDB's, structurally.

// influxqlDir holds the corpora.
const influxqlDir = "../../testdata/influxql"

// influxqlDefaultDB is the database of a corpus whose data.lp names
// none.
const influxqlDefaultDB = "telegraf"

// contextDatabasePrefix starts the comment line of a data.lp that names
// its database (as influx_inspect export writes it).
const contextDatabasePrefix = "# CONTEXT-DATABASE: "

// epochRFC3339 is the epoch= of a query sent without an epoch parameter.
const epochRFC3339 = "rfc3339"

// goldenCorpus is one directory of influxqlDir.
type goldenCorpus struct {
	Name    string        // the directory's name
	Dir     string        // its path
	DB      string        // the database data.lp goes to, and queries by default
	Queries []goldenQuery // queries.txt
	// Known are the queries of known_failures.txt, by number.
	Known map[int]knownFailure
}

// goldenQuery is one query of a queries.txt.
type goldenQuery struct {
	Num   int    // its number, from 1: its answer is answers/NNN.json
	Line  int    // its line in queries.txt
	DB    string // the database it is sent to
	Epoch string // its epoch parameter: "" for ns, epochRFC3339 for none
	Text  string // the query: one statement or several
}

// knownFailure is one line of a known_failures.txt: a query pginflux
// does not answer as InfluxDB does yet.
type knownFailure struct {
	Line     int      // its line in known_failures.txt
	Storages []string // the storages it fails in; nil for every one
	Reason   string   // what is missing or different
}

// in says whether the failure is known in storage.
func (k knownFailure) in(storage string) bool {
	return k.Storages == nil || slices.Contains(k.Storages, storage)
}

// readGoldenCorpora reads every corpus of influxqlDir: the directories
// with a queries.txt, in the order of their names.
func readGoldenCorpora(t *testing.T) []goldenCorpus {
	t.Helper()
	entries, err := os.ReadDir(influxqlDir)
	if err != nil {
		t.Fatal(err)
	}
	var cs []goldenCorpus
	for _, e := range entries {
		dir := filepath.Join(influxqlDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "queries.txt")); !e.IsDir() || err != nil {
			continue
		}
		c := goldenCorpus{Name: e.Name(), Dir: dir}
		if c.DB, err = readDataDatabase(filepath.Join(dir, "data.lp")); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if c.Queries, err = readGoldenQueries(filepath.Join(dir, "queries.txt"), c.DB); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if c.Known, err = readKnownFailures(filepath.Join(dir, "known_failures.txt")); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		t.Fatalf("no corpus in %s", influxqlDir)
	}
	return cs
}

// readDataDatabase returns the database a data file names in its
// leading comment lines, or influxqlDefaultDB.
func readDataDatabase(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			break
		}
		if db, ok := strings.CutPrefix(line, contextDatabasePrefix); ok && strings.TrimSpace(db) != "" {
			return strings.TrimSpace(db), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return influxqlDefaultDB, nil
}

// readGoldenQueries reads a queries.txt as influxref does: one query a
// line, blank lines and lines starting with '#' skipped, options
// "db=NAME " and "epoch=E " at the start.
func readGoldenQueries(name, db string) ([]goldenQuery, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	qs, err := parseGoldenQueries(f, db)
	if err != nil {
		return nil, fmt.Errorf("queries.txt: %v", err)
	}
	return qs, nil
}

func parseGoldenQueries(r io.Reader, db string) ([]goldenQuery, error) {
	var qs []goldenQuery
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		q := goldenQuery{Num: len(qs) + 1, Line: line, DB: db}
		for {
			key, rest, ok := strings.Cut(text, "=")
			if !ok || (key != "db" && key != "epoch") {
				break
			}
			value, stmt, _ := strings.Cut(rest, " ")
			if stmt = strings.TrimSpace(stmt); value == "" || stmt == "" {
				return nil, fmt.Errorf("line %d: want %s=VALUE QUERY", line, key)
			}
			if key == "db" {
				q.DB = value
			} else if value != "ns" {
				q.Epoch = value
			}
			text = stmt
		}
		q.Text = text
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, errors.New("no queries")
	}
	return qs, nil
}

// readKnownFailures reads a known_failures.txt, if there is one: a
// query number a line (as in NNN.json), then the storages it fails in
// when not all, then '#' and the reason, which is required; blank lines
// and lines starting with '#' are skipped.
func readKnownFailures(name string) (map[int]knownFailure, error) {
	known := make(map[int]knownFailure)
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return known, nil
	}
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, reason, _ := strings.Cut(line, "#")
		fields := strings.Fields(head)
		reason = strings.TrimSpace(reason)
		if len(fields) == 0 || reason == "" {
			return nil, fmt.Errorf("known_failures.txt line %d: want NNN [STORAGE...] # REASON", i+1)
		}
		num, err := strconv.Atoi(fields[0])
		if err != nil || num < 1 {
			return nil, fmt.Errorf("known_failures.txt line %d: %q is not a query number", i+1, fields[0])
		}
		if k, ok := known[num]; ok {
			return nil, fmt.Errorf("known_failures.txt line %d: query %d again (line %d)", i+1, num, k.Line)
		}
		k := knownFailure{Line: i + 1, Reason: reason}
		for _, s := range fields[1:] {
			if !slices.Contains(goldenStorages, s) {
				return nil, fmt.Errorf("known_failures.txt line %d: %q is not a storage (%s)", i+1, s, strings.Join(goldenStorages, ", "))
			}
			k.Storages = append(k.Storages, s)
		}
		known[num] = k
	}
	return known, nil
}

// goldenAnswer is one answers/NNN.json: InfluxDB 1.8.10's answer to
// GET /query?db=DB&q=QUERY&epoch=EPOCH.
type goldenAnswer struct {
	Query  string          `json:"query"`
	DB     string          `json:"db"`
	Epoch  string          `json:"epoch"` // "" for ns, epochRFC3339 for none
	Status int             `json:"status"`
	Answer json.RawMessage `json:"answer"` // the body
}

// goldenFileName matches the answer files.
var goldenFileName = regexp.MustCompile(`^([0-9]{3})\.json$`)

// goldenFile names the answer file of query num of corpus c, relative to
// the tree's root (for messages).
func (c goldenCorpus) goldenFile(num int) string {
	return fmt.Sprintf("testdata/influxql/%s/answers/%03d.json", c.Name, num)
}

// readAnswers reads every file of c's answers/, by number; a file of
// another name is an error.
func (c goldenCorpus) readAnswers() (map[int]goldenAnswer, error) {
	dir := filepath.Join(c.Dir, "answers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	answers := make(map[int]goldenAnswer)
	var problems []string
	for _, e := range entries {
		m := goldenFileName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s/answers/%s: not an answer file (NNN.json)", c.Name, e.Name()))
			continue
		}
		num, _ := strconv.Atoi(m[1])
		g, err := readGoldenAnswer(filepath.Join(dir, e.Name()))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		answers[num] = g
	}
	if len(problems) > 0 {
		return answers, errors.New(strings.Join(problems, "\n"))
	}
	return answers, nil
}

func readGoldenAnswer(name string) (goldenAnswer, error) {
	var g goldenAnswer
	b, err := os.ReadFile(name)
	if err != nil {
		return g, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("%s: %v", name, err)
	}
	if _, err := decodeGoldenJSON(g.Answer); err != nil {
		return g, fmt.Errorf("%s: answer: %v", name, err)
	}
	return g, nil
}

// decodeGoldenJSON decodes one JSON value, numbers as json.Number, with
// nothing but white space after it.
func decodeGoldenJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more after the JSON value")
	}
	return v, nil
}

// jsonDiff lists where got differs from want, both as decodeGoldenJSON
// returns them, one line each ("results[0].series[0].values[3][1]: got
// 3.5, want 3.6"), at most limit of them; n is how many there are in all.
// Objects are compared key by key, arrays element by element in order,
// numbers by numbersEqual, strings, bools and null exactly.
func jsonDiff(got, want any, limit int) (diffs []string, n int) {
	add := func(path, format string, args ...any) {
		n++
		if len(diffs) < limit {
			if path == "" {
				path = "(the body)"
			}
			diffs = append(diffs, path+": "+fmt.Sprintf(format, args...))
		}
	}
	var walk func(path string, got, want any)
	walk = func(path string, got, want any) {
		switch w := want.(type) {
		case map[string]any:
			g, ok := got.(map[string]any)
			if !ok {
				add(path, "got %s, want an object", describeJSON(got))
				return
			}
			keys := make([]string, 0, len(w)+len(g))
			for k := range w {
				keys = append(keys, k)
			}
			for k := range g {
				if _, ok := w[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				gv, inGot := g[k]
				wv, inWant := w[k]
				switch {
				case !inGot:
					add(jsonKeyPath(path, k), "missing, want %s", describeJSON(wv))
				case !inWant:
					add(jsonKeyPath(path, k), "got %s, want no such key", describeJSON(gv))
				default:
					walk(jsonKeyPath(path, k), gv, wv)
				}
			}
		case []any:
			g, ok := got.([]any)
			if !ok {
				add(path, "got %s, want an array", describeJSON(got))
				return
			}
			if len(g) != len(w) {
				add(path, "got %d elements, want %d", len(g), len(w))
			}
			for i := range min(len(g), len(w)) {
				walk(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])
			}
		case json.Number:
			g, ok := got.(json.Number)
			if !ok || !numbersEqual(g, w) {
				add(path, "got %s, want %s", describeJSON(got), w)
			}
		default: // string, bool, nil
			if got != want {
				add(path, "got %s, want %s", describeJSON(got), describeJSON(want))
			}
		}
	}
	walk("", got, want)
	return diffs, n
}

// numbersEqual: both integers (int64) and equal; or else, as float64,
// within 1e-9 of each other relatively (1e-12 absolutely, near 0). An
// integer beyond 2^53, which a float64 cannot hold exactly (a time in
// ns), must be matched by the same integer.
func numbersEqual(got, want json.Number) bool {
	gi, gerr := strconv.ParseInt(string(got), 10, 64)
	wi, werr := strconv.ParseInt(string(want), 10, 64)
	if gerr == nil && werr == nil {
		return gi == wi
	}
	const exact = 1 << 53
	if (werr == nil && (wi > exact || wi < -exact)) || (gerr == nil && (gi > exact || gi < -exact)) {
		return false
	}
	gf, gerr := strconv.ParseFloat(string(got), 64)
	wf, werr := strconv.ParseFloat(string(want), 64)
	if gerr != nil || werr != nil {
		return false
	}
	d := math.Abs(gf - wf)
	return d <= 1e-12 || d <= 1e-9*max(math.Abs(gf), math.Abs(wf))
}

// jsonKeyPath appends key k to path: .k, or ["k"] when k is not a plain
// name.
func jsonKeyPath(path, k string) string {
	plain := k != "" && strings.IndexFunc(k, func(r rune) bool {
		return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) < 0
	switch {
	case plain && path == "":
		return k
	case plain:
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

// describeJSON writes v as compact JSON, cut at 80 bytes.
func describeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return shorten(strings.TrimSuffix(b.String(), "\n"), 80)
}

// shorten cuts s to at most n bytes, at a character's start, saying how
// long it was.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:n], len(s))
}
