package importer

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// chunks runs a chunker over input and returns what it returned, a piece
// a string: whole lines as they are, a long line as "LONG(length,prefix)".
func chunks(t *testing.T, input string, size, maxLine int, r func(io.Reader) io.Reader) (got []string, lines int64) {
	t.Helper()
	var src io.Reader = strings.NewReader(input)
	if r != nil {
		src = r(src)
	}
	c := newChunker(src, size, maxLine)
	for {
		p, err := c.next()
		if errors.Is(err, io.EOF) {
			return got, lines
		}
		if err != nil {
			t.Fatal(err)
		}
		lines += p.lines
		if p.long != nil {
			got = append(got, "LONG("+itoa(p.long.length)+","+string(p.long.prefix)+")")
			continue
		}
		if bytes.Count(p.data, newline) != int(p.lines) {
			t.Fatalf("piece %q says %d lines", p.data, p.lines)
		}
		got = append(got, string(p.data))
		putBuf(p.buf)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestChunker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		input         string
		size, maxLine int
		want          []string
		lines         int64
	}{
		{name: "empty", input: "", size: 8, maxLine: 100, want: nil},
		{name: "one piece", input: "a 1\nb 2\n", size: 64, maxLine: 100, want: []string{"a 1\nb 2\n"}, lines: 2},
		{name: "last line without newline", input: "a 1\nb 2", size: 64, maxLine: 100, want: []string{"a 1\nb 2"}, lines: 1},
		{name: "cut between lines", input: "aa 1\nbb 2\ncc 3\n", size: 8, maxLine: 100, want: []string{"aa 1\n", "bb 2\ncc 3\n"}, lines: 3},
		{name: "two lines a piece", input: "a 1\nb 2\nc 3\nd 4\n", size: 9, maxLine: 100, want: []string{"a 1\nb 2\n", "c 3\nd 4\n"}, lines: 4},
		{name: "line longer than a piece grows it", input: "a 1\nbbbbbbbbbbbbbbbbbbbb 2\nc 3\n", size: 8, maxLine: 100,
			want: []string{"a 1\n", "bbbbbbbbbbbbbbbbbbbb 2\n", "c 3\n"}, lines: 3},
		{name: "line of exactly the limit", input: "aaaaaaaaa\nb\n", size: 4, maxLine: 9, want: []string{"aaaaaaaaa\n", "b\n"}, lines: 2},
		{name: "line over the limit", input: "a\naaaaaaaaaa\nb\n", size: 4, maxLine: 9, want: []string{"a\n", "LONG(10,aaaaaaaaaa)", "b\n"}, lines: 3},
		{name: "long line last, no newline", input: "a\n" + strings.Repeat("x", 25), size: 4, maxLine: 9, want: []string{"a\n", "LONG(25,xxxxxxxxxx)"}, lines: 1},
		{name: "long line of limit+1 at the end", input: strings.Repeat("x", 10), size: 16, maxLine: 9, want: []string{"LONG(10,xxxxxxxxxx)"}, lines: 0},
		{name: "long lines in a row", input: strings.Repeat("y", 30) + "\n" + strings.Repeat("z", 30) + "\nok\n", size: 4, maxLine: 9,
			want: []string{"LONG(30,yyyyyyyyyy)", "LONG(30,zzzzzzzzzz)", "ok\n"}, lines: 3},
		{name: "CRLF", input: "a 1\r\nb 2\r\n", size: 6, maxLine: 100, want: []string{"a 1\r\n", "b 2\r\n"}, lines: 2},
	}
	for _, tt := range tests {
		for _, rd := range []struct {
			name string
			f    func(io.Reader) io.Reader
		}{{"whole", nil}, {"one byte reads", iotest.OneByteReader}, {"data with EOF", iotest.DataErrReader}} {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got, lines := chunks(t, tt.input, tt.size, tt.maxLine, rd.f)
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				if lines != tt.lines {
					t.Errorf("got %d line ends, want %d", lines, tt.lines)
				}
			})
		}
	}
}

// TestChunkerNeverSplitsLines cuts many lines of varied length at several
// sizes: the pieces put together are the input, and each ends a line.
func TestChunkerNeverSplitsLines(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 2000 {
		b.WriteString(strings.Repeat("m", 1+i*7%53))
		b.WriteString(" v=1\n")
	}
	input := b.String()
	for _, size := range []int{1, 7, 64, 1000, 1 << 20} {
		got, _ := chunks(t, input, size, 1<<20, iotest.HalfReader)
		if strings.Join(got, "") != input {
			t.Fatalf("size %d: the pieces are not the input", size)
		}
		for _, p := range got {
			if !strings.HasSuffix(p, "\n") {
				t.Fatalf("size %d: piece %q does not end a line", size, p)
			}
		}
	}
}

func TestChunkerReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	c := newChunker(io.MultiReader(strings.NewReader("a 1\n"), iotest.ErrReader(boom)), 64, 100)
	_, err := c.next()
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
}
