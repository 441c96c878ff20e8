package sink

import (
	"math"
	"strconv"
	"testing"

	"github.com/pginflux/pginflux/parse"
)

// TestJSONFloatText: a float's text goes into jsonb as written only when
// it is a JSON number in float form that is exactly its float64; else the
// float is formatted.
func TestJSONFloatText(t *testing.T) {
	for _, tt := range []struct {
		text, want string
	}{
		{"93.877551", "93.877551"},
		{"-0.5", "-0.5"},
		{"2.50", "2.50"}, // the same number; jsonb keeps the scale
		{"2", "2.0"},     // no point: formatted
		{"2.", "2.0"},    // not JSON
		{".5", "0.5"},    // not JSON
		{"00.5", "0.5"},  // not JSON
		{"+1.5", "1.5"},  // not JSON
		{"1e21", "1000000000000000000000.0"},
		{"1.5E3", "1500.0"},
		{"123456789012345.6", "123456789012345.6"}, // 16 digits: formatted (same here)
		{"0.1000000000000000055511151231257827", "0.1"}, // beyond float64: formatted
		{"0.000000000000001", "0.000000000000001"},
	} {
		x, err := strconv.ParseFloat(tt.text, 64)
		if err != nil {
			t.Fatal(err)
		}
		f := parse.Field{Kind: parse.Float, Num: math.Float64bits(x), Str: []byte(tt.text)}
		if got := string(appendJSONValue(nil, &f)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.text, got, tt.want)
		}
		f.Str = nil // as the decoder path leaves it
		if got, want := string(appendJSONValue(nil, &f)), strconv.FormatFloat(x, 'f', -1, 64); got != want && got != want+".0" {
			t.Errorf("%s without text: got %s, want %s", tt.text, got, want)
		}
	}
}
