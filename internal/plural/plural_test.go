package plural

import "testing"

func TestCount(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "one", got: Count(1, "row"), want: "1 row"},
		{name: "zero", got: Count(0, "row"), want: "0 rows"},
		{name: "many", got: Count(int64(12), "datagram"), want: "12 datagrams"},
		{name: "negative", got: Count(-1, "row"), want: "-1 rows"},
		{name: "unsigned", got: Count(uint64(1<<63), "byte"), want: "9223372036854775808 bytes"},
		{name: "irregular one", got: Of(1, "series", "series"), want: "1 series"},
		{name: "irregular many", got: Of(3, "entry", "entries"), want: "3 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
