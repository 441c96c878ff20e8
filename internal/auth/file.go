package auth

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// defaultCacheSize is how many verified user and password pairs a File
// remembers unless told otherwise: more than the 1.x users of any file
// we expect, each with a password or two.
const defaultCacheSize = 1024

// File is a parsed credentials file. It is never changed once made (a
// reload makes a new File) and is safe for concurrent use.
type File struct {
	creds  []*Credential
	tokens map[[sha256.Size]byte]*Credential
	users  map[string]*user
	v      *verifier
}

// user is a 1.x user of a File: its credential and its bcrypt hash.
type user struct {
	cred *Credential
	hash []byte
}

// Credentials returns the file's credentials in the file's order. The
// slice is the caller's; the credentials are the File's, read-only.
func (f *File) Credentials() []*Credential {
	return append([]*Credential(nil), f.creds...)
}

// Options are what Parse and Load may be told beyond the file itself.
// The zero Options are the defaults.
type Options struct {
	// CompareHashAndPassword checks a password against its bcrypt hash,
	// returning nil when it is right; nil is bcrypt.CompareHashAndPassword.
	// Tests count or stub verifications through it.
	CompareHashAndPassword func(hash, password []byte) error
	// CacheSize is the most user and password pairs the File remembers as
	// verified; 0 is 1024.
	CacheSize int
}

// ParseError is a problem on one line of a credentials file. Its text
// names the line and what is wrong, never what the line holds.
type ParseError struct {
	Path string // the file's path; "" for Parse
	Line int    // from 1
	Err  error
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads a credentials file (the format is in the package doc) with
// the default Options. The error joins a *ParseError for every problem.
func Parse(r io.Reader) (*File, error) { return Options{}.Parse(r) }

// Load reads the credentials file at path with the default Options.
func Load(path string) (*File, error) { return Options{}.Load(path) }

// Parse reads a credentials file with o. The error joins a *ParseError
// for every problem.
func (o Options) Parse(r io.Reader) (*File, error) { return o.parse(r, "") }

// Load reads the credentials file at path with o. A problem in the file
// is a *ParseError naming the path.
func (o Options) Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return o.parse(fh, path)
}

// parser is the state of one Parse: the File so far, where each name,
// token and user was first seen, and the problems found.
type parser struct {
	path   string
	f      *File
	names  map[string]int
	tokens map[[sha256.Size]byte]int
	users  map[string]int
	errs   []error
}

func (o Options) parse(r io.Reader, path string) (*File, error) {
	compare, size := o.CompareHashAndPassword, o.CacheSize
	if compare == nil {
		compare = bcrypt.CompareHashAndPassword
	}
	if size <= 0 {
		size = defaultCacheSize
	}
	p := &parser{
		path: path,
		f: &File{
			tokens: make(map[[sha256.Size]byte]*Credential),
			users:  make(map[string]*user),
			v:      newVerifier(compare, size),
		},
		names:  make(map[string]int),
		tokens: make(map[[sha256.Size]byte]int),
		users:  make(map[string]int),
	}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		if fields := strings.Fields(stripComment(sc.Text())); len(fields) > 0 {
			p.line(n, fields)
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		p.errorf(n+1, "longer than %d bytes", bufio.MaxScanTokenSize)
	} else if err != nil {
		p.errs = append(p.errs, fmt.Errorf("read credentials: %w", err))
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.f, nil
}

// stripComment cuts line at a # that starts it or follows whitespace, so
// that a # inside a field (a role or database name) is kept.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || strings.IndexByte(" \t\v\f\r", line[i-1]) >= 0) {
			return line[:i]
		}
	}
	return line
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ParseError{Path: p.path, Line: line, Err: fmt.Errorf(format, args...)})
}

// line parses the fields of line n and adds its credential to the File
// when it has no problem.
func (p *parser) line(n int, fields []string) {
	before := len(p.errs)
	if len(fields) < 2 {
		p.errorf(n, "want NAME SECRET [key=value ...]")
		return
	}
	c := &Credential{Name: fields[0]}
	if !validName(c.Name) {
		p.errorf(n, "name: want letters, digits, '_', '.' and '-'")
	} else if first, ok := p.names[c.Name]; ok {
		p.errorf(n, "name: already that of line %d", first)
	} else {
		p.names[c.Name] = n
	}
	s, err := parseSecret(fields[1])
	if err != nil {
		p.errorf(n, "secret: %v", err)
	}
	p.keys(n, c, fields[2:])
	if s.user != "" {
		if first, ok := p.users[s.user]; ok {
			p.errorf(n, "secret: user already that of line %d", first)
		}
	} else if err == nil {
		if first, ok := p.tokens[s.token]; ok {
			p.errorf(n, "secret: token already that of line %d", first)
		}
	}
	if len(p.errs) > before {
		return
	}
	p.f.creds = append(p.f.creds, c)
	if s.user != "" {
		p.users[s.user] = n
		p.f.users[s.user] = &user{cred: c, hash: s.hash}
	} else {
		p.tokens[s.token] = n
		p.f.tokens[s.token] = c
	}
}

// keys parses the key=value fields of line n into c.
func (p *parser) keys(n int, c *Credential, fields []string) {
	seen := make(map[string]bool)
	for i, f := range fields {
		field := i + 3
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			p.errorf(n, "field %d: want key=value", field)
			continue
		}
		var err error
		switch key {
		case "write":
			c.Write, err = parsePatterns(value)
		case "query":
			c.Query, err = parsePatterns(value)
		case "role":
			c.Role, err = value, validRole(value)
		case "max-writes":
			c.MaxWrites, err = parseMaxWrites(value)
		default:
			p.errorf(n, "field %d: unknown key, want write=, query=, role= or max-writes=", field)
			continue
		}
		if seen[key] {
			p.errorf(n, "field %d: %s= given twice", field, key)
		}
		seen[key] = true
		if err != nil {
			p.errorf(n, "%s: %v", key, err)
		}
	}
}

func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '.' || b == '-') {
			return false
		}
	}
	return name != ""
}
