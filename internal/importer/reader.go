package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pginflux/pginflux/sink"
)

// maxDatabasesListed bounds Result.Databases.
const maxDatabasesListed = 100

// reader is the goroutine that reads the inputs and feeds the parsers. It
// alone opens and closes dests.
type reader struct {
	im    *Importer
	queue chan<- work
	stop  context.Context

	dests   map[string]*dest // open, by schema
	last    *dest
	uses    int64
	schemas map[string]bool // every schema used

	databases []string
	ddlLines  int64
	plans     []SchemaPlan
	closeErrs []error
}

// read reads one input to its end, or until stop ends.
func (r *reader) read(in Input) error {
	name := in.Name
	r.im.input.Store(&name)
	o, err := openInput(r.stop, in, &r.im.read)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer o.close()
	ch := newChunker(o.r, r.im.cfg.ChunkSize, r.im.cfg.MaxLineSize)
	var st exportState
	var parts []part
	line := int64(1) // the number of the next piece's first line
	defer func() {
		r.ddlLines += st.skipped
		for _, db := range st.databases {
			r.noteDatabase(db)
		}
	}()
	for {
		if r.stop.Err() != nil {
			return context.Cause(r.stop)
		}
		pc, err := ch.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s after line %d: %w", name, line-1, err)
		}
		received := time.Now()
		if pc.long != nil {
			if !st.ddl {
				d, err := r.dest(st.database)
				if err != nil {
					return fmt.Errorf("%s line %d: %w", name, line, err)
				}
				if err := r.send(work{long: pc.long, dest: d, name: name, firstLine: line, received: received}); err != nil {
					return err
				}
			}
			line += pc.lines
			continue
		}
		parts = st.split(pc.data, r.im.cfg.SchemaFromDB, parts)
		whole := len(parts) == 1 && len(parts[0].data) == len(pc.data)
		for _, p := range parts {
			d, err := r.dest(p.database)
			if err != nil {
				putBuf(pc.buf)
				return fmt.Errorf("%s line %d: %w", name, line+p.offset, err)
			}
			w := work{buf: pc.buf, data: p.data, dest: d, name: name, firstLine: line + p.offset, received: received}
			if !whole {
				// Rare (a chunk with a DDL section or a change of
				// database): each part gets a buffer of its own.
				w.buf = getBuf(len(p.data))
				*w.buf = append((*w.buf)[:0], p.data...)
				w.data = *w.buf
			}
			if err := r.send(w); err != nil {
				if !whole {
					putBuf(pc.buf)
				}
				return err
			}
		}
		if !whole {
			putBuf(pc.buf)
		}
		line += pc.lines
	}
}

// send queues w for the parsers, unless the import is stopping.
func (r *reader) send(w work) error {
	select {
	case r.queue <- w:
		return nil
	case <-r.stop.Done():
		putBuf(w.buf)
		return context.Cause(r.stop)
	}
}

func (r *reader) noteDatabase(db string) {
	if len(r.databases) >= maxDatabasesListed || slices.Contains(r.databases, db) {
		return
	}
	r.databases = append(r.databases, db)
}

// dest returns the dest of the lines of database (from CONTEXT-DATABASE;
// "" before any), opening it when needed.
func (r *reader) dest(database string) (*dest, error) {
	schema := r.im.cfg.Sink.Schema
	if r.im.cfg.SchemaFromDB && database != "" {
		if err := checkSchemaName(database); err != nil {
			return nil, fmt.Errorf("database %q cannot name a schema (--schema-from-db): %w", database, err)
		}
		schema = database
	}
	r.uses++
	if d := r.last; d != nil && d.schema == schema {
		d.used = r.uses
		return d, nil
	}
	d, ok := r.dests[schema]
	if !ok {
		if !r.im.cfg.DryRun && len(r.dests) >= r.im.cfg.MaxSchemas {
			r.evict()
		}
		d = r.open(schema)
		r.dests[schema] = d
		r.schemas[schema] = true
	}
	d.used = r.uses
	r.last = d
	return d, nil
}

