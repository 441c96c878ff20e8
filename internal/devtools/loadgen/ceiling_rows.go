package loadgen

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The storage layouts of the ceiling's tables, as pginflux lays them out.
const (
	StorageJSONB   = "jsonb"   // time timestamptz, tags jsonb, fields jsonb
	StorageColumns = "columns" // time timestamptz, one text column per tag, one column per field
)

// Storages are the layouts Ceiling accepts.
var Storages = []string{StorageJSONB, StorageColumns}

// tableOf names m's table in storage, with the point key or without.
func tableOf(m *Measurement, storage string, pointKey bool) string {
	if pointKey {
		return m.Name + "_" + storage + "_key"
	}
	return m.Name + "_" + storage
}

// columnsOf returns the column names and SQL types of m's table in
// storage; with the point key, series_id follows time.
func columnsOf(m *Measurement, storage string, pointKey bool) (names, types []string) {
	names, types = []string{"time"}, []string{"timestamptz NOT NULL"}
	if pointKey {
		names, types = append(names, "series_id"), append(types, "bigint NOT NULL")
	}
	if storage == StorageJSONB {
		return append(names, "tags", "fields"), append(types, "jsonb NOT NULL", "jsonb NOT NULL")
	}
	for _, k := range m.TagKeys {
		names, types = append(names, k), append(types, "text")
	}
	for _, f := range m.Fields {
		t := "double precision"
		if f.Kind == Int {
			t = "bigint"
		}
		names, types = append(names, f.Name), append(types, t)
	}
	return names, types
}

// seriesID is a series' id as pginflux makes it: the first 63 bits of the
// SHA-256 of its tags JSON. Its place in the key is what matters here: a
// hash, so unrelated to the series' order.
func seriesID(tagsJSON []byte) int64 {
	sum := sha256.Sum256(tagsJSON)
	return int64(binary.BigEndian.Uint64(sum[:]) >> 1)
}

// seriesJSON is a series' tags as a JSON object, built once per series.
func seriesJSON(s *Series) []byte {
	b := []byte{'{'}
	for i, k := range s.Measurement.TagKeys {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k) // keys and values are plain ASCII
		b = append(b, ':')
		b = strconv.AppendQuote(b, s.TagValues[i])
	}
	return append(b, '}')
}

// appendFieldsJSON appends a row's fields as a JSON object the way
// pginflux writes them: floats keep a decimal point, integers are exact.
func appendFieldsJSON(b []byte, r *Row) []byte {
	b = append(b, '{')
	for i, f := range r.Series.Measurement.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, ':')
		if f.Kind == Float {
			start := len(b)
			b = strconv.AppendFloat(b, r.Values[i].F, 'g', -1, 64)
			if isIntegral(b[start:]) {
				b = append(b, '.', '0')
			}
		} else {
			b = strconv.AppendInt(b, r.Values[i].I, 10)
		}
	}
	return append(b, '}')
}

func isIntegral(num []byte) bool {
	for _, c := range num {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// anyRow returns r as the values pgx's CopyFrom takes. tagValues holds
// the series' tag values (columns) or its tags JSON (jsonb), boxed once
// per series.
func anyRow(r *Row, storage string, tagValues []any) []any {
	row := make([]any, 0, 1+len(tagValues)+len(r.Values))
	row = append(row, time.Unix(0, r.UnixNano))
	row = append(row, tagValues...)
	if storage == StorageJSONB {
		return append(row, string(appendFieldsJSON(nil, r)))
	}
	for i, f := range r.Series.Measurement.Fields {
		if f.Kind == Float {
			row = append(row, r.Values[i].F)
		} else {
			row = append(row, r.Values[i].I)
		}
	}
	return row
}

// The binary COPY format: a header, per row an int16 column count and per
// column an int32 length and the value in binary form, then an int16 -1.
var (
	copyHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	copyTrailer = []byte{0xff, 0xff}
)

// pgEpochMicros is 2000-01-01, PostgreSQL's epoch, in Unix microseconds.
const pgEpochMicros = 946684800 * 1_000_000

// appendBinaryRow appends r in binary COPY form. tags is the series' tags
// JSON (jsonb storage); sid is its series id, written when pointKey.
func appendBinaryRow(b []byte, r *Row, storage string, tags []byte, pointKey bool, sid int64) []byte {
	m := r.Series.Measurement
	cols := 3
	if storage != StorageJSONB {
		cols = 1 + len(m.TagKeys) + len(m.Fields)
	}
	if pointKey {
		cols++
	}
	b = binary.BigEndian.AppendUint16(b, uint16(cols))
	micros := r.UnixNano / 1000 // the generator's times are whole microseconds after 1970
	b = binary.BigEndian.AppendUint32(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(micros-pgEpochMicros))
	if pointKey {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(sid))
	}
	if storage == StorageJSONB {
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(tags)))
		b = append(b, 1) // jsonb version
		b = append(b, tags...)
		at := len(b)
		b = append(b, 0, 0, 0, 0, 1)
		b = appendFieldsJSON(b, r)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		return b
	}
	for _, v := range r.Series.TagValues {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	for i, f := range m.Fields {
		b = binary.BigEndian.AppendUint32(b, 8)
		if f.Kind == Float {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(r.Values[i].F))
		} else {
			b = binary.BigEndian.AppendUint64(b, uint64(r.Values[i].I))
		}
	}
	return b
}

