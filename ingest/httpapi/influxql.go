package httpapi

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What /query understands of InfluxQL: the statements InfluxDB tools send
// before they write, or to find their way (Telegraf's CREATE DATABASE,
// Grafana's SHOW MEASUREMENTS, clients' SHOW DATABASES and SHOW RETENTION
// POLICIES). Everything else is errUnsupported.

// errUnsupported marks a statement pginflux does not serve (501).
var errUnsupported = errors.New("pginflux does not serve queries: its data is in PostgreSQL, query it there")

// stmtKind is the kind of a statement.
type stmtKind int

const (
	createDatabase stmtKind = iota
	showDatabases
	showMeasurements
	showRetentionPolicies
)

// statement is one parsed statement.
type statement struct {
	kind stmtKind
	db   string // CREATE DATABASE's name, or ON's
	on   bool   // an ON clause named db
	// SHOW MEASUREMENTS: WITH MEASUREMENT, LIMIT and OFFSET (0: none).
	match         func(string) bool
	limit, offset int
}

// parseQuery parses the statements of q, separated by semicolons. Its
// error wraps errUnsupported for a statement pginflux does not serve, and
// is a syntax error otherwise.
func parseQuery(q string) ([]statement, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	var stmts []statement
	for len(toks) > 0 {
		end := 0
		for end < len(toks) && toks[end].kind != tkSemi {
			end++
		}
		if end > 0 {
			st, err := parseStatement(toks[:end])
			if err != nil {
				return nil, err
			}
			stmts = append(stmts, st)
		}
		toks = toks[min(end+1, len(toks)):]
	}
	if len(stmts) == 0 {
		return nil, errors.New("found EOF, expected a statement")
	}
	return stmts, nil
}

// parseStatement parses one statement, without its semicolon.
func parseStatement(t []token) (statement, error) {
	words := func(ws ...string) bool {
		if len(t) < len(ws) {
			return false
		}
		for i, w := range ws {
			if !t[i].is(w) {
				return false
			}
		}
		return true
	}
	switch {
	case words("CREATE", "DATABASE"):
		if len(t) < 3 || !t[2].ident() {
			return statement{}, fmt.Errorf("CREATE DATABASE: expected a database name, found %s", at(t, 2))
		}
		// WITH DURATION ... and the like name a retention policy; pginflux
		// keeps data as --retention says.
		if len(t) > 3 && !t[3].is("WITH") {
			return statement{}, fmt.Errorf("CREATE DATABASE: found %s, expected WITH or the end", t[3])
		}
		return statement{kind: createDatabase, db: t[2].s}, nil
	case words("SHOW", "DATABASES"):
		if len(t) > 2 {
			return statement{}, fmt.Errorf("SHOW DATABASES: found %s, expected the end", t[2])
		}
		return statement{kind: showDatabases}, nil
	case words("SHOW", "RETENTION", "POLICIES"):
		st := statement{kind: showRetentionPolicies}
		rest, err := st.onClause(t[3:])
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("SHOW RETENTION POLICIES: found %s, expected ON or the end", rest[0])
		}
		return st, err
	case words("SHOW", "MEASUREMENTS"):
		return parseShowMeasurements(t[2:])
	}
	return statement{}, fmt.Errorf("%w (%s is not one of CREATE DATABASE, SHOW DATABASES, SHOW MEASUREMENTS and SHOW RETENTION POLICIES, which it answers)",
		errUnsupported, strings.Join(texts(t[:min(len(t), 3)]), " "))
}

// onClause reads an ON <database> clause, when there is one, and returns
// what follows.
func (st *statement) onClause(t []token) ([]token, error) {
	if len(t) == 0 || !t[0].is("ON") {
		return t, nil
	}
	if len(t) < 2 || !t[1].ident() {
		return nil, fmt.Errorf("ON: expected a database name, found %s", at(t, 1))
	}
	st.db, st.on = t[1].s, true
	return t[2:], nil
}

// parseShowMeasurements reads the clauses of SHOW MEASUREMENTS, in
// InfluxQL's order: [ON db] [WITH MEASUREMENT op name|/regex/] [WHERE ...]
// [LIMIT n] [OFFSET n]. WHERE filters by tags, which pginflux cannot tell
// without querying the tables: it is unsupported.
func parseShowMeasurements(t []token) (statement, error) {
	st := statement{kind: showMeasurements}
	t, err := st.onClause(t)
	if err != nil {
		return st, err
	}
	if len(t) > 0 && t[0].is("WITH") {
		if len(t) < 4 || !t[1].is("MEASUREMENT") || t[2].kind != tkOp {
			return st, fmt.Errorf("WITH MEASUREMENT: expected WITH MEASUREMENT = name or =~ /regex/, found %s", strings.Join(texts(t[:min(len(t), 4)]), " "))
		}
		op, v := t[2].s, t[3]
		switch {
		case (op == "=" || op == "!=" || op == "<>") && v.ident():
			st.match = func(m string) bool { return (m == v.s) == (op == "=") }
		case (op == "=~" || op == "!~") && v.kind == tkRegex:
			re, err := regexp.Compile(v.s)
			if err != nil {
				return st, fmt.Errorf("WITH MEASUREMENT: %w", err)
			}
			st.match = func(m string) bool { return re.MatchString(m) == (op == "=~") }
		default:
			return st, fmt.Errorf("WITH MEASUREMENT: found %s %s, expected = name or =~ /regex/", op, v)
		}
		t = t[4:]
	}
	if len(t) > 0 && t[0].is("WHERE") {
		return st, fmt.Errorf("%w (SHOW MEASUREMENTS ... WHERE filters by tags, which pginflux does not look into)", errUnsupported)
	}
	for _, clause := range []struct {
		word string
		n    *int
	}{{"LIMIT", &st.limit}, {"OFFSET", &st.offset}} {
		if len(t) > 0 && t[0].is(clause.word) {
			if len(t) < 2 || t[1].kind != tkNumber {
				return st, fmt.Errorf("%s: expected a number, found %s", clause.word, at(t, 1))
			}
			n, err := strconv.Atoi(t[1].s)
			if err != nil || n < 0 {
				return st, fmt.Errorf("%s: %q is not a count", clause.word, t[1].s)
			}
			*clause.n = n
			t = t[2:]
		}
	}
	if len(t) > 0 {
		return st, fmt.Errorf("SHOW MEASUREMENTS: found %s, expected ON, WITH, LIMIT, OFFSET or the end", t[0])
	}
	return st, nil
}

