package parse

import (
	"testing"
)

func TestParsePrecision(t *testing.T) {
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
		{name: "invalid", prec: 42, want: "Precision(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.prec.String()
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if tt.prec.valid() {
				back, err := ParsePrecision(got)
				if err != nil || back != tt.prec {
					t.Errorf("ParsePrecision(%q): got %v, %v, want %v, nil", got, back, err, tt.prec)
				}
			}
		})
	}
}

func TestInvalidPrecisionPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{name: "NewParser", f: func() { NewParser(Hour + 1) }},
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
