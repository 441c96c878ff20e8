package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoldenAnswers checks, for each corpus, that the recorded answers
// parse, that each has its query, database and a "results" array, and
// that they are the answers to queries.txt, one each, in order.
func TestGoldenAnswers(t *testing.T) {
	t.Parallel()
	for _, c := range corpora(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			checkGoldenAnswers(t, c)
		})
	}
}

func checkGoldenAnswers(t *testing.T, c corpus) {
	qs := corpusQueries(t, c)
	dir := filepath.Join(c.Dir, "answers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if goldenName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) != len(qs) {
		t.Errorf("got %d answers, want %d (one per query of queries.txt)", len(names), len(qs))
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if want := fmt.Sprintf("%03d.json", i+1); name != want {
				t.Fatalf("got file %s, want %s", name, want)
			}
			g, err := readGolden(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if g.Query == "" || g.DB == "" {
				t.Errorf("got query %q, db %q: want both", g.Query, g.DB)
			}
			if i < len(qs) && (g.Query != qs[i].Text || g.DB != qs[i].DB || g.Epoch != qs[i].Epoch) {
				t.Errorf("got query %q on %q (epoch %q), want %q on %q (epoch %q) (line %d of queries.txt)",
					g.Query, g.DB, g.Epoch, qs[i].Text, qs[i].DB, qs[i].Epoch, qs[i].Line)
			}
			if g.Status != 200 {
				t.Errorf("got status %d, want 200", g.Status)
			}
			answer, ok := g.Answer.(map[string]any)
			if !ok {
				t.Fatalf("got answer %T, want an object", g.Answer)
			}
			results, ok := answer["results"].([]any)
			if !ok || len(results) == 0 {
				t.Fatalf("got results %v, want a non-empty array", answer["results"])
			}
			if n := strings.Count(g.Query, ";") + 1; len(results) != n {
				t.Errorf("got %d results, want %d (one per statement)", len(results), n)
			}
		})
	}
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	body := []byte(`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"h1"},` +
		`"columns":["time","mean"],"values":[[1704067200000000000,1.5],[1704067260000000000,null]]}]}]}`)
	q := query{DB: "telegraf", Text: `SELECT mean("x") FROM "cpu" WHERE time < '2024-01-01T00:00:00Z'`}
	b, err := encodeGolden(q, 200, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"query": "SELECT mean(\"x\") FROM \"cpu\" WHERE time < '2024-01-01T00:00:00Z'",`,
		`[1704067200000000000, 1.5],`,
		`[1704067260000000000, null]`,
		`"columns": ["time", "mean"],`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("got\n%s\nwant a line with %s", b, want)
		}
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", b, err)
	}
	if g.Query != q.Text || g.DB != q.DB || g.Status != 200 {
		t.Errorf("got %q %q %d, want %q %q 200", g.Query, g.DB, g.Status, q.Text, q.DB)
	}
	q.Epoch = "ms"
	withEpoch, err := encodeGolden(q, 200, body)
	if err != nil || !bytes.Contains(withEpoch, []byte("\"db\": \"telegraf\",\n  \"epoch\": \"ms\",\n  \"status\": 200,")) {
		t.Errorf("got (%v)\n%s\nwant the epoch after the database", err, withEpoch)
	}
	q.Epoch = ""
	again, err := encodeGolden(q, 200, body)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("got a different encoding the second time (%v):\n%s", err, again)
	}
	if _, err := encodeGolden(q, 500, []byte("not json")); err == nil {
		t.Errorf("got no error for an answer that is not JSON")
	}
}
