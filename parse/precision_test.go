package parse

import (
	"math"
	"testing"
	"time"
)

func TestParsePrecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Precision
		wantErr bool
	}{
		{name: "ns", in: "ns", want: Nanosecond},
		{name: "n", in: "n", want: Nanosecond},
		{name: "us", in: "us", want: Microsecond},
		{name: "u", in: "u", want: Microsecond},
		{name: "micro sign", in: "µs", want: Microsecond},
		{name: "greek mu", in: "μs", want: Microsecond},
		{name: "ms", in: "ms", want: Millisecond},
		{name: "s", in: "s", want: Second},
		{name: "m", in: "m", want: Minute},
		{name: "h", in: "h", want: Hour},
		{name: "empty", in: "", wantErr: true},
		{name: "upper case", in: "NS", wantErr: true},
		{name: "duration", in: "1s", wantErr: true},
		{name: "word", in: "seconds", wantErr: true},
		{name: "space", in: " s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrecision(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrecisionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prec Precision
		want string
	}{
		{name: "ns", prec: Nanosecond, want: "ns"},
		{name: "us", prec: Microsecond, want: "us"},
		{name: "ms", prec: Millisecond, want: "ms"},
		{name: "s", prec: Second, want: "s"},
		{name: "m", prec: Minute, want: "m"},
		{name: "h", prec: Hour, want: "h"},
		{name: "auto", prec: Auto, want: "auto"},
		{name: "invalid", prec: 42, want: "Precision(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.prec.String()
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if tt.prec.valid() && tt.prec != Auto {
				back, err := ParsePrecision(got)
				if err != nil || back != tt.prec {
					t.Errorf("ParsePrecision(%q): got %v, %v, want %v, nil", got, back, err, tt.prec)
				}
			}
		})
	}
}

func TestInvalidPrecisionPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func()
	}{
		{name: "NewParser", f: func() { NewParser(Auto + 1) }},
		{name: "SetPrecision", f: func() { NewParser(Second).SetPrecision(255) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("got no panic, want one")
				}
			}()
			tt.f()
		})
	}
}

// TestAutoPrecision: InfluxDB 3's magnitude rule, at its edges, on both
// paths of the parser (the scanner and the decoder, which a backslash
// sends a line to).
func TestAutoPrecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ts   string
		want int64
	}{
		{name: "zero", ts: "0", want: 0},
		{name: "seconds", ts: "1708976567", want: 1708976567e9},
		{name: "last second", ts: "4999999999", want: 4999999999e9},
		{name: "first millisecond", ts: "5000000000", want: 5000000000e6},
		{name: "milliseconds", ts: "1708976567000", want: 1708976567000e6},
		{name: "first microsecond", ts: "5000000000000", want: 5000000000000e3},
		{name: "microseconds", ts: "1708976567000000", want: 1708976567000000e3},
		{name: "first nanosecond", ts: "5000000000000000", want: 5000000000000000},
		{name: "nanoseconds", ts: "1708976567000000000", want: 1708976567000000000},
		{name: "negative seconds", ts: "-1", want: -1e9},
		{name: "negative milliseconds", ts: "-5000000000", want: -5000000000e6},
		{name: "min int64", ts: "-9223372036854775808", want: math.MinInt64},
	}
	p := NewParser(Auto)
	for _, tt := range tests {
		for _, line := range []string{"m v=1 " + tt.ts, `m\ x v=1 ` + tt.ts} {
			t.Run(tt.name+"/"+line[:3], func(t *testing.T) {
				p.Reset([]byte(line), time.Unix(0, 42))
				pt, err := p.Next()
				if err != nil {
					t.Fatal(err)
				}
				if pt.Time != tt.want {
					t.Errorf("got %d, want %d", pt.Time, tt.want)
				}
			})
		}
	}
	p.Reset([]byte("m v=1"), time.Unix(0, 42))
	if pt, err := p.Next(); err != nil || pt.Time != 42 {
		t.Errorf("no timestamp: got %v, %v, want the time given", pt, err)
	}
}
