package schema

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTableName(t *testing.T) {
	t.Parallel()
	short := strings.Repeat("a", 63)
	if got := TableName(short); got != short {
		t.Errorf("got %q, want the 63-byte name unchanged", got)
	}
	long1 := strings.Repeat("a", 63) + "1"
	long2 := strings.Repeat("a", 63) + "2"
	n1, n2 := TableName(long1), TableName(long2)
	if n1 == n2 {
		t.Errorf("two long names sharing 63 bytes map to one table %q", n1)
	}
	if n1 != TableName(long1) {
		t.Error("not deterministic")
	}
	for _, n := range []string{n1, n2, TableName(strings.Repeat("é", 40))} {
		if len(n) > 63 || !utf8.ValidString(n) {
			t.Errorf("%q: %d bytes, valid UTF-8 %v", n, len(n), utf8.ValidString(n))
		}
	}
	if want := strings.Repeat("a", 50) + "_"; !strings.HasPrefix(n1, want) || len(n1) != 63 {
		t.Errorf("got %q, want 50 bytes of the name, _, 12 hex digits", n1)
	}
}
