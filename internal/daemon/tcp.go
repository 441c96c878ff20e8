package daemon

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/ingest/tcp"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/sink"
)

// tcpStream is --tcp-address served: its connections share one batcher,
// apart from the HTTP writes' so that a busy TCP stream never delays a
// write's commit.
type tcpStream struct {
	listener *tcp.Listener
	shared   *sink.Shared
	cancel   context.CancelFunc
	done     chan error
	log      *slog.Logger
}

// startTCP binds --tcp-address and serves it into s until stop; it
// returns nil when --tcp-address is empty (TCP disabled).
func startTCP(cfg config.Config, reg prometheus.Registerer, s *sink.Sink, mem *budget.Account, log *slog.Logger) (*tcpStream, error) {
	if cfg.TCPAddress == "" {
		return nil, nil
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
	ctx, cancel := context.WithCancel(context.Background())
	l, err := tcp.Listen(ctx, tcp.Config{
		Address:        cfg.TCPAddress,
		MaxConnections: tcp.DefaultMaxConnections,
		IdleTimeout:    cfg.TCPIdleTimeout,
		MaxLineSize:    cfg.MaxLineSize,
		TLS:            tlsCfg,
		Memory:         mem,
	}, func(src netip.AddrPort) tcp.ConnHandler { return stream.Open(src) }, tcp.NewMetrics(reg), log)
	if err != nil {
		cancel()
		sh.Close()
		return nil, err
	}
	t := &tcpStream{listener: l, shared: sh, cancel: cancel, done: make(chan error, 1), log: log}
	go func() { t.done <- l.Run(ctx) }()
	return t, nil
}

// beginStop tells the listener to stop accepting connections, as every
// transport stops at once when pginflux stops; stop waits for it. A nil t
// does nothing.
func (t *tcpStream) beginStop() {
	if t != nil {
		t.cancel()
	}
}

// stop stops the listener (its connections drain what the kernel holds)
// and hands what the batcher holds to the sink. A nil t does nothing.
func (t *tcpStream) stop() {
	if t == nil {
		return
	}
	t.cancel()
	if err := <-t.done; err != nil {
		t.log.Error("tcp listener stopped", "err", err)
	}
	t.shared.Close()
}
