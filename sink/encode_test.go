package sink

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/pginflux/pginflux/parse"
)

// TestJSONFloatText: a float goes into jsonb as written when the parser
// found it a plain decimal (exactly its float64, valid JSON, in float
// form); else it is formatted, keeping a point.
func TestJSONFloatText(t *testing.T) {
	t.Parallel()
	p := parse.NewParser(parse.Nanosecond)
	for _, tt := range []struct {
		text, want string
	}{
		{"93.877551", "93.877551"},
		{"-0.5", "-0.5"},
		{"2.50", "2.50"}, // the same number; jsonb keeps the scale
		{"0.000000000000001", "0.000000000000001"},
		{"2", "2.0"},      // no point: formatted
		{"2.", "2.0"},     // not JSON
		{".5", "0.5"},     // not JSON
		{"00.5", "0.5"},   // not JSON
		{"-01.5", "-1.5"}, // not JSON
		{"1e21", "1000000000000000000000.0"},
		{"1.5E3", "1500.0"},
		{"1234567890123456.5", "1234567890123456.5"},    // 17 digits: formatted
		{"0.1000000000000000055511151231257827", "0.1"}, // beyond float64: formatted
	} {
		p.Reset([]byte("m f="+tt.text+" 1\n"), time.Now())
		pt, err := p.Next()
		if err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		f := pt.Fields[0]
		if got := string(appendJSONValue(nil, &f)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.text, got, tt.want)
		}
		x, _ := strconv.ParseFloat(tt.text, 64)
		if f.Num != math.Float64bits(x) {
			t.Errorf("%s: value %v, want %v", tt.text, f.Float(), x)
		}
	}
}
