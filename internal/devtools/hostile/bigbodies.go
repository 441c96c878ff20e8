package hostile

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// BigMeasurement is the measurement of BigBodies' lines: one row per
// line, clients × lines in all (in --write-mode merge, a resend of a body
// adds none).
const BigMeasurement = "hostile"

// MaxBigLines is the most lines of one BigBodies client.
const MaxBigLines = 10_000_000

// bigTime is the timestamp (ns) of every client's line 0; line j is j µs
// later.
const bigTime = 1_700_000_000_000_000_000

// BigBodiesResult is what BigBodies did.
type BigBodiesResult struct {
	Clients   int   `json:"clients"`
	LinesPer  int   `json:"lines_per_client"`
	BodyBytes int64 `json:"body_bytes"` // of client 0's body; the others' differ by a few bytes
	// WantRows is how many rows the table BigMeasurement should hold once
	// every client is answered 204: clients × lines.
	WantRows int64 `json:"want_rows"`
	// Outcomes are the clients' last answers.
	Outcomes Outcomes `json:"outcomes"`
	// Acknowledged is how many clients ended with 204.
	Acknowledged int `json:"acknowledged"`
	// MostAttempts is the most attempts a client made.
	MostAttempts int            `json:"most_attempts"`
	Seconds      float64        `json:"seconds"` // until the last client ended
	PerClient    []ClientResult `json:"per_client"`
}

// ClientResult is what became of one BigBodies client.
type ClientResult struct {
	Client   int    `json:"client"`
	Attempts int    `json:"attempts"`
	Outcome  string `json:"outcome"` // of its last attempt
	// Seconds is from its first attempt to its last answer (to 204, when
	// Outcome is "204"), Retry-After waits included.
	Seconds       float64 `json:"seconds"`
	WaitedSeconds float64 `json:"waited_seconds"` // in Retry-After waits
	Sample        string  `json:"sample,omitempty"`
}

// BigBodies has clients clients each post one body of linesPer distinct
// lines at once (even clients to /write, odd ones to /api/v2/write). On a
// 429 or a 503, or no answer, a client waits as Retry-After says (at most
// MaxRetryAfter) and sends the same body again, up to maxAttempts in all.
// Bodies are generated as they are sent: the harness holds none whole.
//
// Client i's line j is hostile,client=i v=ji,f=0.5 with a timestamp j µs
// after 2023-11-14T22:13:20Z: every line is a point of its own.
func BigBodies(ctx context.Context, base string, clients, linesPer, maxAttempts int) (*BigBodiesResult, error) {
	if err := checkBase(ctx, base); err != nil {
		return nil, err
	}
	if err := checkClients("clients", clients); err != nil {
		return nil, err
	}
	if err := checkSize("lines a client", int64(linesPer), MaxBigLines); err != nil {
		return nil, err
	}
	if err := checkSize("attempts", int64(maxAttempts), 100); err != nil {
		return nil, err
	}
	client := newClient(clients)
	defer client.CloseIdleConnections()
	r := &BigBodiesResult{Clients: clients, LinesPer: linesPer, BodyBytes: bodyLen(0, linesPer),
		WantRows: int64(clients) * int64(linesPer), PerClient: make([]ClientResult, clients)}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range r.PerClient {
		url := base + "/write?db=" + BigMeasurement
		if i%2 == 1 {
			url = base + "/api/v2/write?org=" + BigMeasurement + "&bucket=" + BigMeasurement
		}
		wg.Go(func() { r.PerClient[i] = bigClient(ctx, client, url, i, linesPer, maxAttempts) })
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	for _, c := range r.PerClient {
		r.Outcomes.add(c.Outcome, c.Sample)
		r.MostAttempts = max(r.MostAttempts, c.Attempts)
		if c.Outcome == "204" {
			r.Acknowledged++
		}
	}
	return r, nil
}

// bigClient posts client i's body until it is taken, refused for good,
// or maxAttempts were made.
func bigClient(ctx context.Context, client *http.Client, url string, i, lines, maxAttempts int) ClientResult {
	length := bodyLen(i, lines)
	start := time.Now()
	r := ClientResult{Client: i}
	for {
		r.Attempts++
		a := post(ctx, client, url, newBodyReader(i, lines), length)
		r.Outcome, r.Sample, r.Seconds = a.outcome(), cut(a.sample), time.Since(start).Seconds()
		if !a.retryable() || r.Attempts >= maxAttempts || ctx.Err() != nil {
			return r
		}
		w := a.wait()
		r.WaitedSeconds += w.Seconds()
		if !sleep(ctx, w) {
			return r
		}
	}
}

// appendBigLine appends client i's line j.
func appendBigLine(b []byte, i, j int) []byte {
	b = append(b, BigMeasurement+",client="...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, " v="...)
	b = strconv.AppendInt(b, int64(j), 10)
	b = append(b, "i,f=0.5 "...)
	b = strconv.AppendInt(b, bigTime+int64(j)*1000, 10)
	return append(b, '\n')
}

// bodyLen returns the length of client i's body of lines lines, without
// making it: its lines differ only in the digits of j.
func bodyLen(i, lines int) int64 {
	n := int64(len(appendBigLine(nil, i, 0))-1) * int64(lines)
	for digits, lo := int64(1), 0; lo < lines; digits++ {
		hi := max(lo*10, 10) // j in lo..hi-1 has digits digits
		n += digits * int64(min(lines, hi)-lo)
		lo = hi
	}
	return n
}

// bodyReader reads client i's body, lines made as they are read. It is
// not safe for concurrent use.
type bodyReader struct {
	client, lines, next int
	buf                 []byte // made and not yet read: buf[off:]
	off                 int
}

func newBodyReader(client, lines int) *bodyReader {
	return &bodyReader{client: client, lines: lines, buf: make([]byte, 0, 32<<10)}
}

// Read fills p with the next bytes of the body.
func (r *bodyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.off == len(r.buf) {
			if r.next == r.lines {
				break
			}
			r.buf, r.off = r.buf[:0], 0
			for r.next < r.lines && len(r.buf) < cap(r.buf)-128 {
				r.buf = appendBigLine(r.buf, r.client, r.next)
				r.next++
			}
		}
		c := copy(p[n:], r.buf[r.off:])
		r.off += c
		n += c
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