func (r *reader) open(schema string) *dest {
	cfg := r.im.cfg.Sink
	cfg.Schema = schema
	d := &dest{schema: schema}
	if r.im.cfg.DryRun {
		// A sink that writes nothing: no partition upkeep (which would
		// create the schema and partitions ahead), no table template.
		cfg.Writers = 1
		cfg.PartitionBy, cfg.Retention, cfg.CreateTableSQL = "", 0, nil
		d.sink = sink.New(r.im.pool, cfg, r.im.metrics, r.im.log)
		d.planner = d.sink.NewPlanner()
		return d
	}
	d.sink = sink.New(r.im.pool, cfg, r.im.metrics, r.im.log)
	d.stopAbandon = context.AfterFunc(r.stop, d.sink.Abandon)
	return d
}

// evict closes the dest used least recently, after every parser has
// handed over its rows for it.
func (r *reader) evict() {
	var old *dest
	for _, d := range r.dests {
		if old == nil || d.used < old.used {
			old = d
		}
	}
	b := &barrier{dest: old, release: make(chan struct{})}
	n := r.im.cfg.Parsers
	b.arrived.Add(n)
	for range n {
		r.queue <- work{barrier: b} // parsers always drain the queue
	}
	b.arrived.Wait()
	close(b.release)
	delete(r.dests, old.schema)
	if r.last == old {
		r.last = nil
	}
	r.close(old)
}

// close writes what old's sink holds (or plans, in a dry run) and closes
// it. The parsers must have flushed their Batchers for it.
func (r *reader) close(d *dest) {
	if d.planner != nil && r.stop.Err() == nil {
		sp := SchemaPlan{Schema: d.schema}
		err := r.im.pool.QueryRow(r.stop, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", d.schema).Scan(&sp.Exists)
		if err == nil {
			sp.Tables, err = d.planner.Plan(r.stop)
		}
		if err != nil {
			r.closeErrs = append(r.closeErrs, fmt.Errorf("plan schema %s: %w", d.schema, err))
		} else {
			r.plans = append(r.plans, sp)
		}
	}
	if err := d.sink.Close(context.Background()); err != nil {
		r.closeErrs = append(r.closeErrs, fmt.Errorf("schema %s: %w", d.schema, err))
	}
	if d.stopAbandon != nil {
		d.stopAbandon()
	}
}

// closeAll closes every open dest, in schema order; the parsers must have
// stopped.
func (r *reader) closeAll() error {
	schemas := make([]string, 0, len(r.dests))
	for s := range r.dests {
		schemas = append(schemas, s)
	}
	slices.Sort(schemas)
	for _, s := range schemas {
		r.close(r.dests[s])
	}
	clear(r.dests)
	slices.SortFunc(r.plans, func(a, b SchemaPlan) int { return strings.Compare(a.Schema, b.Schema) })
	return errors.Join(r.closeErrs...)
}

// dest is one schema's sink, or planner in a dry run.
type dest struct {
	schema      string
	sink        *sink.Sink
	stopAbandon func() bool
	used        int64 // when last used, by the reader's count

	mu      sync.Mutex // guards planner
	planner *sink.Planner
}

// checkSchemaName tells whether a database name can be a schema's, by the
// rules the HTTP write path applies to db=.
func checkSchemaName(s string) error {
	switch {
	case s == "":
		return errors.New("it is empty")
	case len(s) > 63:
		return errors.New("it is longer than PostgreSQL's 63 bytes")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("it holds a NUL byte")
	case !utf8.ValidString(s):
		return errors.New("it is not valid UTF-8")
	case strings.HasPrefix(strings.ToLower(s), "pg_"):
		return errors.New("names starting with pg_ are PostgreSQL's")
	}
	return nil
}
