package parse

import (
	"bytes"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestFieldValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		value  string // as written after "m f="
		kind   Kind
		want   any
		reason Reason // if the line is rejected
	}{
		{name: "float", value: "1.5", kind: Float, want: 1.5},
		{name: "float negative", value: "-1.5", kind: Float, want: -1.5},
		{name: "float without point", value: "2", kind: Float, want: 2.0},
		{name: "float zero", value: "0", kind: Float, want: 0.0},
		{name: "float negative zero", value: "-0", kind: Float, want: math.Copysign(0, -1)},
		{name: "float leading point", value: ".5", kind: Float, want: 0.5},
		{name: "float trailing point", value: "5.", kind: Float, want: 5.0},
		{name: "float exponent", value: "1e3", kind: Float, want: 1000.0},
		{name: "float exponent capital", value: "1E3", kind: Float, want: 1000.0},
		{name: "float exponent plus", value: "1.5e+3", kind: Float, want: 1500.0},
		{name: "float exponent minus", value: "-2.5e-3", kind: Float, want: -0.0025},
		{name: "float max", value: "1.7976931348623157e308", kind: Float, want: math.MaxFloat64},
		{name: "float underflow is zero", value: "1e-400", kind: Float, want: 0.0},
		{name: "float hex", value: "0x1p3", reason: ReasonSyntax},
		{name: "float hex capital", value: "0X1P-2", reason: ReasonSyntax},
		{name: "float hex mantissa", value: "0x10", reason: ReasonSyntax},
		{name: "float leading plus", value: "-+1", reason: ReasonSyntax},
		{name: "float minus inside", value: "1-2", reason: ReasonSyntax},
		{name: "float plus not after exponent", value: "1.5+3", reason: ReasonSyntax},
		{name: "float exponent without digits", value: "1e", reason: ReasonSyntax},
		{name: "float exponent underscore", value: "1.5e1_0", reason: ReasonSyntax},
		{name: "float point alone", value: ".", reason: ReasonSyntax},
		{name: "float minus alone", value: "-", reason: ReasonSyntax},
		{name: "float binary", value: "0b1", reason: ReasonSyntax},
		{name: "float leading zeros", value: "007.5", kind: Float, want: 7.5},
		{name: "float negative infinity", value: "-Inf", reason: ReasonSyntax},
		{name: "float negative infinity word", value: "-infinity", reason: ReasonSyntax},
		{name: "float negative NaN", value: "-NaN", reason: ReasonSyntax},
		{name: "float overflow", value: "1e400", reason: ReasonOutOfRange},
		{name: "float negative overflow", value: "-1e400", reason: ReasonOutOfRange},
		{name: "float garbage", value: "1.5x", reason: ReasonSyntax},
		{name: "float two points", value: "1.2.3", reason: ReasonSyntax},
		{name: "float underscore", value: "1_000", reason: ReasonSyntax},
		{name: "float underscore after point", value: "1.0_0", reason: ReasonSyntax},
		{name: "float misplaced underscore", value: "1__0", reason: ReasonSyntax},
		{name: "NaN", value: "NaN", reason: ReasonSyntax},
		{name: "nan", value: "nan", reason: ReasonSyntax},
		{name: "negative nan", value: "-nan", reason: ReasonSyntax},
		{name: "Inf", value: "Inf", reason: ReasonSyntax},
		{name: "inf", value: "inf", reason: ReasonSyntax},
		{name: "plus Inf", value: "+Inf", reason: ReasonSyntax},
		{name: "minus Inf", value: "-Inf", reason: ReasonSyntax},
		{name: "minus inf", value: "-inf", reason: ReasonSyntax},
		{name: "minus Infinity", value: "-Infinity", reason: ReasonSyntax},

		{name: "int", value: "42i", kind: Int, want: int64(42)},
		{name: "int zero", value: "0i", kind: Int, want: int64(0)},
		{name: "int negative", value: "-42i", kind: Int, want: int64(-42)},
		{name: "int max", value: "9223372036854775807i", kind: Int, want: int64(math.MaxInt64)},
		{name: "int min", value: "-9223372036854775808i", kind: Int, want: int64(math.MinInt64)},
		{name: "int overflow", value: "9223372036854775808i", reason: ReasonOutOfRange},
		{name: "int underflow", value: "-9223372036854775809i", reason: ReasonOutOfRange},
		{name: "int with point", value: "1.5i", reason: ReasonSyntax},
		{name: "int plus sign", value: "+1i", reason: ReasonSyntax},
		{name: "int minus only", value: "-i", reason: ReasonSyntax},
		{name: "int suffix only", value: "i", reason: ReasonSyntax},

		{name: "uint", value: "42u", kind: Uint, want: uint64(42)},
		{name: "uint zero", value: "0u", kind: Uint, want: uint64(0)},
		{name: "uint max", value: "18446744073709551615u", kind: Uint, want: uint64(math.MaxUint64)},
		{name: "uint overflow", value: "18446744073709551616u", reason: ReasonOutOfRange},
		{name: "uint negative", value: "-1u", reason: ReasonSyntax},

		{name: "bool t", value: "t", kind: Bool, want: true},
		{name: "bool T", value: "T", kind: Bool, want: true},
		{name: "bool true", value: "true", kind: Bool, want: true},
		{name: "bool True", value: "True", kind: Bool, want: true},
		{name: "bool TRUE", value: "TRUE", kind: Bool, want: true},
		{name: "bool f", value: "f", kind: Bool, want: false},
		{name: "bool F", value: "F", kind: Bool, want: false},
		{name: "bool false", value: "false", kind: Bool, want: false},
		{name: "bool False", value: "False", kind: Bool, want: false},
		{name: "bool FALSE", value: "FALSE", kind: Bool, want: false},
		{name: "bool mixed case", value: "tRUE", reason: ReasonSyntax},
		{name: "bool truthy", value: "tru", reason: ReasonSyntax},
		{name: "bool yes", value: "yes", reason: ReasonSyntax},

		{name: "string", value: `"hello"`, kind: String, want: "hello"},
		{name: "string empty", value: `""`, kind: String, want: ""},
		{name: "string escaped quote", value: `"say \"hi\""`, kind: String, want: `say "hi"`},
		{name: "string escaped backslash", value: `"a\\b"`, kind: String, want: `a\b`},
		{name: "string escaped backslash before quote", value: `"a\\"`, kind: String, want: `a\`},
		{name: "string lone backslash kept", value: `"a\b"`, kind: String, want: `a\b`},
		{name: "string escaped newline", value: `"a\nb"`, kind: String, want: "a\nb"},
		{name: "string escaped tab and return", value: `"a\tb\rc"`, kind: String, want: "a\tb\rc"},
		{name: "string raw newline", value: "\"a\nb\"", kind: String, want: "a\nb"},
		{name: "string raw tab", value: "\"a\tb\"", kind: String, want: "a\tb"},
		{name: "string with separators", value: `"a,b c=d"`, kind: String, want: "a,b c=d"},
		{name: "string looks like a number", value: `"1i"`, kind: String, want: "1i"},
		{name: "string unicode", value: `"héllo ☃ 🎉"`, kind: String, want: "héllo ☃ 🎉"},
		{name: "string unterminated", value: `"abc`, reason: ReasonSyntax},

		{name: "missing", value: "", reason: ReasonSyntax},
		{name: "bare word", value: "abc", reason: ReasonSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := parseAll(t, Nanosecond, "m f="+tt.value+" 1\n")
			want := []outcome{bad(1, tt.reason)}
			if tt.reason == 0 {
				want = []outcome{ok(&point{Measurement: "m", Fields: []field{{"f", tt.kind, tt.want}}, Time: 1, Line: 1})}
			}
			checkOutcomes(t, got, want)
			if tt.kind == Float && len(got) == 1 && got[0].Point != nil {
				// DeepEqual takes 0 == -0.
				g, w := got[0].Point.Fields[0].Value.(float64), tt.want.(float64)
				if math.Float64bits(g) != math.Float64bits(w) {
					t.Errorf("got bits %#x, want %#x", math.Float64bits(g), math.Float64bits(w))
				}
			}
		})
	}
}

func TestEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want *point
	}{
		{name: "measurement space", line: `my\ cpu f=1`, want: &point{Measurement: "my cpu"}},
		{name: "measurement comma", line: `my\,cpu f=1`, want: &point{Measurement: "my,cpu"}},
		{name: "measurement equals needs no escape", line: `a=b f=1`, want: &point{Measurement: "a=b"}},
		{name: "measurement escaped equals keeps backslash", line: `a\=b f=1`, want: &point{Measurement: `a\=b`}},
		{name: "measurement backslash kept", line: `a\b f=1`, want: &point{Measurement: `a\b`}},
		{name: "measurement quote", line: `"m" f=1`, want: &point{Measurement: `"m"`}},
		{name: "measurement hash inside", line: `m#1 f=1`, want: &point{Measurement: "m#1"}},
		{name: "measurement escaped leading space", line: `\ m f=1`, want: &point{Measurement: " m"}},
		{
			name: "tag key escapes", line: `m,a\ b=1,c\,d=2,e\=f=3 f=1`,
			want: &point{Measurement: "m", Tags: []tag{{"a b", "1"}, {"c,d", "2"}, {"e=f", "3"}}},
		},
		{
			name: "tag value escapes", line: `m,a=x\ y,b=x\,y,c=x\=y f=1`,
			want: &point{Measurement: "m", Tags: []tag{{"a", "x y"}, {"b", "x,y"}, {"c", "x=y"}}},
		},
		{
			name: "tag backslash kept", line: `m,a\b=c\d f=1`,
			want: &point{Measurement: "m", Tags: []tag{{`a\b`, `c\d`}}},
		},
		{
			name: "tag double backslash then escape", line: `m,a=x\\,b f=1`,
			want: &point{Measurement: "m", Tags: []tag{{"a", `x\,b`}}},
		},
		{
			name: "tag quotes are plain", line: `m,a="x" f=1`,
			want: &point{Measurement: "m", Tags: []tag{{"a", `"x"`}}},
		},
		{
			name: "field key escapes", line: `m a\ b=1,c\,d=2,e\=f=3`,
			want: &point{Measurement: "m", Fields: []field{{"a b", Float, 1.0}, {"c,d", Float, 2.0}, {"e=f", Float, 3.0}}},
		},
		{
			name: "field key backslash kept", line: `m a\b=1`,
			want: &point{Measurement: "m", Fields: []field{{`a\b`, Float, 1.0}}},
		},
		{
			name: "string value escapes", line: `m s="a \"b\" \\c\\ d\e"`,
			want: &point{Measurement: "m", Fields: []field{{"s", String, `a "b" \c\ d\e`}}},
		},
		{
			name: "everything escaped", line: `a\ b,c\ d=e\ f g\ h="i\"j" 5`,
			want: &point{Measurement: "a b", Tags: []tag{{"c d", "e f"}}, Fields: []field{{"g h", String, `i"j`}}, Time: 5},
		},
		{
			name: "unicode names", line: `温度,地点=東京,🏠=🌡 値=1.5,ключ="значение"`,
			want: &point{Measurement: "温度", Tags: []tag{{"地点", "東京"}, {"🏠", "🌡"}}, Fields: []field{{"値", Float, 1.5}, {"ключ", String, "значение"}}},
		},
		{
			name: "duplicate tags kept, duplicate fields last wins", line: `m,t=1,t=2,a=3 f=1,f=2i,b=true,f="x"`,
			want: &point{
				Measurement: "m",
				Tags:        []tag{{"t", "1"}, {"t", "2"}, {"a", "3"}},
				Fields:      []field{{"b", Bool, true}, {"f", String, "x"}},
			},
		},
		{
			name: "spaces between sections", line: `m,t=1   f=1    7   `,
			want: &point{Measurement: "m", Tags: []tag{{"t", "1"}}, Fields: []field{{"f", Float, 1.0}}, Time: 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := *tt.want
			if want.Fields == nil {
				want.Fields = []field{{"f", Float, 1.0}}
			}
			if want.Time == 0 {
				want.Time = testNow.UnixNano()
			}
			want.Line = 1
			got, _ := parseAll(t, Nanosecond, tt.line)
			checkOutcomes(t, got, []outcome{ok(&want)})
		})
	}
}

