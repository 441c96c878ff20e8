package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"testing/synctest"
)

// TestAuthenticate: every form in which clients send credentials, which
// form wins when a request carries several, and what is no credentials
// and what are bad ones.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := mustParse(t, Options{}, testFile(t))
	q := func(u, p string) string { return "/query?" + url.Values{"u": {u}, "p": {p}, "db": {"x"}}.Encode() }
	tests := []struct {
		name string
		r    *http.Request
		want string // the credential's name, or the error
	}{
		{"Token", request("/api/v2/write", "Authorization", "Token "+testToken), "team-a"},
		{"Bearer", request("/api/v3/write_lp", "Authorization", "Bearer "+testToken), "team-a"},
		{"scheme case", request("/api/v2/write", "Authorization", "token "+testToken), "team-a"},
		{"spaces", request("/api/v2/write", "Authorization", "Token  "+testToken+" "), "team-a"},
		{"Token with colon", request("/api/v2/write", "Authorization", "Token "+colonToken), "telegraf"},
		{"Token user:password", request("/api/v2/write", "Authorization", "Token "+testUser+":"+testPassword), "bob"},
		{"basic", basic("/write", testUser, testPassword), "bob"},
		{"basic token", basic("/write", "anyone", testToken), "team-a"},
		{"basic token no user", basic("/write", "", testToken), "team-a"},
		{"basic token of user", basic("/write", testUser, testToken), "team-a"},
		{"query", request(q(testUser, testPassword)), "bob"},
		{"query token", request(q("anyone", testToken)), "team-a"},
		{"query token alone", request("/write?db=x&p=" + url.QueryEscape(colonToken)), "telegraf"},
		{"query first", request(q(testUser, testPassword), "Authorization", "Token wrong"), "bob"},
		{"query first, wrong", request(q(testUser, "wrong"), "Authorization", "Token "+testToken), "credentials match none"},
		{"empty p, header", request("/write?u=bob&p=", "Authorization", "Token "+testToken), "team-a"},

		{"nothing", request("/write?db=x"), "no credentials"},
		{"empty u and p", request("/write?u=&p="), "no credentials"},
		{"u alone", request("/write?u=bob"), "credentials match none"},
		{"wrong token", request("/api/v2/write", "Authorization", "Token "+testToken+"x"), "credentials match none"},
		{"empty token", request("/api/v2/write", "Authorization", "Token "), "credentials match none"},
		{"scheme alone", request("/api/v2/write", "Authorization", "Bearer"), "credentials match none"},
		{"unknown scheme", request("/api/v2/write", "Authorization", "Digest "+testToken), "credentials match none"},
		{"Bearer user:password", request("/api/v2/write", "Authorization", "Bearer "+testUser+":"+testPassword), "credentials match none"},
		{"Token wrong password", request("/api/v2/write", "Authorization", "Token "+testUser+":x"), "credentials match none"},
		{"wrong password", basic("/write", testUser, testPassword+"x"), "credentials match none"},
		{"password of no user", basic("/write", "alice", testPassword), "credentials match none"},
		{"empty password", basic("/write", testUser, ""), "credentials match none"},
		{"user is name", basic("/write", "team-a", testToken+"x"), "credentials match none"},
		{"basic not base64", request("/write", "Authorization", "Basic !!!"), "credentials match none"},
		{"basic no colon", request("/write", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(testToken))), "credentials match none"},
		{"query wrong", request(q(testUser, "x")), "credentials match none"},
		{"query no user", request(q("", testPassword)), "credentials match none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := f.Authenticate(tt.r)
			got := name(c)
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if (c == nil) == (err == nil) {
				t.Errorf("got %v and %v, want one of them", c, err)
			}
		})
	}
}

// TestAuthenticateErrors: the two errors are told apart with errors.Is.
func TestAuthenticateErrors(t *testing.T) {
	t.Parallel()
	f := mustParse(t, Options{}, testFile(t))
	if _, err := f.Authenticate(request("/write")); !errors.Is(err, ErrNoCredentials) || errors.Is(err, ErrBadCredentials) {
		t.Errorf("none: got %v, want ErrNoCredentials", err)
	}
	if _, err := f.Authenticate(request("/write", "Authorization", "Token x")); !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrNoCredentials) {
		t.Errorf("bad: got %v, want ErrBadCredentials", err)
	}
}

