package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/ingest/tcp"
	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/sink"
)

// testHookTCPListening, when set, is called with the TCP address once
// pginflux listens on it, so that tests can listen on port 0.
var testHookTCPListening func(tcp net.Addr)

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

// streams are the transports that feed the sink through shared batchers
// rather than the UDP pipeline: TCP connections, and HTTP writes.
type streams struct {
	tcp       *tcp.Listener // nil without --tcp-address
	tcpShared *sink.Shared
	tcpDone   chan error
	stopTCP   context.CancelFunc
	writes    *httpWrites // nil without HTTP
	log       *slog.Logger
}

// startStreams binds --tcp-address, when set, and serves it into s until
// ctx ends (or stop); its connections share one batcher, apart from the
// HTTP writes' so that a busy TCP stream never delays a write's commit.
// writes (nil without HTTP) is only kept, for stop: it opens later.
func startStreams(ctx context.Context, cfg config.Config, reg prometheus.Registerer, s *sink.Sink, writes *httpWrites, log *slog.Logger) (*streams, error) {
	st := &streams{writes: writes, log: log}
	if cfg.TCPAddress == "" {
		return st, nil
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	sh := s.NewShared()
	stream := pipeline.NewStream(pipeline.StreamConfig{
		Transport:     "tcp",
		Precision:     cfg.Precision,
		MaxLineSize:   cfg.MaxLineSize,
		RejectedTable: cfg.RejectedTable,
	}, sh, pipeline.NewStreamMetrics(reg, "tcp"), log)
	tcp, err := tcp.Listen(ctx, tcp.Config{
		Address:        cfg.TCPAddress,
		MaxConnections: tcp.DefaultMaxConnections,
		IdleTimeout:    cfg.TCPIdleTimeout,
		MaxLineSize:    cfg.MaxLineSize,
		TLS:            tlsCfg,
	}, func(src netip.AddrPort) tcp.ConnHandler { return stream.Open(src) }, tcp.NewMetrics(reg), log)
	if err != nil {
		sh.Close()
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	st.tcp, st.tcpShared, st.stopTCP, st.tcpDone = tcp, sh, cancel, make(chan error, 1)
	go func() { st.tcpDone <- tcp.Run(tctx) }()
	if testHookTCPListening != nil {
		testHookTCPListening(tcp.Addr())
	}
	return st, nil
}

// stop stops the TCP listener (its connections drain what the kernel
// holds), waits for the HTTP writes under way, and hands what their
// batchers hold to the sinks; sinks that the writes made for other
// schemas are closed too, within ctx. The sink of --schema is left to its
// owner.
func (st *streams) stop(ctx context.Context) {
	if st.tcp != nil {
		st.stopTCP()
		if err := <-st.tcpDone; err != nil {
			st.log.Error("tcp listener stopped", "err", err)
		}
		st.tcpShared.Close()
	}
	if st.writes != nil {
		if err := st.writes.stop(ctx); err != nil {
			st.log.Error("stopped with rows of other schemas not written", "err", err)
		}
	}
}

// readUDP reads UDP until ctx ends, or only waits for that when UDP is
// disabled (udp is nil).
func readUDP(ctx context.Context, ul *udp.Listener) error {
	if ul == nil {
		<-ctx.Done()
		return nil
	}
	return ul.Run(ctx)
}
