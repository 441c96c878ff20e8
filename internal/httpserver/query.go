package httpserver

import (
	"encoding/json"
	"net/http"
	"strings"
)

// maxQueryBody bounds a /query form: a CREATE DATABASE statement.
const maxQueryBody = 1 << 20

// query answers /query as far as pginflux can: CREATE DATABASE, which
// Telegraf's InfluxDB output sends at startup, is taken as a no-op (schemas
// are made on first write); any other query gets 501.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	s.versionHeaders(w)
	if !s.authorized(r) {
		fail(w, apiV1, http.StatusUnauthorized, "authorization failed: give the token of --http-token")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxQueryBody)
	q := r.FormValue("q")
	n := createDatabases(q)
	if n == 0 {
		fail(w, apiV1, http.StatusNotImplemented, "pginflux does not serve queries: its data is in PostgreSQL, query it there (only CREATE DATABASE is taken, as a no-op)")
		return
	}
	type result struct {
		StatementID int `json:"statement_id"`
	}
	results := make([]result, n)
	for i := range results {
		results[i].StatementID = i
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(struct {
		Results []result `json:"results"`
	}{results})
}

// createDatabases returns the number of statements of q when every one is
// a CREATE DATABASE, else 0.
func createDatabases(q string) int {
	n := 0
	for _, stmt := range strings.Split(q, ";") {
		f := strings.Fields(stmt)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || !strings.EqualFold(f[0], "CREATE") || !strings.EqualFold(f[1], "DATABASE") {
			return 0
		}
		n++
	}
	return n
}
