package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestParse: comments (whole lines, after fields, never inside one),
// blank lines, tabs and CRLF; every key; the credentials in file order.
func TestParse(t *testing.T) {
	t.Parallel()
	text := "# pginflux credentials\r\n" +
		"\n" +
		"team-a\t" + HashToken(testToken) + "  write=team_a query=team_a,shared role=team_a_writer # the team\r\n" +
		"   \t\n" +
		"bob " + userSecret(t, testUser, testPassword) + " query=*\n" +
		"#disabled " + HashToken("old") + "\n" +
		"hash.tag_1 " + HashToken("h") + " write=a#b,c max-writes=4 role=r#1\n" +
		"auth-only " + strings.ToUpper(HashToken("upper")[len(tokenPrefix):]) + "\n"
	text = strings.Replace(text, "auth-only ", "auth-only "+tokenPrefix, 1)
	f := mustParse(t, Options{}, text)
	want := []*Credential{
		{Name: "team-a", Write: []string{"team_a"}, Query: []string{"team_a", "shared"}, Role: "team_a_writer"},
		{Name: "bob", Query: []string{"*"}},
		{Name: "hash.tag_1", Write: []string{"a#b", "c"}, Role: "r#1", MaxWrites: 4},
		{Name: "auth-only"},
	}
	if got := f.Credentials(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if c, err := f.Authenticate(request("/write", "Authorization", "Token upper")); name(c) != "auth-only" {
		t.Errorf("a hash in capitals: got %v, %v, want auth-only", c, err)
	}
	f.Credentials()[0] = nil
	if f.Credentials()[0] == nil {
		t.Error("Credentials: the slice is the File's, want a copy")
	}
}

// TestParseEmpty: a file with no credential is a File that lets no one
// in.
func TestParseEmpty(t *testing.T) {
	t.Parallel()
	f := mustParse(t, Options{}, "# no one yet\n\n")
	if n := len(f.Credentials()); n != 0 {
		t.Errorf("got %d credentials, want none", n)
	}
	if _, err := f.Authenticate(request("/write", "Authorization", "Token x")); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("got %v, want ErrBadCredentials", err)
	}
}

// TestParseErrors: each problem is reported with its line number and what
// is wrong, and never with what the line holds: not a hash, not a token
// or password in the wrong place, not a value.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	token := HashToken(testToken)
	user := userSecret(t, testUser, testPassword)
	hash := user[len(userPrefix+testUser+":"):]
	tests := []struct {
		name, line, want string
	}{
		{"name only", "team-a", "want NAME SECRET"},
		{"secret only", token, "want NAME SECRET"},
		{"bad name", "team/a " + token, "name: want letters"},
		{"no secret form", "team-a " + testToken, "secret: want token:sha256:HEX or user:NAME:HASH"},
		{"short hash", "team-a " + token[:len(token)-1], "secret: want token:sha256: and 64 hex digits"},
		{"not hex", "team-a " + token[:len(token)-1] + "g", "secret: want token:sha256: and 64 hex digits"},
		{"other algorithm", "team-a token:md5:" + token[len(tokenPrefix):], "secret: want token:sha256:HEX"},
		{"empty token", "team-a " + HashToken(""), "secret: the SHA-256 of the empty token"},
		{"user no hash", "bob user:bob", "secret: want user:NAME:HASH"},
		{"empty user", "bob user::" + hash, "secret: empty user name"},
		{"user control", "bob user:b\x01ob:" + hash, "secret: user name: holds"},
		{"plain password", "bob user:bob:" + testPassword, "secret: want a bcrypt hash"},
		{"2x hash", "bob user:bob:$2x$" + hash[4:], "secret: want a bcrypt hash"},
		{"cost", "bob user:bob:" + hash[:4] + "99" + hash[6:], "secret: bcrypt cost: want 4 to 31"},
		{"hash cut", "bob user:bob:" + hash[:59], "secret: want a bcrypt hash"},
		{"hash alphabet", "bob user:bob:" + hash[:59] + "!", "secret: want a bcrypt hash"},
		{"no equals", "team-a " + token + " " + testPassword, "field 3: want key=value"},
		{"unknown key", "team-a " + token + " password=" + testPassword, "field 3: unknown key, want write="},
		{"twice", "team-a " + token + " write=a write=b", "field 4: write= given twice"},
		{"empty write", "team-a " + token + " write=", "write: pattern 1 is empty"},
		{"empty pattern", "team-a " + token + " query=a,,b", "query: pattern 2 is empty"},
		{"bad pattern", "team-a " + token + " query=a,[b", "query: pattern 2: syntax error in pattern"},
		{"empty role", "team-a " + token + " role=", "role: want 1 to 63 bytes"},
		{"long role", "team-a " + token + " role=" + strings.Repeat("r", 64), "role: want 1 to 63 bytes"},
		{"role control", "team-a " + token + " role=a\x7fb", "role: holds a control character"},
		{"max-writes zero", "team-a " + token + " max-writes=0", "max-writes: want a whole number from 1"},
		{"max-writes word", "team-a " + token + " max-writes=" + testPassword, "max-writes: want a whole number from 1"},
		{"max-writes huge", "team-a " + token + " max-writes=99999999999", "max-writes: want a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse(strings.NewReader("# first\n\nok " + HashToken("ok") + "\n" + tt.line + "\n"))
			if f != nil || err == nil {
				t.Fatalf("got %v, %v, want an error", f, err)
			}
			if want := "line 4: " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q, want it to begin %q", err, want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 4 {
				t.Errorf("got %#v, want a *ParseError of line 4", err)
			}
			for _, s := range []string{token[len(tokenPrefix):], hash[7:], testToken, testPassword, "team/a", "password", "99999999999"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%q holds %q", err, s)
				}
			}
		})
	}
}