func TestTimestamps(t *testing.T) {
	t.Parallel()
	now := testNow.UnixNano()
	tests := []struct {
		name   string
		prec   Precision
		ts     string // after "m f=1"; empty for none
		want   int64
		reason Reason
	}{
		{name: "missing ns", prec: Nanosecond, want: now},
		{name: "missing s is not truncated", prec: Second, want: now},
		{name: "missing h", prec: Hour, want: now},
		{name: "ns", prec: Nanosecond, ts: "1574753954123456789", want: 1574753954123456789},
		{name: "us", prec: Microsecond, ts: "1574753954123456", want: 1574753954123456000},
		{name: "ms", prec: Millisecond, ts: "1574753954123", want: 1574753954123000000},
		{name: "s", prec: Second, ts: "1574753954", want: 1574753954000000000},
		{name: "m", prec: Minute, ts: "26245899", want: 26245899 * 60e9},
		{name: "h", prec: Hour, ts: "437431", want: 437431 * 3600e9},
		{name: "zero", prec: Second, ts: "0", want: 0},
		{name: "negative ns", prec: Nanosecond, ts: "-1", want: -1},
		{name: "negative s", prec: Second, ts: "-86400", want: -86400e9},
		{name: "negative zero", prec: Second, ts: "-0", want: 0},
		{name: "ns max", prec: Nanosecond, ts: "9223372036854775807", want: math.MaxInt64},
		{name: "ns min", prec: Nanosecond, ts: "-9223372036854775808", want: math.MinInt64},
		{name: "ns overflow", prec: Nanosecond, ts: "9223372036854775808", reason: ReasonOutOfRange},
		{name: "ns underflow", prec: Nanosecond, ts: "-9223372036854775809", reason: ReasonOutOfRange},
		{name: "us max", prec: Microsecond, ts: "9223372036854775", want: 9223372036854775000},
		{name: "us overflow", prec: Microsecond, ts: "9223372036854776", reason: ReasonOutOfRange},
		{name: "ms max", prec: Millisecond, ts: "9223372036854", want: 9223372036854000000},
		{name: "ms overflow", prec: Millisecond, ts: "9223372036855", reason: ReasonOutOfRange},
		{name: "s max", prec: Second, ts: "9223372036", want: 9223372036e9},
		{name: "s overflow", prec: Second, ts: "9223372037", reason: ReasonOutOfRange},
		{name: "s min", prec: Second, ts: "-9223372036", want: -9223372036e9},
		{name: "s underflow", prec: Second, ts: "-9223372037", reason: ReasonOutOfRange},
		{name: "m max", prec: Minute, ts: "153722867", want: 153722867 * 60e9},
		{name: "m overflow", prec: Minute, ts: "153722868", reason: ReasonOutOfRange},
		{name: "h max", prec: Hour, ts: "2562047", want: 2562047 * 3600e9},
		{name: "h overflow", prec: Hour, ts: "2562048", reason: ReasonOutOfRange},
		{name: "h underflow", prec: Hour, ts: "-2562048", reason: ReasonOutOfRange},
		{name: "huge at s", prec: Second, ts: "99999999999999999999999", reason: ReasonOutOfRange},
		{name: "trailing spaces", prec: Nanosecond, ts: "5   ", want: 5},
		{name: "letters", prec: Nanosecond, ts: "12a", reason: ReasonSyntax},
		{name: "minus inside", prec: Nanosecond, ts: "1-2", reason: ReasonSyntax},
		{name: "minus only", prec: Nanosecond, ts: "-", reason: ReasonSyntax},
		{name: "float", prec: Nanosecond, ts: "1.5", reason: ReasonSyntax},
		{name: "text after", prec: Nanosecond, ts: "5 x", reason: ReasonSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "m f=1"
			if tt.ts != "" {
				line += " " + tt.ts
			}
			got, _ := parseAll(t, tt.prec, line)
			want := []outcome{bad(1, tt.reason)}
			if tt.reason == 0 {
				want = []outcome{ok(&point{Measurement: "m", Fields: []field{{"f", Float, 1.0}}, Time: tt.want, Line: 1})}
			}
			checkOutcomes(t, got, want)
		})
	}
}

