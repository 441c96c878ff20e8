package hostile

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// UDP load: Telegraf's cpu lines of 1,000 hosts × 9 series, 10 a
// datagram, as pginflux bench sends by default.
const (
	udpHosts         = 1000
	udpSeries        = 9
	udpLinesPerDgram = 10
	udpDatagramSize  = 8192
)

// UDPResult is what UDPLoad sent.
type UDPResult struct {
	Rate      float64 `json:"rate"` // asked, lines/s
	Lines     int64   `json:"lines"`
	Datagrams int64   `json:"datagrams"`
	// FailedDatagrams were refused by the kernel (nothing listening, say).
	FailedDatagrams int64   `json:"failed_datagrams"`
	Seconds         float64 `json:"seconds"`
	LastError       string  `json:"last_error,omitempty"`
}

// UDPLoad sends Telegraf-like cpu lines (loadgen's workload) to addr at
// rate lines a second, for dur or until ctx ends, with two sockets.
func UDPLoad(ctx context.Context, addr string, rate float64, dur time.Duration) (*UDPResult, error) {
	ap, err := loadgen.ResolveUDP(ctx, net.DefaultResolver, addr, false)
	if err != nil {
		return nil, fmt.Errorf("check target: %w", err)
	}
	if rate <= 0 || dur <= 0 || dur > time.Hour {
		return nil, fmt.Errorf("rate %v, duration %v: want both more than 0, at most an hour", rate, dur)
	}
	w, err := loadgen.NewWorkload("cpu", udpHosts, udpSeries)
	if err != nil {
		return nil, fmt.Errorf("make udp workload: %w", err)
	}
	sent, err := loadgen.Send(ctx, loadgen.SendConfig{
		Address:          ap,
		Workload:         w,
		Base:             time.Now(),
		Rate:             rate,
		Lines:            int64(rate*dur.Seconds()) + 1,
		Duration:         dur,
		Senders:          2,
		LinesPerDatagram: udpLinesPerDgram,
		MaxDatagramSize:  udpDatagramSize,
	})
	if err != nil {
		return nil, fmt.Errorf("send udp: %w", err)
	}
	r := &UDPResult{Rate: rate, Lines: sent.Lines, Datagrams: sent.Datagrams,
		FailedDatagrams: sent.FailedDatagrams, Seconds: sent.Seconds()}
	if sent.LastError != nil {
		r.LastError = sent.LastError.Error()
	}
	return r, nil
}