// ceilingBatch is one COPY: rows for pgx, or a whole binary COPY stream.
type ceilingBatch struct {
	table   pgx.Identifier
	columns []string
	rows    [][]any
	data    []byte
	n       int64
	sql     string // for data

	keys []rowKey // with the point key: each row's key and bytes in data
}

// rowKey is a row's point key and where its bytes are in its batch.
type rowKey struct {
	micros, sid int64
	start, end  int
}

// buildBatches makes cfg.Rows rows, grouped by table into batches of at
// most cfg.BatchSize, and returns them with the bytes of binary data.
func buildBatches(cfg CeilingConfig, storage, method string, base time.Time) ([]*ceilingBatch, int64) {
	w := cfg.Workload
	g := NewGenerator(w, base, 0, 1)
	pointKey := keyed(method)
	// Per-series values built once: tags JSON, series id, or the tag
	// values boxed.
	tagJSON := make([][]byte, len(w.Series))
	sids := make([]int64, len(w.Series))
	tagAny := make([][]any, len(w.Series))
	for i := range w.Series {
		s := &w.Series[i]
		tagJSON[i] = seriesJSON(s)
		sids[i] = seriesID(tagJSON[i])
		if storage == StorageJSONB {
			tagAny[i] = []any{string(tagJSON[i])}
		} else {
			for _, v := range s.TagValues {
				tagAny[i] = append(tagAny[i], v)
			}
		}
	}
	open := make(map[*Measurement]*ceilingBatch)
	var batches []*ceilingBatch
	var size int64
	finish := func(b *ceilingBatch) {
		if method == MethodKeySorted {
			b.data = sortRows(b.data, b.keys)
		}
		b.keys = nil
		if b.data != nil {
			b.data = append(b.data, copyTrailer...)
			size += int64(len(b.data))
		}
		batches = append(batches, b)
	}
	var row Row
	for seq := range uint64(cfg.Rows) {
		g.Row(seq, &row)
		m := row.Series.Measurement
		b := open[m]
		if b == nil {
			names, _ := columnsOf(m, storage, pointKey)
			b = &ceilingBatch{table: pgx.Identifier{cfg.Schema, tableOf(m, storage, pointKey)}, columns: names}
			if method != MethodPgx {
				b.data = append(make([]byte, 0, cfg.BatchSize*(w.MaxLineLen()+64)), copyHeader...)
				b.sql = "COPY " + b.table.Sanitize() + " (" + quoteAll(names) + ") FROM STDIN WITH (FORMAT binary)"
			}
			open[m] = b
		}
		si := int(seq % uint64(len(w.Series)))
		if method != MethodPgx {
			start := len(b.data)
			b.data = appendBinaryRow(b.data, &row, storage, tagJSON[si], pointKey, sids[si])
			if pointKey {
				b.keys = append(b.keys, rowKey{micros: row.UnixNano / 1000, sid: sids[si], start: start, end: len(b.data)})
			}
		} else {
			b.rows = append(b.rows, anyRow(&row, storage, tagAny[si]))
		}
		b.n++
		if b.n == int64(cfg.BatchSize) {
			finish(b)
			delete(open, m)
		}
	}
	for _, m := range w.Measurements {
		if b := open[m]; b != nil {
			finish(b)
		}
	}
	return batches, size
}

// sortRows returns the header and rows of a binary COPY stream (no
// trailer yet) with the rows in the order of their point keys.
func sortRows(data []byte, keys []rowKey) []byte {
	slices.SortFunc(keys, func(a, b rowKey) int {
		if c := cmp.Compare(a.micros, b.micros); c != 0 {
			return c
		}
		return cmp.Compare(a.sid, b.sid)
	})
	out := append(make([]byte, 0, len(data)), copyHeader...)
	for _, k := range keys {
		out = append(out, data[k.start:k.end]...)
	}
	return out
}

// quoteAll returns names as SQL identifiers, separated by commas.
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}
