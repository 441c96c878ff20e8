package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/auth"
)

// TestAuthHashCommand: the printed field makes a credentials file line
// that lets the secret in, and the secret itself is printed nowhere.
func TestAuthHashCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args   []string
		secret string
		authz  string
	}{
		{nil, "s3cret-token", "Token s3cret-token"},
		{[]string{"--user", "alice"}, "wonderland", "Basic YWxpY2U6d29uZGVybGFuZA=="},
	} {
		var out, errOut bytes.Buffer
		err := runCommand(t.Context(), append([]string{"auth-hash"}, c.args...), func(string) string { return "" },
			strings.NewReader(c.secret+"\n"), &out, &errOut)
		if err != nil {
			t.Fatalf("auth-hash %v: %v", c.args, err)
		}
		field := strings.TrimSpace(out.String())
		if strings.Contains(field, c.secret) {
			t.Errorf("auth-hash %v printed the secret", c.args)
		}
		f, err := auth.Parse(strings.NewReader(fmt.Sprintf("x %s write=*\n", field)))
		if err != nil {
			t.Fatalf("auth-hash %v: %q does not parse: %v", c.args, field, err)
		}
		r := httptest.NewRequest(http.MethodPost, "/write", nil)
		r.Header.Set("Authorization", c.authz)
		if cred, err := f.Authenticate(r); err != nil || cred.Name != "x" {
			t.Errorf("auth-hash %v: the secret does not authenticate: %v", c.args, err)
		}
	}
	err := runCommand(t.Context(), []string{"auth-hash", "s3cret"}, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "never from the command line") {
		t.Errorf("a secret on the command line: got %v, want refused", err)
	}
}