// TestPasswordVerifiedOnce: a user and password are checked with bcrypt
// the first time only; a wrong password is checked every time; a token
// never is; a new File (a reload) checks again.
func TestPasswordVerifiedOnce(t *testing.T) {
	t.Parallel()
	var n counter
	text := testFile(t)
	f := mustParse(t, n.options(), text)
	auth := func(f *File, r *http.Request, want string) {
		t.Helper()
		if c, err := f.Authenticate(r); name(c) != want {
			t.Errorf("got %v, %v, want %q", c, err, want)
		}
	}
	for range 3 {
		auth(f, basic("/write", testUser, testPassword), "bob")
		auth(f, request("/query?u=bob&p="+testPassword), "bob")
		auth(f, request("/write", "Authorization", "Token "+testToken), "team-a")
	}
	if got := n.n.Load(); got != 1 {
		t.Errorf("the same password 6 times: got %d bcrypts, want 1", got)
	}
	auth(f, basic("/write", testUser, "wrong"), "")
	auth(f, basic("/write", testUser, "wrong"), "")
	if got := n.n.Load(); got != 3 {
		t.Errorf("a wrong password twice: got %d bcrypts in all, want 3", got)
	}
	reloaded := mustParse(t, n.options(), text)
	auth(reloaded, basic("/write", testUser, testPassword), "bob")
	auth(reloaded, basic("/write", testUser, testPassword), "bob")
	if got := n.n.Load(); got != 4 {
		t.Errorf("after a reload: got %d bcrypts in all, want 4", got)
	}
}

// TestPasswordCacheBounded: the File remembers at most CacheSize pairs,
// and a pair it forgot is checked again.
func TestPasswordCacheBounded(t *testing.T) {
	t.Parallel()
	var n counter
	opts := n.options()
	opts.CacheSize = 2
	text := ""
	for i := range 3 {
		text += fmt.Sprintf("u%d %s\n", i, userSecret(t, fmt.Sprint("u", i), "pw"))
	}
	f := mustParse(t, opts, text)
	for round := range 3 {
		for i := range 3 {
			u := fmt.Sprint("u", i)
			if c, err := f.Authenticate(basic("/write", u, "pw")); name(c) != u {
				t.Errorf("round %d: got %v, %v, want %s", round, c, err, u)
			}
			f.v.mu.Lock()
			remembered := len(f.v.verified)
			f.v.mu.Unlock()
			if remembered > 2 {
				t.Errorf("round %d, %s: %d pairs remembered, want at most 2", round, u, remembered)
			}
		}
	}
	// Three users in turn, two remembered: the first round checks all
	// three, and each later round at least the one forgotten.
	if got := n.n.Load(); got < 5 || got > 9 {
		t.Errorf("got %d bcrypts, want 5 to 9", got)
	}
}

// TestConcurrentVerificationShared: requests of one user and password
// that arrive while its bcrypt runs wait for it, right or wrong, rather
// than each running its own.
func TestConcurrentVerificationShared(t *testing.T) {
	t.Parallel()
	text := testFile(t)
	for _, password := range []string{testPassword, "wrong"} {
		synctest.Test(t, func(t *testing.T) {
			var n counter
			release := make(chan struct{})
			f := mustParse(t, Options{CompareHashAndPassword: func(hash, password []byte) error {
				<-release
				return n.compare(hash, password)
			}}, text)
			const clients = 10
			got := make([]*Credential, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Go(func() { got[i], _ = f.Authenticate(basic("/write", testUser, password)) })
			}
			synctest.Wait() // one in bcrypt, the others waiting for it
			close(release)
			wg.Wait()
			if calls := n.n.Load(); calls != 1 {
				t.Errorf("%s: %d clients at once: got %d bcrypts, want 1", password, clients, calls)
			}
			for i, c := range got {
				if want := password == testPassword; (c != nil) != want || c != nil && c.Name != "bob" {
					t.Errorf("%s: client %d: got %v, want bob: %v", password, i, c, want)
				}
			}
		})
	}
}
