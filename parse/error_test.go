package parse

import (
	"errors"
	"strings"
	"testing"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

func TestRejectedBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		line   string
		reason Reason
	}{
		{name: "NUL at start of measurement", line: "\x00m f=1", reason: ReasonNulByte},
		{name: "NUL in measurement", line: "m\x00 f=1", reason: ReasonNulByte},
		{name: "NUL in escaped measurement", line: "m\\ \x00 f=1", reason: ReasonNulByte},
		{name: "NUL in tag key", line: "m,t\x00=v f=1", reason: ReasonNulByte},
		{name: "NUL as tag key", line: "m,\x00=v f=1", reason: ReasonNulByte},
		{name: "NUL in tag value", line: "m,t=v\x00 f=1", reason: ReasonNulByte},
		{name: "NUL as tag value", line: "m,t=\x00 f=1", reason: ReasonNulByte},
		{name: "NUL in field key", line: "m f\x00=1", reason: ReasonNulByte},
		{name: "NUL in string value", line: "m f=\"a\x00b\"", reason: ReasonNulByte},
		{name: "NUL only in string value", line: "m f=\"\x00\"", reason: ReasonNulByte},
		{name: "NUL in later string value", line: "m a=1,b=\"x\",c=\"y\x00\" 5", reason: ReasonNulByte},
		{name: "NUL in escaped string value", line: "m\\ x f\\ y=\"\\\"\x00\"", reason: ReasonNulByte},
		{name: "NUL in float value", line: "m f=1\x00", reason: ReasonNulByte},
		{name: "NUL in int value", line: "m f=1\x00i", reason: ReasonNulByte},
		{name: "NUL in bool value", line: "m f=t\x00", reason: ReasonNulByte},
		{name: "NUL in timestamp", line: "m f=1 1\x00", reason: ReasonNulByte},
		{name: "NUL in comment", line: "# \x00", reason: ReasonNulByte},

		{name: "invalid UTF-8 in measurement", line: "m\xff f=1", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in tag key", line: "m,t\xc3=v f=1", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in tag value", line: "m,t=\xe2\x82 f=1", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in field key", line: "m \xfff=1", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in string value", line: "m f=\"\xed\xa0\x80\"", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in float value", line: "m f=1\xff", reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in bool value", line: "m f=t\xff", reason: ReasonInvalidUTF8},
		{name: "NUL before invalid UTF-8", line: "m\xff f=\"\x00\"", reason: ReasonNulByte},

		{name: "other control character", line: "m\x01 f=1", reason: ReasonSyntax},
		{name: "DEL in measurement", line: "m\x7f f=1", reason: ReasonSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "a f=1 1\n" + tt.line + "\nb f=1 1"
			got, errs := parseAll(t, Nanosecond, data)
			checkOutcomes(t, got, []outcome{ok(pt("a", 1)), bad(2, tt.reason), ok(pt("b", 3))})
			for _, le := range errs {
				if le.Err == nil {
					t.Errorf("got a LineError without Err")
				}
			}
		})
	}
}

func TestLineError(t *testing.T) {
	t.Parallel()
	_, errs := parseAll(t, Second, "a f=1 1\n\nm,host= f=1\nm f=1e999\nm f=1 99999999999\n")
	if len(errs) != 3 {
		t.Fatalf("got %v errors, want 3", len(errs))
	}

	syntax := errs[0]
	if got, want := syntax.Error(), `line 3: syntax: column 8: expected tag value after tag key "host", but none found`; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	var de *lineprotocol.DecodeError
	if !errors.As(syntax, &de) {
		t.Fatalf("errors.As(%v, *lineprotocol.DecodeError) is false", syntax)
	}
	if got, want := de.Line, int64(3); got != want {
		t.Errorf("DecodeError.Line: got %v, want %v", got, want)
	}
	if got := syntax.Unwrap(); got != syntax.Err {
		t.Errorf("Unwrap: got %v, want %v", got, syntax.Err)
	}

	for _, le := range errs[1:] {
		if le.Reason != ReasonOutOfRange {
			t.Errorf("%v: got reason %v, want %v", le, le.Reason, ReasonOutOfRange)
		}
		if !errors.Is(le, lineprotocol.ErrValueOutOfRange) {
			t.Errorf("errors.Is(%v, lineprotocol.ErrValueOutOfRange) is false", le)
		}
	}
	if got, want := errs[1].Error(), `line 4: out_of_range: field "f": float value "1e999": line-protocol value out of range`; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLineErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prec Precision
		line string
		want string
	}{
		{name: "timestamp overflow", prec: Second, line: "m f=1 99999999999", want: `line 1: out_of_range: timestamp "99999999999" at precision s: line-protocol value out of range`},
		{name: "int overflow", prec: Nanosecond, line: "m f=99999999999999999999i", want: `line 1: out_of_range: field "f": integer value "99999999999999999999": line-protocol value out of range`},
		{name: "bad uint", prec: Nanosecond, line: "m f=-1u", want: `line 1: syntax: field "f": invalid unsigned value "-1"`},
		{name: "infinity", prec: Nanosecond, line: "m f=-Inf", want: `line 1: syntax: field "f": invalid float value "-Inf"`},
		{name: "NUL in string", prec: Nanosecond, line: "m f=\"\x00\"", want: `line 1: nul_byte: string field "f" holds a NUL byte`},
		{name: "bad bool", prec: Nanosecond, line: "m f=tru", want: `line 1: syntax: field "f": invalid boolean value "tru"`},
		{name: "decoder", prec: Nanosecond, line: "m f=NaN", want: `line 1: syntax: column 5: field value has unrecognized type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseAll(t, tt.prec, tt.line)
			if len(errs) != 1 {
				t.Fatalf("got %v errors, want 1", len(errs))
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	t.Parallel()
	want := map[Reason]string{
		ReasonSyntax:      "syntax",
		ReasonOutOfRange:  "out_of_range",
		ReasonNulByte:     "nul_byte",
		ReasonInvalidUTF8: "invalid_utf8",
	}
	if len(Reasons) != len(want) {
		t.Errorf("Reasons: got %v, want %v", Reasons, want)
	}
	for _, r := range Reasons {
		if got := r.String(); got != want[r] {
			t.Errorf("Reason(%d): got %v, want %v", r, got, want[r])
		}
	}
	for _, r := range []Reason{0, Reason(len(Reasons) + 1)} {
		if got := r.String(); !strings.HasPrefix(got, "Reason(") {
			t.Errorf("Reason(%d): got %v, want Reason(...)", r, got)
		}
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind Kind
		want string
	}{
		{name: "float", kind: Float, want: "float"},
		{name: "int", kind: Int, want: "integer"},
		{name: "uint", kind: Uint, want: "unsigned"},
		{name: "string", kind: String, want: "string"},
		{name: "bool", kind: Bool, want: "boolean"},
		{name: "zero", kind: 0, want: "Kind(0)"},
		{name: "unknown", kind: 99, want: "Kind(99)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
