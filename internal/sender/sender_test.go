package sender

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// datagrams records each Write as one datagram, as a UDP socket would.
type datagrams []string

func (d *datagrams) Write(p []byte) (int, error) {
	*d = append(*d, string(p))
	return len(p), nil
}

func TestAddFrom(t *testing.T) {
	long := strings.Repeat("x", 30)
	huge := "big v=\"" + strings.Repeat("y", MaxPayload) + "\""
	biggest := strings.Repeat("z", MaxPayload-1) // with its newline, exactly MaxPayload
	tests := []struct {
		name      string
		max       int
		input     string
		want      []string
		wantStats Stats
		wantErr   string
	}{
		{name: "empty", max: 100, input: "", want: nil},
		{name: "blank lines only", max: 100, input: "\n\r\n  \n", want: nil},
		{name: "one line without newline", max: 100, input: "cpu v=1", want: []string{"cpu v=1\n"},
			wantStats: Stats{Lines: 1, Datagrams: 1, Bytes: 8}},
		{name: "lines packed", max: 100, input: "a v=1\nb v=2\r\n\nc v=3\n", want: []string{"a v=1\nb v=2\nc v=3\n"},
			wantStats: Stats{Lines: 3, Datagrams: 1, Bytes: 18}},
		// Each line with its newline is 6 bytes: two fit in 12, a third not.
		{name: "exact fit", max: 12, input: "a v=1\nb v=2\nc v=3\nd v=4\ne v=5\n",
			want:      []string{"a v=1\nb v=2\n", "c v=3\nd v=4\n", "e v=5\n"},
			wantStats: Stats{Lines: 5, Datagrams: 3, Bytes: 30}},
		{name: "one byte short", max: 11, input: "a v=1\nb v=2\nc v=3\n",
			want:      []string{"a v=1\n", "b v=2\n", "c v=3\n"},
			wantStats: Stats{Lines: 3, Datagrams: 3, Bytes: 18}},
		{name: "long line alone", max: 16, input: "a v=1\n" + long + "\nb v=2\n",
			want:      []string{"a v=1\n", long + "\n", "b v=2\n"},
			wantStats: Stats{Lines: 3, Datagrams: 3, Bytes: 43}},
		{name: "largest payload", max: 1400, input: "a v=1\n" + biggest + "\nb v=2\n",
			want:      []string{"a v=1\n", biggest + "\n", "b v=2\n"},
			wantStats: Stats{Lines: 3, Datagrams: 3, Bytes: 12 + MaxPayload}},
		{name: "too long for udp", max: 1400, input: "a v=1\n" + huge + "\nb v=2\n" + biggest + "z\nc v=3",
			want:      []string{"a v=1\nb v=2\nc v=3\n"},
			wantStats: Stats{Lines: 3, Datagrams: 1, Bytes: 18, TooLong: 2},
			wantErr:   "line 2: line longer than the largest UDP payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got datagrams
			s := New(&got, tt.max)
			err := s.AddFrom(strings.NewReader(tt.input))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrLineTooLong)):
				t.Fatalf("got error %v, want ErrLineTooLong containing %q", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d datagrams %.200q, want %d %.200q", len(got), got, len(tt.want), tt.want)
			}
			if st := s.Stats(); st != tt.wantStats {
				t.Errorf("got stats %+v, want %+v", st, tt.wantStats)
			}
			for _, d := range got {
				if len(d) > max(tt.max, MaxPayload) {
					t.Errorf("datagram of %d bytes", len(d))
				}
				if len(d) > tt.max && strings.Count(d, "\n") > 1 {
					t.Errorf("datagram of %d bytes (more than %d) holds more than one line", len(d), tt.max)
				}
			}
		})
	}
}

// TestAddFromLinesTooLongCounted checks the line numbers of lines too long
// to send, found by the reader and by Add.
func TestAddFromLinesTooLongCounted(t *testing.T) {
	var got datagrams
	s := New(&got, 1400)
	input := "ok v=1\n" + strings.Repeat("a", 2*MaxPayload) + "\n" + strings.Repeat("b", MaxPayload) + "\nok v=2\n"
	err := s.AddFrom(strings.NewReader(input))
	if err == nil || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "line 3:") {
		t.Fatalf("got error %v, want lines 2 and 3 reported", err)
	}
	if want := []string{"ok v=1\nok v=2\n"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAddFlushesFullDatagram(t *testing.T) {
	var got datagrams
	s := New(&got, 6)
	if err := s.Add([]byte("a v=1")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a v=1\n"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q: a full datagram goes at once", got, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection refused") }

func TestWriteError(t *testing.T) {
	s := New(failingWriter{}, 10)
	err := s.AddFrom(strings.NewReader("a v=1\nb v=2\n"))
	if err == nil || !strings.Contains(err.Error(), "send a datagram of 6 bytes: connection refused") {
		t.Fatalf("got %v, want the write error", err)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("got stats %+v, want nothing sent", st)
	}
}