// TestParseErrorsAtOnce: every problem of a file, each with its line,
// including the names, tokens and users a file holds twice; nothing is
// made of a file with a problem.
func TestParseErrorsAtOnce(t *testing.T) {
	t.Parallel()
	token, user := HashToken(testToken), userSecret(t, testUser, testPassword)
	text := "a " + token + "\n" + // 1
		"a " + HashToken("other") + "\n" + // 2: name again
		"b " + token + "\n" + // 3: token again
		"# comment\n" + // 4
		"c " + user + "\n" + // 5
		"d " + userSecret(t, testUser, "another") + " write=x,[ max-writes=-1\n" + // 6: user again, two problems
		"e\n" // 7
	_, err := Parse(strings.NewReader(text))
	want := []string{
		"line 2: name: already that of line 1",
		"line 3: secret: token already that of line 1",
		"line 6: write: pattern 2: syntax error in pattern",
		"line 6: max-writes: want a whole number from 1",
		"line 6: secret: user already that of line 5",
		"line 7: want NAME SECRET [key=value ...]",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

// TestParseLongLine: a line longer than the scanner takes is an error of
// that line.
func TestParseLongLine(t *testing.T) {
	t.Parallel()
	text := "a " + HashToken("a") + "\nb " + HashToken("b") + " write=" + strings.Repeat("x", 70_000) + "\n"
	if _, err := Parse(strings.NewReader(text)); err == nil || !strings.HasPrefix(err.Error(), "line 2: longer than") {
		t.Errorf("got %v, want line 2 too long", err)
	}
}

// TestLoad: a file read from its path; its problems name the path and
// line; a file that cannot be read is the error of os.Open.
func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte(testFile(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("a b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(good)
	if err != nil || len(f.Credentials()) != 3 {
		t.Fatalf("Load: got %v, want 3 credentials", err)
	}
	if c, err := f.Authenticate(basic("/write", testUser, testPassword)); name(c) != "bob" {
		t.Errorf("Authenticate: got %v, %v, want bob", c, err)
	}
	if _, err := Load(bad); err == nil || err.Error() != bad+":1: secret: want token:sha256:HEX or user:NAME:HASH" {
		t.Errorf("Load(bad): got %v, want %s:1 and the problem", err, bad)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing): got %v, want fs.ErrNotExist", err)
	}
}

// longRun is a run of 24 or more characters without a space.
var longRun = regexp.MustCompile(`\S{24,}`)

// FuzzParse: Parse never panics; an error is one problem a line, each
// beginning "line N: ", and holds no run of characters as long as a hash
// or a token, which could only have come from the input.
func FuzzParse(f *testing.F) {
	f.Add(testFile(f))
	f.Add("a " + HashToken("x") + " write=a,[b query=*,, role= max-writes=x junk\n")
	f.Add("a user:" + strings.Repeat("u", 40) + ":$2y$10$" + strings.Repeat("A", 53) + "\nb\n#c\n")
	f.Add("a " + HashToken("x") + "\na " + HashToken("x") + "\n")
	lineNo := regexp.MustCompile(`^line \d+: `)
	f.Fuzz(func(t *testing.T, text string) {
		_, err := Parse(strings.NewReader(text))
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !lineNo.MatchString(line) {
				t.Errorf("%q: not a line's problem", line)
			}
		}
		if run := longRun.FindString(err.Error()); run != "" {
			t.Errorf("%q holds %q", err, run)
		}
	})
}
