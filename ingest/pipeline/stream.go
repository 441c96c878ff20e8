package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// ReasonTooLong is the reason a line longer than StreamConfig.MaxLineSize
// is rejected with: the sink's reason for a value too long for its column,
// here for a whole line.
const ReasonTooLong = sink.ReasonTooLong

// StreamConfig configures a Stream.
type StreamConfig struct {
	Transport string          // metric label and log key: "tcp" or "http"
	Precision parse.Precision // of timestamps in TCP lines (a request brings its own)
	// MaxLineSize is the longest line taken, in bytes without its line
	// end; a longer one is rejected as ReasonTooLong.
	MaxLineSize int
	// RejectedTable is the sink's rejected table ("" for none): a line
	// naming it as its measurement is refused by the sink, and a request
	// hears of it as a bad line.
	RejectedTable string
	// ReadMemory is what requests' read buffers draw from the memory
	// budget as they grow beyond FirstReadSize; nil for no budget.
	ReadMemory *budget.Account
	// WholeMemory is what bodies kept whole (WriteOptions.AllOrNothing)
	// draw from the memory budget; nil for no budget.
	WholeMemory *budget.Account
}

// Stream parses line protocol that comes over connections (TCP) or in
// requests (HTTP) into a sink.Shared, in the caller's goroutine: unlike
// UDP there is no queue to drop from, and a caller waits while the sink
// holds its limit of rows. Safe for concurrent use.
type Stream struct {
	cfg     StreamConfig
	sh      *sink.Shared
	metrics *StreamMetrics
	log     *slog.Logger
	parsers sync.Pool
}

// NewStream returns a Stream adding rows to sh. m comes from
// NewStreamMetrics.
func NewStream(cfg StreamConfig, sh *sink.Shared, m *StreamMetrics, log *slog.Logger) *Stream {
	s := &Stream{cfg: cfg, sh: sh, metrics: m, log: log}
	s.parsers.New = func() any { return parse.NewParser(cfg.Precision) }
	return s
}

// StreamMetrics counts what Streams of one transport parse and reject.
// Safe for concurrent use.
type StreamMetrics struct {
	*Metrics // QueueDropped is not registered: a Stream has no queue
	tooLong  prometheus.Counter
}

// NewStreamMetrics creates the metrics of a transport's Streams: the line
// counters of NewMetrics with another transport label, and ReasonTooLong
// among the reasons. It registers them with reg (nil for none), where they
// sit next to the UDP pipeline's.
func NewStreamMetrics(reg prometheus.Registerer, transport string) *StreamMetrics {
	m := &StreamMetrics{Metrics: NewMetrics(nil, transport)}
	m.tooLong = m.Rejected.WithLabelValues(ReasonTooLong)
	if reg != nil {
		reg.MustRegister(m.Lines, m.Rejected)
	}
	return m
}

// BadLine is a line of a request that was not stored.
type BadLine struct {
	Line   int64  // 1-based, in the request body
	Text   []byte // the line, cut at maxBadText bytes
	Reason string // parse.Reason, ReasonTooLong, or sink.ReasonReservedName
	Err    string // what was wrong, without the line number
}

// maxBadText bounds the text of a bad line kept for an answer.
const maxBadText = 256

// MaxListed bounds the bad lines a Result lists, so that an answer to a
// request of many bad lines stays small.
const MaxListed = 100

// Result is what became of a request's lines.
type Result struct {
	Lines    int // lines added as rows (committed, when Write waits and returns no error)
	Rejected int // of those rows, the ones stored with values in the rejected table, or wholly there (0 with NoWait)
	Bad      int // lines not stored as rows: they did not parse, were too long, or named the rejected table
	// Listed are the first MaxListed bad lines, in the order of the body.
	Listed []BadLine
}

func (r *Result) bad(b BadLine) {
	if len(r.Listed) < MaxListed {
		if len(b.Text) > maxBadText {
			b.Text = append(bytes.Clone(b.Text[:maxBadText]), "..."...)
		} else {
			b.Text = bytes.Clone(b.Text)
		}
		r.Listed = append(r.Listed, b)
	}
	r.Bad++
}