// pt returns a point of measurement m with one field f=1 at time 1.
func pt(m string, line int64) *point {
	return &point{Measurement: m, Fields: []field{{"f", Float, 1.0}}, Time: 1, Line: line}
}

func TestBuffers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []outcome
	}{
		{name: "empty", data: "", want: nil},
		{name: "only blank lines", data: "\n\n  \n\r\n", want: nil},
		{name: "only comments", data: "# a\n  # b\n#", want: nil},
		{name: "one line", data: "a f=1 1\n", want: []outcome{ok(pt("a", 1))}},
		{name: "no newline at end", data: "a f=1 1\nb f=1 1", want: []outcome{ok(pt("a", 1)), ok(pt("b", 2))}},
		{name: "no newline at end without timestamp", data: "a f=1 1\nb f=1", want: []outcome{
			ok(pt("a", 1)), ok(&point{Measurement: "b", Fields: []field{{"f", Float, 1.0}}, Time: testNow.UnixNano(), Line: 2}),
		}},
		{name: "CRLF", data: "a f=1 1\r\nb f=1 1\r\n\r\nc f=1 1\r\n", want: []outcome{ok(pt("a", 1)), ok(pt("b", 2)), ok(pt("c", 4))}},
		{name: "CRLF without timestamp", data: "a f=\"x\"\r\nb f=1 1\r\n", want: []outcome{
			ok(&point{Measurement: "a", Fields: []field{{"f", String, "x"}}, Time: testNow.UnixNano(), Line: 1}), ok(pt("b", 2)),
		}},
		{name: "comments and blank lines", data: "# header\n\na f=1 1\n   \n  # indented comment\n\tb f=1 1\nc f=1 1 # not a comment\n", want: []outcome{
			ok(pt("a", 3)), bad(6, ReasonSyntax), bad(7, ReasonSyntax),
		}},
		{name: "leading spaces", data: "   a f=1 1\n", want: []outcome{ok(pt("a", 1))}},
		{name: "bad line in the middle", data: "a f=1 1\nb,t= f=1 1\nc f=1 1\n", want: []outcome{ok(pt("a", 1)), bad(2, ReasonSyntax), ok(pt("c", 3))}},
		{name: "bad first and last lines", data: "a,\nb f=1 1\nc f=1 1 x", want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 2)), bad(3, ReasonSyntax)}},
		{name: "bad lines in a row", data: "a f=\nb f=zz\nc f=1i1\nd f=1 1\n", want: []outcome{
			bad(1, ReasonSyntax), bad(2, ReasonSyntax), bad(3, ReasonSyntax), ok(pt("d", 4)),
		}},
		{name: "value errors mid line do not leak", data: "a f=99999999999999999999i,g=\"x\ny\" 1\nb f=1 1\n", want: []outcome{
			bad(1, ReasonOutOfRange), ok(pt("b", 3)),
		}},
		{name: "string spanning lines", data: "a s=\"x\ny\nz\",f=1 1\nb f=1 1\n", want: []outcome{
			ok(&point{Measurement: "a", Fields: []field{{"s", String, "x\ny\nz"}, {"f", Float, 1.0}}, Time: 1, Line: 1}), ok(pt("b", 4)),
		}},
		{name: "unterminated string eats the rest", data: "a f=1 1\nb s=\"x\nc f=1 1\n", want: []outcome{ok(pt("a", 1)), bad(2, ReasonSyntax)}},
		{name: "escaped entry after others", data: "a f=1 1\n\n# c\nx\\ y z\\ w=\"q\\\"r\"\nb f=1 1\n", want: []outcome{
			ok(pt("a", 1)),
			ok(&point{Measurement: "x y", Fields: []field{{"z w", String, `q"r`}}, Time: testNow.UnixNano(), Line: 4}),
			ok(pt("b", 5)),
		}},
		{name: "escaped entry after a bad string spanning lines", data: "a s=\"\xff\nb f=1\" 1\nx\\ y z\\ w=\"q\\\"r\"\nc f=1 1\n", want: []outcome{
			bad(1, ReasonInvalidUTF8),
			ok(&point{Measurement: "x y", Fields: []field{{"z w", String, `q"r`}}, Time: testNow.UnixNano(), Line: 3}),
			ok(pt("c", 4)),
		}},
		{name: "escaped entries rejected by the parser", data: "x\\ y z\\ w=\"q\\\"\x00\"\nx\\ y z\\ w=\"q\\\"\",n=1e999\n", want: []outcome{
			bad(1, ReasonNulByte), bad(2, ReasonOutOfRange),
		}},
		{name: "comment with a tab is an error", data: "# a\tb\na f=1 1\n", want: []outcome{bad(1, ReasonSyntax), ok(pt("a", 2))}},
		{name: "comment with invalid UTF-8 is skipped", data: "# \xff\na f=1 1\n", want: []outcome{ok(pt("a", 2))}},
		{name: "lone carriage return", data: "a f=1 1\r\r\nb f=1 1\n", want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 2))}},
		{name: "lone carriage returns split a line", data: "a f=1 \rx f=1 \ry\nb f=1 1\n", want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 2))}},
		{name: "lone carriage returns after a bad value", data: "a s=\"x\ny\",f=1x \r0\nb f=1 1\n", want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 3))}},
		{name: "many lone carriage returns", data: "a f=1 1\n" + strings.Repeat("a f=1 \r", 20000) + "\nb f=1 1\n", want: []outcome{
			ok(pt("a", 1)), bad(2, ReasonSyntax), ok(pt("b", 3)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := parseAll(t, Nanosecond, tt.data)
			checkOutcomes(t, got, tt.want)
		})
	}
}

func TestNoFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
	}{
		{name: "measurement", line: "m"},
		{name: "measurement newline", line: "m\nok f=1"},
		{name: "measurement space", line: "m "},
		{name: "measurement space newline", line: "m \nok f=1"},
		{name: "tags", line: "m,t=v"},
		{name: "tags newline", line: "m,t=v\nok f=1"},
		{name: "tags space", line: "m,t=v "},
		{name: "tags timestamp", line: "m,t=v 123"},
		{name: "trailing comma", line: "m,t=v, f=1"},
		{name: "field comma only", line: "m f=1,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := parseAll(t, Nanosecond, tt.line)
			want := []outcome{bad(1, ReasonSyntax)}
			if strings.Contains(tt.line, "\nok") {
				want = append(want, ok(&point{Measurement: "ok", Fields: []field{{"f", Float, 1.0}}, Time: testNow.UnixNano(), Line: 2}))
			}
			checkOutcomes(t, got, want)
			if len(errs) > 0 && errs[0].Err == nil {
				t.Errorf("got a LineError without Err")
			}
		})
	}
}

func TestParserReuse(t *testing.T) {
	t.Parallel()
	p := NewParser(Second)
	if pt, err := p.Next(); pt != nil || err != io.EOF {
		t.Fatalf("Next before Reset: got %v, %v, want nil, EOF", pt, err)
	}
	a, _, err := collect(p, []byte("a f=1 1\n"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, a, []outcome{ok(&point{Measurement: "a", Fields: []field{{"f", Float, 1.0}}, Time: 1e9, Line: 1})})
	for range 2 {
		if pt, err := p.Next(); pt != nil || err != io.EOF {
			t.Fatalf("Next after EOF: got %v, %v, want nil, EOF", pt, err)
		}
	}

	// SetPrecision waits for the next Reset.
	p.Reset([]byte("b f=1 2\nc f=1 3\n"), testNow)
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	p.SetPrecision(Millisecond)
	pt, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	if pt.Time != 3e9 {
		t.Errorf("after SetPrecision mid-buffer: got %v, want %v", pt.Time, int64(3e9))
	}
	b, _, err := collect(p, []byte("d f=1 4\n"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, b, []outcome{ok(&point{Measurement: "d", Fields: []field{{"f", Float, 1.0}}, Time: 4e6, Line: 1})})

	// A zero Parser works at Nanosecond.
	var z Parser
	c, _, err := collect(&z, []byte("e f=1 5\n"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, c, []outcome{ok(&point{Measurement: "e", Fields: []field{{"f", Float, 1.0}}, Time: 5, Line: 1})})
}

func TestPointDoesNotAliasSpareCapacity(t *testing.T) {
	t.Parallel()
	data := []byte(`m,t=v f=1,s="x" 1` + "\n" + `m\ 2,t\ k=v\ 2 f\ 2=1,s="x\"y" 1`)
	orig := bytes.Clone(data)
	p := NewParser(Nanosecond)
	p.Reset(data, testNow)
	for {
		pt, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all := [][]byte{pt.Measurement}
		for _, tg := range pt.Tags {
			all = append(all, tg.Key, tg.Value)
		}
		for _, f := range pt.Fields {
			all = append(all, f.Key, f.Str)
		}
		for _, b := range all {
			if len(b) != cap(b) {
				t.Errorf("token %q: got cap %v, want %v", b, cap(b), len(b))
			}
			_ = append(b, "XXXX"...)
		}
	}
	if !bytes.Equal(data, orig) {
		t.Errorf("data changed: got %q, want %q", data, orig)
	}
}

func TestParserAllocs(t *testing.T) {
	// Not parallel: testing.AllocsPerRun panics while a parallel test runs.
	data := benchBuffers(1)[0]
	p := NewParser(Nanosecond)
	now := time.Now()
	parse := func() {
		p.Reset(data, now)
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
	}
	parse()
	// The fast path allocates nothing, nor does Reset.
	if got := testing.AllocsPerRun(100, parse); got > 0 {
		t.Errorf("got %v allocations per buffer of %d lines, want 0", got, bytes.Count(data, []byte("\n")))
	}

	escaped := []byte(strings.Repeat(`a\ b,c\ d=e\ f g\ h=1,s="x\"y" 1`+"\n", 10))
	p.Reset(escaped, now)
	parse()
	if got := testing.AllocsPerRun(100, func() {
		p.Reset(escaped, now)
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
	}); got > 1 {
		t.Errorf("escaped lines: got %v allocations per buffer, want at most 1", got)
	}

	// A run of lines for the decoder makes one decoder.
	mixed := []byte(strings.Repeat("a f=1 1\n"+`a\ b f=1 1`+"\n"+`c f="\"" 1`+"\n", 10))
	p.Reset(mixed, now)
	parse()
	if got := testing.AllocsPerRun(100, func() {
		p.Reset(mixed, now)
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
	}); got > 10 {
		t.Errorf("mixed lines: got %v allocations per buffer, want at most 10", got)
	}
}

func TestParserLine(t *testing.T) {
	t.Parallel()
	data := []byte("a f=1 1\r\nbad,\r\n# c\nx\\ y z\\ w=\"q\\\"\x00\"\nb f=1 1\nc s=\"x\ny\",f=1x 1\nlast,")
	want := map[int64]string{2: "bad,", 4: "x\\ y z\\ w=\"q\\\"\x00\"", 6: "c s=\"x\ny\",f=1x 1", 8: "last,"}
	p := NewParser(Nanosecond)
	p.Reset(data, testNow)
	var lines []int64
	for {
		_, err := p.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			continue
		}
		le := err.(*LineError)
		lines = append(lines, le.Line)
		if got := string(p.Line(le.Line)); got != want[le.Line] {
			t.Errorf("Line(%d): got %q, want %q", le.Line, got, want[le.Line])
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got rejected lines %v, want %v", lines, want)
	}
	if got := p.Line(1); string(got) != "a f=1 1" {
		t.Errorf("Line(1) after the end: got %q, want %q", got, "a f=1 1")
	}
	if got := p.Line(99); got != nil {
		t.Errorf("Line(99): got %q, want nil", got)
	}
}
