package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorized reports whether r carries the token of Config.Token, in any
// of the forms InfluxDB clients send it: "Authorization: Token <t>" (2.x
// and Telegraf's influxdb_v2 output), "Authorization: Bearer <t>", basic
// auth with <t> as the password (1.x clients with a username and
// password), or ?p=<t> (1.x). The user name is not looked at. Tokens are
// compared in constant time, through their SHA-256, so that neither their
// bytes nor their length leak through timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	ok := false
	check := func(given string) {
		if given == "" {
			return
		}
		h := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1 {
			ok = true
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, cred, _ := strings.Cut(auth, " ")
		switch {
		case strings.EqualFold(scheme, "Token"), strings.EqualFold(scheme, "Bearer"):
			check(strings.TrimSpace(cred))
		case strings.EqualFold(scheme, "Basic"):
			if _, pw, found := r.BasicAuth(); found {
				check(pw)
			}
		}
	}
	check(r.URL.Query().Get("p"))
	return ok
}
