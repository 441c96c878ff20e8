package hostile

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestGzipZeros: a bomb is a valid gzip stream, checksums included, of
// exactly its size in zeros, for both gzip readers pginflux might use.
func TestGzipZeros(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{0, 1, 1 << 20, 3<<20 + 17} {
		b, err := GzipZeros(size)
		if err != nil {
			t.Fatal(err)
		}
		if size > 1<<20 && int64(len(b)) > size/500 {
			t.Errorf("%d bytes compressed to %d, want at most %d", size, len(b), size/500)
		}
		for name, open := range map[string]func(io.Reader) (io.Reader, error){
			"klauspost": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
			"std":       func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) },
		} {
			r, err := open(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", name, size, err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Errorf("%s, %d bytes: %v", name, size, err)
			}
			if int64(len(out)) != size || bytes.ContainsFunc(out, func(r rune) bool { return r != 0 }) {
				t.Errorf("%s: %d zeros decompressed to %d bytes, not all zeros", name, size, len(out))
			}
		}
	}
}

// TestGzipZerosGigabyte: a gigabyte bomb is quick to make, about 1 MB,
// and says its size in its trailer (TestGzipZeros decompresses smaller
// ones: the same block repeated fewer times).
func TestGzipZerosGigabyte(t *testing.T) {
	t.Parallel()
	start := time.Now()
	b, err := GzipZeros(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1 GiB of zeros in %d bytes of gzip, made in %v", len(b), time.Since(start))
	if len(b) > 2<<20 {
		t.Errorf("1 GiB compressed to %d bytes, want at most 2 MiB", len(b))
	}
	if got := binary.LittleEndian.Uint32(b[len(b)-4:]); got != 1<<30 {
		t.Errorf("size in the trailer: got %d, want %d", got, 1<<30)
	}
}

// TestBombs: every bomb is sent gzipped, and each answer counted.
func TestBombs(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/write" || r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "not a gzipped write", http.StatusBadRequest)
			return
		}
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if n, _ := io.Copy(io.Discard, io.LimitReader(z, limit+1)); n > limit {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	r, err := Bombs(t.Context(), srv.URL, 8, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Outcomes.Only("413") || r.Outcomes.Counts["413"] != 8 {
		t.Errorf("outcomes: got %v %v, want 413×8", r.Outcomes.String(), r.Outcomes.Samples)
	}
	if r.CompressedBytes == 0 || r.CompressedBytes > 1<<20 || r.Size != 64<<20 {
		t.Errorf("bomb of %d bytes compressed to %d: want 64 MiB in a few tens of KiB", r.Size, r.CompressedBytes)
	}
}