// WriteOptions say how Write treats a request. The zero value is what
// InfluxDB 1.x and 2.x clients expect: every good line is stored, the bad
// ones are kept in the rejected table, and Write waits for the commit.
type WriteOptions struct {
	// NoWait makes Write return once the rows are added to the batcher,
	// before their commit (InfluxDB 3's no_sync=true): rows lost later
	// are counted by the sink but told to no one, and Result.Rejected is
	// 0.
	NoWait bool
	// AllOrNothing stores nothing, not even in the rejected table, when
	// any line is bad (InfluxDB 3's accept_partial=false): the body is
	// read whole, parsed once to look for bad lines, and a second time to
	// add its rows only when there are none. Values a column cannot hold
	// are found only at commit, too late to refuse the rest.
	AllOrNothing bool
	// CommitTimeout, when not 0, bounds the wait for the commit from the
	// body's end.
	CommitTimeout time.Duration
	// Held, when not nil, counts the request's rows while they wait for
	// their commit.
	Held prometheus.Gauge
}

// addBody adds the lines of body, rejecting those over the line size on
// the way; firstLine is the number of lines before body in its request.
func (s *Stream) addBody(ctx context.Context, parser *parse.Parser, pr *sink.Producer, body []byte, firstLine int64, o sink.Origin, tk *sink.Ticket, res *Result) error {
	if len(body) <= s.cfg.MaxLineSize {
		return s.add(ctx, parser, pr, body, firstLine, o, tk, res)
	}
	segStart, segLine := 0, firstLine // the segment of good lines, and the lines before it
	line := firstLine
	for off := 0; off < len(body); line++ {
		end := len(body)
		if i := bytes.IndexByte(body[off:], '\n'); i >= 0 {
			end = off + i
		}
		if n := len(bytes.TrimSuffix(body[off:end], []byte{'\r'})); n > s.cfg.MaxLineSize {
			if err := s.add(ctx, parser, pr, body[segStart:off], segLine, o, tk, res); err != nil {
				return err
			}
			s.tooLong(pr, body[off:end], n, line+1, o, res)
			segStart, segLine = end+1, line+1
		}
		off = end + 1
	}
	if segStart >= len(body) {
		return nil
	}
	return s.add(ctx, parser, pr, body[segStart:], segLine, o, tk, res)
}

// checkEvery is how many lines are added between looks at the request's
// context.
const checkEvery = 1024

// add parses data and adds its rows; lineOffset is the number of lines
// before data (0 for a TCP chunk, whose line numbers mean nothing to
// anyone), tk the request's ticket (nil for TCP, and with NoWait) and res
// its result (nil for TCP). With a nil pr it only looks for bad lines,
// into res, and adds nothing.
func (s *Stream) add(ctx context.Context, parser *parse.Parser, pr *sink.Producer, data []byte, lineOffset int64, o sink.Origin, tk *sink.Ticket, res *Result) error {
	if len(data) == 0 {
		return nil
	}
	parser.Reset(data, o.Received)
	lines := 0
	defer func() {
		s.metrics.Lines.Add(float64(lines))
		if res != nil {
			res.Lines += lines
		}
	}()
	for n := 1; ; n++ {
		if n%checkEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		pt, err := parser.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var le *parse.LineError
			if !errors.As(err, &le) {
				continue
			}
			text := parser.Line(le.Line)
			msg := strings.TrimPrefix(le.Error(), fmt.Sprintf("line %d: ", le.Line))
			detail := msg
			if res != nil {
				detail = fmt.Sprintf("line %d: %s", le.Line+lineOffset, msg)
				res.bad(BadLine{Line: le.Line + lineOffset, Text: text, Reason: le.Reason.String(), Err: msg})
			}
			s.log.Debug("rejected a line", "transport", s.cfg.Transport, "source", o.Source, "detail", detail)
			s.metrics.rejected[le.Reason].Inc()
			if pr != nil {
				if err := pr.Reject(text, "", le.Reason.String(), detail, o); err != nil {
					return err
				}
			}
			continue
		}
		if res != nil && s.cfg.RejectedTable != "" && string(pt.Measurement) == s.cfg.RejectedTable {
			// The sink keeps it in the rejected table, and counts it,
			// without settling a ticket: tell the request here.
			res.bad(BadLine{Line: pt.Line + lineOffset, Text: parser.Line(pt.Line), Reason: sink.ReasonReservedName,
				Err: "the measurement has the name of the rejected table"})
			if pr != nil {
				if err := pr.Add(pt, o, nil); err != nil {
					return err
				}
			}
			continue
		}
		if pr != nil {
			err := pr.Add(pt, o, tk)
			lines++
			if err != nil {
				return err
			}
		}
	}
}

