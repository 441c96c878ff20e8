package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The credentials most tests use: a token, a 1.x user, and a token with
// a ':' in it.
const (
	testToken    = "s3cret-token-of-team-a"
	testUser     = "bob"
	testPassword = "hunter2"
	colonToken   = "tele:graf-token"
)

// testFile is a credentials file with the credentials above, the user's
// hashed at bcrypt's lowest cost.
func testFile(t testing.TB) string {
	t.Helper()
	return "team-a " + HashToken(testToken) + " write=team_a query=team_a role=team_a_writer\n" +
		"bob " + userSecret(t, testUser, testPassword) + " query=*\n" +
		"telegraf " + HashToken(colonToken) + " write=telegraf_* max-writes=4\n"
}

// userSecret returns the SECRET field of user and password, hashed at
// bcrypt's lowest cost so that tests are fast; HashPassword's cost 10 is
// tested once, in TestHashPassword.
func userSecret(t testing.TB, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return userPrefix + user + ":" + string(hash)
}

// mustParse parses text with opts, failing t on error.
func mustParse(t testing.TB, opts Options, text string) *File {
	t.Helper()
	f, err := opts.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// counter counts bcrypt verifications, through Options'
// CompareHashAndPassword.
type counter struct{ n atomic.Int64 }

func (c *counter) compare(hash, password []byte) error {
	c.n.Add(1)
	return bcrypt.CompareHashAndPassword(hash, password)
}

func (c *counter) options() Options { return Options{CompareHashAndPassword: c.compare} }

// request is a GET of target with the header pairs given.
func request(target string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// basic is a request of target with basic auth.
func basic(target, user, password string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, nil)
	r.SetBasicAuth(user, password)
	return r
}

// name is the name of c, "" for nil.
func name(c *Credential) string { return c.String() }
