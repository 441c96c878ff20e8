package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxdb1 "github.com/influxdata/influxdb1-client/v2"
)

// clientServer is an HTTP server that authenticates every request with f
// and answers 204, or 401; it sends what each request authenticated as
// on got.
func clientServer(t *testing.T, f *File) (url string, got <-chan string) {
	t.Helper()
	names := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := f.Authenticate(r)
		if err != nil {
			names <- err.Error()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		names <- c.Name
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, names
}

// TestClientLibraries: InfluxDB's Go client libraries, as users configure
// them, authenticate: the 1.x client with a user and password or with a
// token as its password; the 2.x client with a token or, as for
// InfluxDB 1.8, with user:password as its token.
func TestClientLibraries(t *testing.T) {
	t.Parallel()
	f := mustParse(t, Options{}, testFile(t))
	v1 := func(user, password string) func(string) error {
		return func(url string) error {
			c, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: url, Username: user, Password: password, Timeout: 10 * time.Second})
			if err != nil {
				return err
			}
			defer c.Close()
			bp, err := influxdb1.NewBatchPoints(influxdb1.BatchPointsConfig{Database: "team_a"})
			if err != nil {
				return err
			}
			p, err := influxdb1.NewPoint("cpu", nil, map[string]any{"usage": 1.5}, time.Unix(1700000000, 0))
			if err != nil {
				return err
			}
			bp.AddPoint(p)
			return c.Write(bp)
		}
	}
	v2 := func(token string) func(string) error {
		return func(url string) error {
			c := influxdb2.NewClientWithOptions(url, token, influxdb2.DefaultOptions().SetLogLevel(0))
			defer c.Close()
			return c.WriteAPIBlocking("org", "team_a").WriteRecord(t.Context(), "cpu usage=1.5 1700000000000000000")
		}
	}
	tests := []struct {
		name  string
		write func(url string) error
		want  string
	}{
		{"1.x user", v1(testUser, testPassword), "bob"},
		{"1.x token as password", v1("anything", testToken), "team-a"},
		{"1.x wrong password", v1(testUser, "wrong"), "credentials match none"},
		{"2.x token", v2(testToken), "team-a"},
		{"2.x token with colon", v2(colonToken), "telegraf"},
		{"2.x user:password", v2(testUser + ":" + testPassword), "bob"},
		{"2.x wrong token", v2("wrong"), "credentials match none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, got := clientServer(t, f)
			err := tt.write(url)
			if name := <-got; name != tt.want {
				t.Errorf("authenticated as %q, want %q", name, tt.want)
			}
			if ok := tt.want == "bob" || tt.want == "team-a" || tt.want == "telegraf"; ok != (err == nil) {
				t.Errorf("the client's write: got %v", err)
			}
		})
	}
}
