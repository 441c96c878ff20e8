package importer

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
)

// Input is one source of line protocol: a file, or standard input.
type Input struct {
	// Name is how the input is named in messages and in the details of
	// rejected lines: the path as given, or "-" for standard input.
	Name string
	// Size is the input's size in bytes as stored (compressed, for a gzip
	// file), or -1 when unknown (a pipe).
	Size int64

	open func() (io.ReadCloser, error)
	// stream is read through a goroutine, so that an interrupt ends the
	// import even while a read blocks (on a terminal or a pipe).
	stream bool
}

// File returns the input of the file at path. It fails when the file
// cannot be read or is a directory, so that a typo stops an import before
// anything is written.
func File(path string) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return Input{}, err
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return Input{}, err
	}
	if fi.IsDir() {
		return Input{}, fmt.Errorf("%s is a directory", path)
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return Input{Name: path, Size: size, open: func() (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// Stream returns an input that reads r once: standard input, say. Its size
// is known when r is an *os.File open on a regular file (a redirect).
func Stream(name string, r io.Reader) Input {
	size := int64(-1)
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				size = fi.Size() - off
			}
		}
	}
	return Input{Name: name, Size: size, stream: true, open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }}
}

// gzipMagic starts every gzip stream; line protocol never starts with it.
var gzipMagic = []byte{0x1f, 0x8b}

// readBufferSize is the read size from files and pipes: large reads keep
// system calls rare. A plain file is read straight into chunk buffers.
const readBufferSize = 1 << 20

// opened is an input being read: the decompressed stream, and the raw
// bytes read so far for progress (compressed bytes for gzip, since the
// size known beforehand is the file's).
type opened struct {
	r       io.Reader
	gzipped bool
	close   func() error
}

// openInput opens in and, when it is gzip (by its .gz suffix or its first
// bytes), decompresses it. read counts the raw bytes read. A stream's
// reads end when ctx does, even one that blocks.
func openInput(ctx context.Context, in Input, read *atomic.Int64) (*opened, error) {
	rc, err := in.open()
	if err != nil {
		return nil, err
	}
	if in.stream {
		rc = interruptible(ctx, rc)
	}
	br := bufio.NewReaderSize(&countingReader{r: rc, n: read}, readBufferSize)
	magic, err := br.Peek(len(gzipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, err
	}
	isGzip := string(magic) == string(gzipMagic)
	if !isGzip && strings.HasSuffix(in.Name, ".gz") && len(magic) > 0 {
		rc.Close()
		return nil, errors.New("named .gz but not gzip (its first bytes are not gzip's)")
	}
	if !isGzip {
		return &opened{r: br, close: rc.Close}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &opened{r: zr, gzipped: true, close: func() error {
		zr.Close()
		return rc.Close()
	}}, nil
}

// countingReader counts the bytes read through it, for progress reports
// read from other goroutines.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// interruptible reads rc in a goroutine of its own, so that Read returns
// as soon as ctx ends, with its cause. The goroutine stays blocked in a
// read that never returns; a command that was interrupted exits anyway.
func interruptible(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, rc)
		pw.CloseWithError(err)
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	return &pipeCloser{PipeReader: pr, close: func() error {
		stop()
		pr.Close()
		return rc.Close()
	}}
}

type pipeCloser struct {
	*io.PipeReader
	close func() error
}

func (p *pipeCloser) Close() error { return p.close() }
