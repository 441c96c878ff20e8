package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// golden is one recorded answer, as stored in NNN.json.
type golden struct {
	Query string `json:"query"`
	DB    string `json:"db"`
	// Epoch is the epoch parameter sent, when not ns; "rfc3339" when
	// none was.
	Epoch  string `json:"epoch,omitempty"`
	Status int    `json:"status"`
	// Answer is InfluxDB's body, decoded with numbers kept as written.
	Answer any `json:"answer"`
}

// goldenName matches the files record writes.
var goldenName = regexp.MustCompile(`^[0-9]{3}\.json$`)

// record sends each query and writes its answer to dir/NNN.json, after
// removing the NNN.json files already there.
func record(ctx context.Context, c *client, qs []query, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make %s: %w", dir, err)
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", dir, err)
	}
	for _, e := range old {
		if e.Type().IsRegular() && goldenName.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("cannot remove old answer: %w", err)
			}
		}
	}
	for i, q := range qs {
		status, body, err := c.query(ctx, q)
		if err != nil {
			return fmt.Errorf("query of line %d: %w", q.Line, err)
		}
		b, err := encodeGolden(q, status, body)
		if err != nil {
			return fmt.Errorf("query of line %d: %w", q.Line, err)
		}
		name := filepath.Join(dir, fmt.Sprintf("%03d.json", i+1))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return fmt.Errorf("cannot write answer: %w", err)
		}
	}
	return nil
}

// encodeGolden returns the file of one answer: indented, keys sorted,
// numbers as InfluxDB wrote them, no HTML escapes, and an array of
// scalars (a row of values, a list of columns) on one line so that a
// diff shows the rows that changed.
func encodeGolden(q query, status int, body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var answer any
	if err := dec.Decode(&answer); err != nil {
		return nil, fmt.Errorf("cannot decode answer (status %d) %.200q: %w", status, body, err)
	}
	// The fields in golden's order: the file reads as the question, then
	// the answer.
	var buf bytes.Buffer
	buf.WriteString("{\n  \"query\": ")
	err := scalar(&buf, q.Text)
	buf.WriteString(",\n  \"db\": ")
	err = errors.Join(err, scalar(&buf, q.DB))
	if q.Epoch != "" {
		buf.WriteString(",\n  \"epoch\": ")
		err = errors.Join(err, scalar(&buf, q.Epoch))
	}
	fmt.Fprintf(&buf, ",\n  \"status\": %d,\n  \"answer\": ", status)
	err = errors.Join(err, pretty(&buf, answer, "  "))
	buf.WriteString("\n}\n")
	if err != nil {
		return nil, fmt.Errorf("cannot encode answer: %w", err)
	}
	return buf.Bytes(), nil
}

// pretty writes v as indented JSON, keys in order, arrays of scalars on
// one line. v holds what encoding/json decodes into an any.
func pretty(buf *bytes.Buffer, v any, indent string) error {
	inner := indent + "  "
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			buf.WriteString("{}")
			return nil
		}
		keys := slices.Sorted(maps.Keys(v))
		buf.WriteString("{\n")
		for i, k := range keys {
			buf.WriteString(inner)
			if err := scalar(buf, k); err != nil {
				return err
			}
			buf.WriteString(": ")
			if err := pretty(buf, v[k], inner); err != nil {
				return err
			}
			if i < len(keys)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case []any:
		flat := !slices.ContainsFunc(v, func(e any) bool {
			switch e.(type) {
			case map[string]any, []any:
				return true
			}
			return false
		})
		if flat {
			buf.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					buf.WriteString(", ")
				}
				if err := scalar(buf, e); err != nil {
					return err
				}
			}
			buf.WriteByte(']')
			return nil
		}
		buf.WriteString("[\n")
		for i, e := range v {
			buf.WriteString(inner)
			if err := pretty(buf, e, inner); err != nil {
				return err
			}
			if i < len(v)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	default:
		return scalar(buf, v)
	}
	return nil
}

// scalar writes a string, number, bool or null as JSON, without HTML
// escapes.
func scalar(buf *bytes.Buffer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}

// readGolden reads one answer file.
func readGolden(name string) (golden, error) {
	var g golden
	b, err := os.ReadFile(name)
	if err != nil {
		return g, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("cannot decode %s: %w", name, err)
	}
	return g, nil
}
