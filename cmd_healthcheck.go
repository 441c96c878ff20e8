package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/cli"
)

func init() {
	commands["healthcheck"] = command{
		summary: "exit 0 when a running pginflux answers /healthz, 1 otherwise (for Docker's HEALTHCHECK)",
		run:     runHealthcheck,
	}
}

// runHealthcheck is "pginflux healthcheck": a GET of /healthz of the
// pginflux on this host, for images without a shell or curl (distroless).
// Every failure exits 1, never 2, which Docker reserves.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("pginflux healthcheck", flag.ContinueOnError)
	httpAddress := fs.String("http-address", "", "HTTP `address` pginflux serves on (default: $"+config.EnvName("http-address")+", else its default); an unspecified host means 127.0.0.1")
	url := fs.String("url", "", "`URL` to GET instead, such as http://127.0.0.1:8086/readyz (https: the certificate is not verified)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `duration`")
	rest, err := cli.Parse(fs, args)
	if errors.Is(err, cli.ErrHelp) {
		fmt.Fprint(stdout, "Usage: pginflux healthcheck [flags]\n\n"+
			"Exits 0 when pginflux answers GET /healthz with 200, else 1 with the reason\n"+
			"(bad flags too: Docker reserves exit status 2).\n\nFlags:\n")
		cli.PrintFlags(stdout, fs, nil)
		return nil
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q (flags start with --)", rest[0])
	}
	target := *url
	if target == "" {
		addr := *httpAddress
		if addr == "" {
			addr = getenv(config.EnvName("http-address"))
		}
		if addr == "" {
			f, _ := config.Lookup("http-address")
			addr = f.Default
		}
		var err error
		if target, err = healthzURL(addr); err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		if getenv(config.EnvName("tls-cert")) != "" {
			// pginflux serves HTTPS with --tls-cert.
			target = "https" + strings.TrimPrefix(target, "http")
		}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy from the environment: the target is this host.
	transport := &http.Transport{DisableKeepAlives: true}
	if strings.HasPrefix(target, "https://") {
		// This checks that pginflux lives, not who it is: its certificate
		// names what clients dial, seldom 127.0.0.1.
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Transport: transport}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// healthzURL turns an --http-address into the URL of its /healthz as seen
// from this host: a wildcard or missing host becomes 127.0.0.1.
func healthzURL(addr string) (string, error) {
	resolved, err := config.ResolveAddress("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("http address: %w", err)
	}
	if resolved == "" {
		return "", errors.New("http address is empty: HTTP is disabled, so there is nothing to check")
	}
	host, port, err := net.SplitHostPort(resolved)
	if err != nil {
		return "", fmt.Errorf("http address: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
