package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
)

// MaxBombSize is the largest decompressed size of a bomb: 64 GiB, about
// 64 MB compressed.
const MaxBombSize = 64 << 30

// BombsResult is what Bombs did.
type BombsResult struct {
	Requests        int      `json:"requests"`
	Size            int64    `json:"decompressed_bytes"` // of one body
	CompressedBytes int      `json:"compressed_bytes"`   // of one body
	Outcomes        Outcomes `json:"outcomes"`
	SlowestSeconds  float64  `json:"slowest_seconds"` // the longest request, sent to answered
	Seconds         float64  `json:"seconds"`         // from the first request to the last answer
	// MostAttempts is the most attempts a bomb made: one told to try
	// later (429, 503) is sent again when Retry-After says, up to
	// BombAttempts times.
	MostAttempts int `json:"most_attempts"`
}

// BombAttempts bounds the attempts of one bomb.
const BombAttempts = 30

// Bombs sends n gzip bombs at once to base's /write: POSTs with
// Content-Encoding: gzip of a body that decompresses to size zero bytes
// (not line protocol), each sent again when told to try later, as
// Retry-After says. pginflux should answer each 413 in the end without
// holding what it decompresses. The body is compressed once and shared.
func Bombs(ctx context.Context, base string, n int, size int64) (*BombsResult, error) {
	if err := checkBase(ctx, base); err != nil {
		return nil, err
	}
	if err := checkClients("bombs", n); err != nil {
		return nil, err
	}
	if err := checkSize("bomb size", size, MaxBombSize); err != nil {
		return nil, err
	}
	body, err := GzipZeros(size)
	if err != nil {
		return nil, err
	}
	client := newClient(n)
	defer client.CloseIdleConnections()
	answers := make([]answer, n)
	attempts := make([]int, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			for attempts[i] = 1; ; attempts[i]++ {
				answers[i] = post(ctx, client, base+"/write", bytes.NewReader(body), int64(len(body)), "Content-Encoding", "gzip")
				if !answers[i].retryable() || attempts[i] == BombAttempts || !sleep(ctx, answers[i].wait()) {
					return
				}
			}
		})
	}
	wg.Wait()
	r := &BombsResult{Requests: n, Size: size, CompressedBytes: len(body), Seconds: time.Since(start).Seconds()}
	for i, a := range answers {
		r.Outcomes.add(a.outcome(), a.sample)
		r.SlowestSeconds = max(r.SlowestSeconds, a.took.Seconds())
		r.MostAttempts = max(r.MostAttempts, attempts[i])
	}
	return r, nil
}

// GzipZeros returns a gzip stream that decompresses to size zero bytes,
// about size/1000 bytes long. One MiB of zeros is compressed once, and
// its deflate blocks, ended by a sync flush (so byte-aligned, and
// referring to nothing before them), are repeated: a gigabyte takes a
// few hundred milliseconds, even under the race detector.
func GzipZeros(size int64) ([]byte, error) {
	const chunk = 1 << 20
	zeros := make([]byte, chunk)
	full, err := deflateFlushed(zeros)
	if err != nil {
		return nil, err
	}
	tail, err := deflateFlushed(zeros[:size%chunk])
	if err != nil {
		return nil, err
	}
	n := size / chunk
	b := make([]byte, 0, 10+int(n)*len(full)+len(tail)+10)
	// The header: magic, deflate, no flags, no time, no extra flags,
	// unknown OS.
	b = append(b, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
	crc := uint32(0)
	for range n {
		b = append(b, full...)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	b = append(b, tail...)
	crc = crc32.Update(crc, crc32.IEEETable, zeros[:size%chunk])
	// The last block: final, fixed Huffman codes, end of block at once.
	b = append(b, 0x03, 0x00)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return binary.LittleEndian.AppendUint32(b, uint32(size)), nil
}

// deflateFlushed returns the deflate blocks of p followed by a sync flush,
// without a final block.
func deflateFlushed(p []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("make gzip bomb: %w", err)
	}
	if _, err := w.Write(p); err != nil {
		return nil, fmt.Errorf("make gzip bomb: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("make gzip bomb: %w", err)
	}
	return b.Bytes(), nil
}
