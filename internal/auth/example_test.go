package auth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pginflux/pginflux/internal/auth"
)

// A credentials file with one token, and a request that writes with it.
func Example() {
	file := "# name  secret  rights\n" +
		"team-a " + auth.HashToken("foo") + " write=team_a query=team_a role=team_a_writer\n"
	f, err := auth.Parse(strings.NewReader(file))
	if err != nil {
		fmt.Println(err)
		return
	}

	r := httptest.NewRequest(http.MethodPost, "/api/v2/write?bucket=team_a", nil)
	r.Header.Set("Authorization", "Token foo")
	c, err := f.Authenticate(r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrBadCredentials):
		fmt.Println("401")
	case !c.CanWrite(r.URL.Query().Get("bucket")):
		fmt.Println("403")
	default:
		fmt.Println(c, "writes to team_a as", c.Role)
	}
	// Output: team-a writes to team_a as team_a_writer
}

// HashToken makes the SECRET field of a token.
func ExampleHashToken() {
	fmt.Println(auth.HashToken("foo"))
	// Output: token:sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
}
