package httpapi

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"time"
)

// common sets what every answer carries, whatever the endpoint, as
// InfluxDB does: X-Influxdb-Version and X-Influxdb-Build, which some
// clients look for before they go on, and the request's ID as both
// Request-Id and X-Request-Id. The ID is the client's own when it sent a
// usable one (X-Request-Id first, then Request-Id, InfluxDB 1.x's order),
// else a new UUIDv7; it is put in the request's Request-Id header too, so
// that handlers log it (requestID).
func (s *Server) common(next http.Handler) http.Handler {
	version := "pginflux-" + s.cfg.Version
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := usableID(r.Header.Get("X-Request-Id"))
		if id == "" {
			id = usableID(r.Header.Get("Request-Id"))
		}
		if id == "" {
			id = newRequestID()
		}
		r.Header.Set("Request-Id", id)
		h := w.Header()
		h.Set("X-Influxdb-Version", version)
		h.Set("X-Influxdb-Build", "OSS")
		h.Set("Request-Id", id)
		h.Set("X-Request-Id", id)
		next.ServeHTTP(w, r)
	})
}

// requestID returns the ID common gave r.
func requestID(r *http.Request) string { return r.Header.Get("Request-Id") }

// maxRequestID bounds a request ID taken from a client.
const maxRequestID = 128

// usableID returns id when it is fit to be sent back and logged (at most
// maxRequestID bytes of visible ASCII), else "".
func usableID(id string) string {
	if len(id) > maxRequestID {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return ""
		}
	}
	return id
}

// newRequestID returns a new UUIDv7 (RFC 9562): time-ordered, as
// InfluxDB's IDs are (1.x a UUIDv1, 3 a UUIDv7).
func newRequestID() string {
	var u [16]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(u[:6], ms[2:])
	_, _ = rand.Read(u[6:]) // never fails
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}