// tooLong rejects a line over the line size; only its start is kept.
func (s *Stream) tooLong(pr *sink.Producer, line []byte, size int, lineNo int64, o sink.Origin, res *Result) {
	msg := fmt.Sprintf("the line has %d bytes, more than --max-line-size (%d); its first %d bytes are kept", size, s.cfg.MaxLineSize, min(size, maxKeptLong))
	detail := msg
	if res != nil {
		detail = fmt.Sprintf("line %d: %s", lineNo, msg)
		res.bad(BadLine{Line: lineNo, Text: line, Reason: ReasonTooLong, Err: msg})
	}
	s.log.Debug("rejected a line", "transport", s.cfg.Transport, "source", o.Source, "detail", detail)
	s.metrics.tooLong.Inc()
	if pr != nil {
		_ = pr.Reject(line[:min(len(line), maxKeptLong)], "", ReasonTooLong, detail, o) // one row; the caller checks its context
	}
}

// maxKeptLong is how much of a line over the line size the rejected table
// keeps: enough to tell what and who it was.
const maxKeptLong = 1 << 10

// Conn is a Stream's side of one TCP connection: a turn at the shared
// batcher held for the connection's life, so that its rows are batched
// as UDP's are (by size and flush interval) rather than flushed at every
// read. It has the methods of an tcp.ConnHandler and is used by one
// goroutine at a time.
type Conn struct {
	s      *Stream
	pr     *sink.Producer
	parser *parse.Parser
	src    netip.AddrPort
}

// Open returns the handler of a connection from src. Every Conn must be
// closed before the Shared batcher is.
func (s *Stream) Open(src netip.AddrPort) *Conn {
	parser := s.parsers.Get().(*parse.Parser)
	parser.SetPrecision(s.cfg.Precision)
	return &Conn{s: s, pr: s.sh.Begin(), parser: parser, src: src}
}

// Lines parses complete lines and adds their rows; it waits while the sink
// holds its limit of rows.
func (c *Conn) Lines(lines []byte, received time.Time) {
	_ = c.s.add(context.Background(), c.parser, c.pr, lines, 0, sink.Origin{Source: c.src, Received: received}, nil, nil)
}

// LongLine rejects a line over the line size, of which the transport kept
// prefix.
func (c *Conn) LongLine(prefix []byte, size int64, received time.Time) {
	o := sink.Origin{Source: c.src, Received: received}
	msg := fmt.Sprintf("the line has %d bytes, more than --max-line-size (%d); its first %d bytes are kept", size, c.s.cfg.MaxLineSize, len(prefix))
	c.s.log.Debug("rejected a line", "transport", c.s.cfg.Transport, "source", c.src, "detail", msg)
	c.s.metrics.tooLong.Inc()
	_ = c.pr.Reject(prefix, "", ReasonTooLong, msg, o) // a connection's turn has no deadline
}

// Close ends the connection's turn at the shared batcher.
func (c *Conn) Close() {
	c.pr.End()
	c.parser.Reset(nil, time.Time{})
	c.s.parsers.Put(c.parser)
}
