package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

const (
	// chunkLines and chunkBytes bound one write request.
	chunkLines = 5000
	chunkBytes = 1 << 20
	// maxLine is the longest line of a data file.
	maxLine = 1 << 20
	// maxAnswer is the largest answer read from InfluxDB.
	maxAnswer = 64 << 20
)

// client talks to one InfluxDB 1.x over HTTP. It is safe for concurrent
// use.
type client struct {
	base string
	http *http.Client
}

// newClient checks that base is an http(s) URL on a loopback address and
// returns a client that dials loopback addresses only.
func newClient(ctx context.Context, base string, timeout time.Duration) (*client, error) {
	if err := loadgen.CheckURL(ctx, net.DefaultResolver, base, false); err != nil {
		return nil, fmt.Errorf("check -influxd: %w", err)
	}
	return &client{
		base: strings.TrimSuffix(base, "/"),
		http: &http.Client{
			Transport: &http.Transport{DialContext: loadgen.LoopbackDialer().DialContext},
			Timeout:   timeout,
		},
	}, nil
}

// do sends one request and returns the status and at most maxAnswer
// bytes of the body.
func (c *client) do(ctx context.Context, method, path string, params url.Values, body []byte) (int, []byte, error) {
	u := c.base + path + "?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot make request %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot send %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot read answer of %s %s: %w", method, path, err)
	}
	if len(b) > maxAnswer {
		return 0, nil, fmt.Errorf("answer of %s %s: more than %d bytes", method, path, maxAnswer)
	}
	return resp.StatusCode, b, nil
}

// ping checks that InfluxDB answers /ping with 204.
func (c *client) ping(ctx context.Context) error {
	status, _, err := c.do(ctx, http.MethodGet, "/ping", nil, nil)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		return fmt.Errorf("ping %s: status %d, want 204", c.base, status)
	}
	return nil
}

// databaseExists says whether SHOW DATABASES lists db.
func (c *client) databaseExists(ctx context.Context, db string) (bool, error) {
	status, b, err := c.do(ctx, http.MethodGet, "/query", url.Values{"q": {"SHOW DATABASES"}}, nil)
	if err != nil {
		return false, err
	}
	if status != http.StatusOK {
		return false, fmt.Errorf("show databases: status %d: %s", status, b)
	}
	var a struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return false, fmt.Errorf("cannot decode show databases: %w", err)
	}
	for _, r := range a.Results {
		for _, s := range r.Series {
			if slices.ContainsFunc(s.Values, func(v []any) bool { return len(v) > 0 && v[0] == db }) {
				return true, nil
			}
		}
	}
	return false, nil
}

// createDatabase creates db; InfluxDB takes an existing one as done.
func (c *client) createDatabase(ctx context.Context, db string) error {
	q := "CREATE DATABASE " + quoteIdent(db)
	status, b, err := c.do(ctx, http.MethodPost, "/query", url.Values{"q": {q}}, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("create database %s: status %d: %s", db, status, b)
	}
	return nil
}

// writeFile writes the line protocol of file into db in chunks of at
// most chunkLines lines or chunkBytes bytes, and returns the lines sent.
func (c *client) writeFile(ctx context.Context, db, file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("cannot open data: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var chunk []byte
	lines, inChunk := 0, 0
	flush := func() error {
		if inChunk == 0 {
			return nil
		}
		params := url.Values{"db": {db}, "precision": {"ns"}}
		status, b, err := c.do(ctx, http.MethodPost, "/write", params, chunk)
		if err != nil {
			return err
		}
		if status != http.StatusNoContent {
			return fmt.Errorf("write %d lines before line %d: status %d: %s", inChunk, lines+1, status, b)
		}
		chunk, inChunk = chunk[:0], 0
		return nil
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		if inChunk >= chunkLines || len(chunk)+len(line) > chunkBytes {
			if err := flush(); err != nil {
				return lines, err
			}
		}
		chunk = append(append(chunk, line...), '\n')
		inChunk++
		lines++
	}
	if err := sc.Err(); err != nil {
		return lines, fmt.Errorf("cannot read data %s: %w", file, err)
	}
	return lines, flush()
}

// query sends q (GET /query) and returns the status and the answer.
func (c *client) query(ctx context.Context, q query) (int, []byte, error) {
	params := url.Values{"db": {q.DB}, "q": {q.Text}}
	switch q.Epoch {
	case "":
		params.Set("epoch", "ns")
	case epochRFC3339:
	default:
		params.Set("epoch", q.Epoch)
	}
	return c.do(ctx, http.MethodGet, "/query", params, nil)
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
