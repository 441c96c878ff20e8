package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/internal/devtools/testcert"
)

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema).Base
	hostPort := strings.TrimPrefix(base, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	noEnv := func(string) string { return "" }

	for _, c := range []struct {
		name string
		args []string
		env  func(string) string
	}{
		{"url", []string{"healthcheck", "--url", base + "/healthz"}, noEnv},
		{"readyz url", []string{"healthcheck", "--url", base + "/readyz"}, noEnv},
		{"http address", []string{"healthcheck", "--http-address", ":" + port}, noEnv},
		{"environment", []string{"healthcheck"}, func(k string) string {
			if k == "PGINFLUX_HTTP_ADDRESS" {
				return hostPort
			}
			return ""
		}},
	} {
		if err := run(t.Context(), c.args, c.env); err != nil {
			t.Errorf("%s: got %v, want nil (exit 0)", c.name, err)
		}
	}

	// A closed port: exit 1 with the reason, never 2 (Docker reserves it).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"healthcheck", "--http-address", closed},
		{"healthcheck", "--url", base + "/nothing"},
	} {
		err := run(t.Context(), args, noEnv)
		var usage usageError
		if err == nil || errors.As(err, &usage) {
			t.Errorf("%v: got %v, want an error for exit status 1", args, err)
		}
	}
	err = runHealthcheck(t.Context(), []string{"--no-such-flag"}, noEnv, nil, io.Discard, io.Discard)
	var usage usageError
	if err == nil || errors.As(err, &usage) {
		t.Errorf("a bad flag: got %v, want an error for exit status 1", err)
	}
}

func TestHealthzURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ addr, want, wantErr string }{
		{addr: ":8086", want: "http://127.0.0.1:8086/healthz"},
		{addr: "0.0.0.0:9000", want: "http://127.0.0.1:9000/healthz"},
		{addr: "[::]:9000", want: "http://127.0.0.1:9000/healthz"},
		{addr: "[::1]:9000", want: "http://[::1]:9000/healthz"},
		{addr: "10.1.2.3:9000", want: "http://10.1.2.3:9000/healthz"},
		{addr: "localhost:http", want: "http://localhost:80/healthz"},
		{addr: "", wantErr: "HTTP is disabled"},
		{addr: "8086", wantErr: "not host:port"},
	} {
		got, err := healthzURL(c.addr)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("healthzURL(%q): got %q, %v; want an error containing %q", c.addr, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("healthzURL(%q): got %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
}

// TestHealthcheckHTTPS: pginflux healthcheck, as the image runs it with
// the daemon's environment, checks a daemon serving HTTPS.
func TestHealthcheckHTTPS(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	certFile, keyFile, _ := testcert.Files(t)
	base := daemontest.Start(t, schema, "--tls-cert", certFile, "--tls-key", keyFile).Base
	hostPort := strings.TrimPrefix(base, "http://")
	env := func(k string) string {
		switch k {
		case "PGINFLUX_HTTP_ADDRESS":
			return hostPort
		case "PGINFLUX_TLS_CERT":
			return certFile
		}
		return ""
	}
	if err := run(t.Context(), []string{"healthcheck"}, env); err != nil {
		t.Errorf("healthcheck over https: %v", err)
	}
	if err := run(t.Context(), []string{"healthcheck", "--url", "https://" + hostPort + "/readyz"}, func(string) string { return "" }); err != nil {
		t.Errorf("healthcheck --url https: %v", err)
	}
}
