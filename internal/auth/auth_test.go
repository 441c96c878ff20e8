package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestCanWrite: exact names, globs, * and none; the empty database (a
// request that names none) matches * alone; names are case-sensitive and
// a glob's * does not cross '/'. CanQuery reads Query the same way.
func TestCanWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		db       string
		want     bool
	}{
		{"exact", []string{"team_a"}, "team_a", true},
		{"exact other", []string{"team_a"}, "team_b", false},
		{"exact prefix", []string{"team_a"}, "team_ab", false},
		{"case", []string{"team_a"}, "Team_a", false},
		{"glob", []string{"team_*"}, "team_b", true},
		{"glob empty rest", []string{"team_*"}, "team_", true},
		{"glob other", []string{"team_*"}, "other", false},
		{"glob slash", []string{"team_*"}, "team_a/autogen", false},
		{"glob with slash", []string{"team_*/*"}, "team_a/autogen", true},
		{"class", []string{"metrics_[ab]"}, "metrics_b", true},
		{"class other", []string{"metrics_[ab]"}, "metrics_c", false},
		{"question", []string{"db?"}, "db1", true},
		{"list second", []string{"team_a", "shared"}, "shared", true},
		{"star", []string{"*"}, "anything/at all", true},
		{"star empty", []string{"*"}, "", true},
		{"star later", []string{"team_a", "*"}, "", true},
		{"glob empty", []string{"*_a"}, "", false},
		{"exact empty", []string{"team_a"}, "", false},
		{"none", nil, "team_a", false},
		{"none empty", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Credential{Write: tt.patterns, Query: tt.patterns}
			if got := c.CanWrite(tt.db); got != tt.want {
				t.Errorf("CanWrite(%q) with %q: got %v, want %v", tt.db, tt.patterns, got, tt.want)
			}
			if got := c.CanQuery(tt.db); got != tt.want {
				t.Errorf("CanQuery(%q) with %q: got %v, want %v", tt.db, tt.patterns, got, tt.want)
			}
		})
	}
}

// TestWriteAndQueryApart: write= and query= are separate rights.
func TestWriteAndQueryApart(t *testing.T) {
	t.Parallel()
	f := mustParse(t, Options{}, "w "+HashToken("w")+" write=a\nq "+HashToken("q")+" query=a\n")
	creds := f.Credentials()
	if w, q := creds[0], creds[1]; !w.CanWrite("a") || w.CanQuery("a") || q.CanWrite("a") || !q.CanQuery("a") {
		t.Errorf("write=a: CanWrite %v CanQuery %v; query=a: CanWrite %v CanQuery %v, want true false false true",
			w.CanWrite("a"), w.CanQuery("a"), q.CanWrite("a"), q.CanQuery("a"))
	}
}

// TestCredentialShowsNameOnly: logged, printed or formatted with its
// fields, a credential shows its name and nothing of its secret.
func TestCredentialShowsNameOnly(t *testing.T) {
	t.Parallel()
	text := testFile(t)
	f := mustParse(t, Options{}, text)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for _, c := range f.Credentials() {
		buf.Reset()
		log.Info("write", "credential", c)
		if want := "credential=" + c.Name + "\n"; !strings.HasSuffix(buf.String(), want) {
			t.Errorf("logged %q, want it to end %q", buf.String(), want)
		}
		shown := buf.String() + fmt.Sprint(c) + fmt.Sprintf("%+v %#v", c, c)
		for _, s := range []string{testToken, testPassword, colonToken, HashToken(testToken)[len(tokenPrefix):], "$2a$"} {
			if strings.Contains(shown, s) {
				t.Errorf("%s shown as %q, which holds %q", c.Name, shown, s)
			}
		}
	}
	var none *Credential
	if none.String() != "" {
		t.Errorf("nil credential: got %q, want \"\"", none.String())
	}
}
