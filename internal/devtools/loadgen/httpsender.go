package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// sendHTTP is Send over HTTP: cfg.Senders goroutines each POST bodies of
// cfg.LinesPerDatagram lines to cfg.HTTPURL (gzipped with cfg.Gzip), one
// request at a time, paced as datagrams are. A request answered 204 counts
// its lines as sent; any other answer, or none, counts them as failed.
func sendHTTP(ctx context.Context, cfg SendConfig) (*SendResult, error) {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DialContext: LoopbackDialer().DialContext, MaxIdleConnsPerHost: cfg.Senders}}
	}
	start := time.Now()
	// The deadline stops new requests; one under way gets its answer,
	// so that what pginflux took counts as sent.
	paced, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()
	results := make([]SendResult, cfg.Senders)
	var wg sync.WaitGroup
	for i := range cfg.Senders {
		quota := quotaOf(cfg.Lines, i, cfg.Senders)
		gen := NewGenerator(cfg.Workload, cfg.Base, uint64(i), uint64(cfg.Senders))
		pacer := NewPacer(cfg.Rate/float64(cfg.Senders), DefaultSlice)
		pacer.start = start
		res := &results[i]
		wg.Go(func() {
			var body, raw bytes.Buffer
			zw := gzip.NewWriter(&body)
			var generated int64
			for generated < quota {
				if _, err := pacer.Wait(paced, cfg.LinesPerDatagram); err != nil {
					break
				}
				k := min(int64(cfg.LinesPerDatagram), quota-generated)
				buf := raw.AvailableBuffer()
				for range k {
					buf = gen.AppendLine(buf)
				}
				raw.Write(buf)
				generated += k
				payload := raw.Bytes()
				if cfg.Gzip {
					body.Reset()
					zw.Reset(&body)
					zw.Write(payload)
					zw.Close()
					payload = body.Bytes()
				}
				err := post(ctx, client, cfg.HTTPURL, payload, cfg.Gzip)
				raw.Reset()
				res.Datagrams++
				if err != nil {
					res.FailedDatagrams++
					res.FailedLines += k
					res.LastError = err
				} else {
					res.Lines += k
					res.Bytes += int64(len(payload))
					cfg.Live.add(k, 1)
				}
				pacer.Take(int(k))
			}
			res.End = time.Now()
			res.LastSeq = gen.Next() - gen.step + 1
			if generated == 0 {
				res.LastSeq = 0
			}
		})
	}
	wg.Wait()
	return sumResults(start, results), nil
}

// post sends one body and wants 204.
func post(ctx context.Context, client *http.Client, url string, body []byte, gzipped bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
