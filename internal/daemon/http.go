package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/internal/query"
)

// httpServer is the HTTP server running: /metrics, the probes, the write
// endpoints and /query.
type httpServer struct {
	srv    *httpapi.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// startHTTP binds --http-address and serves /metrics, /healthz, /readyz,
// /ping, /health and /ready from reg and ready, the write endpoints into
// writes and /query from them, over TLS with --tls-cert. It returns nil
// when --http-address is empty (HTTP disabled).
func startHTTP(cfg config.Config, opts Options, reg *prometheus.Registry, ready *readiness, writes *httpWrites, mem *budget.Budget,
	creds *atomic.Pointer[auth.File], log *slog.Logger) (*httpServer, error) {
	if cfg.HTTPAddress == "" {
		return nil, nil
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	hc := httpapi.Config{
		Address:  cfg.HTTPAddress,
		Registry: reg,
		Version:  opts.Version,
		Commit:   commit(),
		PProf:    cfg.PProf,
		Token:    cfg.HTTPToken,
		MaxBody:  cfg.HTTPMaxBody,
		TLS:      tlsCfg,

		MaxConnections: cfg.HTTPMaxConnections,
		MaxWrites:      cfg.HTTPMaxWrites,
		CommitTimeout:  opts.CommitTimeout,
		Memory:         mem.Account("http"),
		RequestMemory:  requestMemory,
		GzipMemory:     gzipMemory,
	}
	if creds != nil {
		hc.Auth = creds.Load
	}
	hc.Ready, hc.Checks = ready.probes()
	if writes != nil {
		hc.Writer, hc.Catalog = writes, writes
		hc.QueryTimeout = cfg.QueryTimeout
		hc.Reader = query.New(query.Options{
			Pool:          writes.catalogPool,
			Schema:        writes.querySchema,
			RejectedTable: cfg.RejectedTable,
			Timeout:       cfg.QueryTimeout,
			MaxPoints:     cfg.QueryMaxPoints,
			MaxSeries:     cfg.QueryMaxSeries,
			Memory:        mem.Account("query"),
			Log:           log,
		})
	}
	srv, err := httpapi.Listen(hc, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &httpServer{srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if err := srv.Run(ctx); err != nil {
			log.Error("http server stopped", "err", err)
		}
	}()
	return h, nil
}

// stop ends serving and waits until it has. A nil h does nothing.
func (h *httpServer) stop() {
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}

// loadTLS returns the TLS configuration of --tls-cert and --tls-key for
// HTTPS and TLS over TCP, or nil when they are not set.
func loadTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load the certificate of --tls-cert %s and --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// commit returns the VCS revision the binary was built from, when the
// build recorded it.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}
