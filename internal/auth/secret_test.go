package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestHashToken: the SHA-256 of the token, as the package doc's example
// and sha256sum write it.
func TestHashToken(t *testing.T) {
	t.Parallel()
	const want = "token:sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	if got := HashToken("foo"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestHashPassword: a SECRET field at cost 10 that Parse takes and
// Authenticate lets in; user names and passwords it cannot make one of.
func TestHashPassword(t *testing.T) {
	t.Parallel()
	field, err := HashPassword("grafana", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	hash, ok := strings.CutPrefix(field, "user:grafana:")
	if !ok {
		t.Fatalf("got %q, want user:grafana:<hash>", field)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); cost != 10 || err != nil {
		t.Errorf("cost: got %d, %v, want 10", cost, err)
	}
	f := mustParse(t, Options{}, "grafana "+field+" query=*\n")
	if c, err := f.Authenticate(basic("/query", "grafana", "correct horse")); name(c) != "grafana" {
		t.Errorf("Authenticate: got %v, %v, want grafana", c, err)
	}
	for _, bad := range []struct{ user, password string }{
		{"", "pw"},
		{"a:b", "pw"},
		{"a b", "pw"},
		{"a\tb", "pw"},
		{"ok", ""},
	} {
		if got, err := HashPassword(bad.user, bad.password); err == nil {
			t.Errorf("HashPassword(%q, %q): got %q, want an error", bad.user, bad.password, got)
		}
	}
	if _, err := HashPassword("ok", strings.Repeat("p", 73)); !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Errorf("a 73-byte password: got %v, want bcrypt.ErrPasswordTooLong", err)
	}
}

// TestOtherBcrypts: hashes made elsewhere: $2y$ as htpasswd -B and PHP
// make them, $2b$ as OpenBSD and Python's bcrypt do.
func TestOtherBcrypts(t *testing.T) {
	t.Parallel()
	// PHP's password_verify example.
	const php = "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq"
	own := strings.TrimPrefix(userSecret(t, "x", "pw2b"), "user:x:")
	tests := []struct {
		name, hash, password string
	}{
		{"2y", php, "rasmuslerdorf"},
		{"2b", "$2b$" + own[4:], "pw2b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustParse(t, Options{}, "u user:u:"+tt.hash+"\n")
			if c, err := f.Authenticate(basic("/write", "u", tt.password)); name(c) != "u" {
				t.Errorf("got %v, %v, want u", c, err)
			}
			if _, err := f.Authenticate(basic("/write", "u", tt.password+"x")); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("wrong password: got %v, want ErrBadCredentials", err)
			}
		})
	}
}
