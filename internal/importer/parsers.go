package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// work is one item for the parsers: a chunk of whole lines, a line over
// the limit, or a barrier.
type work struct {
	buf       *[]byte // holds data; given back to the pool once parsed
	data      []byte
	long      *longLine
	dest      *dest
	name      string    // of the input
	firstLine int64     // line number of data's first line in the input
	received  time.Time // when read: the rows' origin, and the time of lines without one
	barrier   *barrier
}

// barrier makes every parser hand over its rows for dest and wait, so that
// dest's sink can be closed. Each parser takes exactly one barrier item,
// since it waits for release after taking it.
type barrier struct {
	dest    *dest
	arrived sync.WaitGroup
	release chan struct{}
}

// parse is one parser goroutine: it parses the chunks of queue into its
// own Batchers, one per dest, until queue is closed.
func (im *Importer) parse(stop context.Context, queue <-chan work) {
	p := parse.NewParser(im.cfg.Precision)
	bts := make(map[*dest]*sink.Batcher)
	batcher := func(d *dest) *sink.Batcher {
		if d.planner != nil {
			return nil
		}
		bt, ok := bts[d]
		if !ok {
			bt = d.sink.NewBatcher()
			bts[d] = bt
		}
		return bt
	}
	for w := range queue {
		switch {
		case w.barrier != nil:
			if bt, ok := bts[w.barrier.dest]; ok {
				bt.Flush()
				delete(bts, w.barrier.dest)
			}
			w.barrier.arrived.Done()
			<-w.barrier.release
			continue
		case stop.Err() != nil:
			// Interrupted: drain the queue without parsing.
		case w.long != nil:
			im.rejectLong(batcher(w.dest), w)
		default:
			im.parseChunk(p, batcher(w.dest), w)
		}
		putBuf(w.buf)
		now := time.Now()
		for _, bt := range bts {
			bt.FlushDue(now)
		}
	}
	for _, bt := range bts {
		bt.Flush()
	}
}

// parseChunk parses the lines of one chunk into bt, or into the dest's
// planner in a dry run (bt nil), and counts them.
func (im *Importer) parseChunk(p *parse.Parser, bt *sink.Batcher, w work) {
	p.Reset(w.data, w.received)
	origin := sink.Origin{Received: w.received}
	rejectedName := im.cfg.Sink.RejectedTable
	var lines int64
	for {
		pt, err := p.Next()
		if err == io.EOF {
			break
		}
		lines++
		if err != nil {
			var le *parse.LineError
			if errors.As(err, &le) {
				im.rejectLine(p, bt, w, le, origin)
			}
			continue
		}
		if bt != nil {
			bt.Add(pt, origin)
			continue
		}
		if rejectedName != "" && string(pt.Measurement) == rejectedName {
			im.countDryReject(ReasonReservedName)
			continue
		}
		w.dest.mu.Lock()
		w.dest.planner.Add(pt)
		w.dest.mu.Unlock()
	}
	im.lines.Add(lines)
}

// rejectLine keeps a line the parser rejected, with where it came from.
func (im *Importer) rejectLine(p *parse.Parser, bt *sink.Batcher, w work, le *parse.LineError, origin sink.Origin) {
	n := w.firstLine + le.Line - 1
	detail := lineDetail(w.name, n, le)
	im.log.Debug("rejected a line", "input", w.name, "line", n, "reason", le.Reason.String(), "err", le.Err)
	if bt == nil {
		im.countDryReject(le.Reason.String())
		return
	}
	bt.Reject(p.Line(le.Line), "", le.Reason.String(), detail, origin)
}

// lineDetail says where a rejected line is and what is wrong with it,
// with the line number of the input rather than of the chunk.
func lineDetail(name string, line int64, le *parse.LineError) string {
	var de *lineprotocol.DecodeError
	if errors.As(le.Err, &de) && de.Line == le.Line {
		return fmt.Sprintf("%s line %d: %s: column %d: %v", name, line, le.Reason, de.Column, de.Err)
	}
	return fmt.Sprintf("%s line %d: %s: %v", name, line, le.Reason, le.Err)
}

// rejectLong keeps the first bytes of a line over MaxLineSize, with where
// it came from.
func (im *Importer) rejectLong(bt *sink.Batcher, w work) {
	im.lines.Add(1)
	detail := fmt.Sprintf("%s line %d: the line has %d bytes, more than the limit of %d; line holds its first %d bytes only",
		w.name, w.firstLine, w.long.length, im.cfg.MaxLineSize, len(w.long.prefix))
	im.log.Warn("rejected a line over the size limit", "input", w.name, "line", w.firstLine, "bytes", w.long.length, "limit", im.cfg.MaxLineSize)
	if bt == nil {
		im.countDryReject(ReasonTooLong)
		return
	}
	bt.Reject(w.long.prefix, "", ReasonTooLong, detail, sink.Origin{Received: w.received})
}

// countDryReject counts a line a dry run would reject: nothing reaches a
// sink, so nothing else counts it.
func (im *Importer) countDryReject(reason string) {
	im.mu.Lock()
	im.dryRejected[reason]++
	im.mu.Unlock()
}