// tkKind is the kind of a token.
type tkKind int

const (
	tkWord   tkKind = iota // a bare identifier or keyword
	tkQuoted               // a double-quoted identifier
	tkString               // a single-quoted string
	tkNumber               // digits, perhaps with a unit (1h, 30d)
	tkRegex                // /.../ after =~ or !~
	tkOp                   // = != <> =~ !~ < > <= >=
	tkSemi
	tkOther // any other character
)

type token struct {
	kind tkKind
	s    string // unquoted and unescaped
}

// is reports whether t is the keyword w (case-insensitive).
func (t token) is(w string) bool { return t.kind == tkWord && strings.EqualFold(t.s, w) }

// ident reports whether t can name a database or measurement.
func (t token) ident() bool { return t.kind == tkWord || t.kind == tkQuoted }

func (t token) String() string {
	switch t.kind {
	case tkQuoted:
		return strconv.Quote(t.s)
	case tkString:
		return "'" + t.s + "'"
	case tkRegex:
		return "/" + t.s + "/"
	}
	return t.s
}

func texts(t []token) []string {
	s := make([]string, len(t))
	for i := range t {
		s[i] = t[i].String()
	}
	return s
}

// at names token i of t, or the end.
func at(t []token, i int) string {
	if i < len(t) {
		return t[i].String()
	}
	return "EOF"
}

// lex splits q into tokens. Comments (-- to the end of the line) are
// skipped.
func lex(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == ';':
			toks = append(toks, token{kind: tkSemi, s: ";"})
			i++
		case c == '"' || c == '\'':
			s, n, err := quoted(q[i:], c)
			if err != nil {
				return nil, err
			}
			kind := tkQuoted
			if c == '\'' {
				kind = tkString
			}
			toks = append(toks, token{kind: kind, s: s})
			i += n
		case c == '/' && len(toks) > 0 && toks[len(toks)-1].kind == tkOp && (toks[len(toks)-1].s == "=~" || toks[len(toks)-1].s == "!~"):
			s, n, err := quoted(q[i:], '/')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tkRegex, s: s})
			i += n
		case strings.ContainsRune("=!<>", rune(c)):
			n := 1
			if i+1 < len(q) && strings.ContainsRune("=~>", rune(q[i+1])) {
				n = 2
			}
			toks = append(toks, token{kind: tkOp, s: q[i : i+n]})
			i += n
		case c >= '0' && c <= '9':
			j := i
			for j < len(q) && isWordByte(q, j) {
				j++
			}
			toks = append(toks, token{kind: tkNumber, s: q[i:j]})
			i = j
		case isWordByte(q, i):
			j := i
			for j < len(q) && isWordByte(q, j) {
				_, n := utf8.DecodeRuneInString(q[j:])
				j += n
			}
			toks = append(toks, token{kind: tkWord, s: q[i:j]})
			i = j
		default:
			_, n := utf8.DecodeRuneInString(q[i:])
			toks = append(toks, token{kind: tkOther, s: q[i : i+n]})
			i += n
		}
	}
	return toks, nil
}

// isWordByte reports whether the character at q[i] can be part of a bare
// identifier: a letter, a digit or an underscore.
func isWordByte(q string, i int) bool {
	r, _ := utf8.DecodeRuneInString(q[i:])
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// quoted reads a token quoted by q from s (which starts with q) and
// returns it unescaped, and the bytes it took. A backslash escapes the
// quote and itself; in a regex, other escapes are the regex's and kept.
func quoted(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s) && q == '/':
			// InfluxQL's rule: \/ is a slash, any other pair is kept.
			if s[i+1] != '/' {
				b.WriteByte(c)
			}
			b.WriteByte(s[i+1])
			i++
		case c == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '\n' && q != '/':
			return "", 0, fmt.Errorf("a newline in a %s", quotedNames[q])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %s", quotedNames[q])
}

var quotedNames = map[byte]string{'"': "quoted identifier", '\'': "string", '/': "regex"}
