package parse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fastSeeds are lines at the edges of what the fast path takes.
var fastSeeds = []string{
	// Escapes and quotes.
	`m\,n f=1`, `m,t\=k=v f=1`, `m,t=v\ w f=1`, `m f\ g=1`, `m f="a\"b"`, `m f="a\\"`,
	`m f="a\nb"`, `m f="\t"`, `m f="x\"`, `m f="a"b`, `m f="a",g="b" 1`, `m f=""`, `m f="" 1`,
	`m"q f=1`, `m,"t"="v" f=1`, `m "f"=1`, `m=n f=1`, `m,t=v=w f=1`, `m f=1\`, `\m f=1`,
	"m f=\"multi\nline\" 1\nn f=1 2\n", "m f=\"x\r\ny\"\r\n",
	// Floats.
	"m f=NaN", "m f=nan", "m f=Inf", "m f=-Inf", "m f=+Inf", "m f=inf", "m f=-infinity", "m f=Infinity",
	"m f=-0", "m f=-0.0", "m f=0.", "m f=.0", "m f=-.5", "m f=.", "m f=-", "m f=-.", "m f=..5", "m f=5..",
	"m f=1e22", "m f=1e23", "m f=1e-22", "m f=1e-23", "m f=9007199254740993", "m f=9007199254740992",
	"m f=9007199254740991e22", "m f=9007199254740993e-22", "m f=1.7976931348623157e308",
	"m f=1.7976931348623159e308", "m f=1e308", "m f=1e309", "m f=4.9e-324", "m f=2e-324", "m f=1e-400",
	"m f=0e999999", "m f=-0e-999999", "m f=00000000000000000000000001.5", "m f=0.000000000000000000000001",
	"m f=1234567890123456789", "m f=12345678901234567890", "m f=1.234567890123456789e5",
	"m f=1e+5", "m f=1E-5", "m f=1e", "m f=1e+", "m f=1e-", "m f=1ee5", "m f=1e5.5", "m f=1e5e5",
	"m f=0x1p4", "m f=0X10", "m f=1_000", "m f=1.5x", "m f=1.2.3", "m f=-+1", "m f=1-2", "m f=95.9,g=0.05,h=3.",
	"m f=123456789012345678901234567890e-10", "m f=1e10000000000000000000",
	// Integers and unsigned integers.
	"m f=9223372036854775807i", "m f=9223372036854775808i", "m f=-9223372036854775808i",
	"m f=-9223372036854775809i", "m f=00000000000000000000009i", "m f=-00000000000000000000009i",
	"m f=18446744073709551615u", "m f=18446744073709551616u", "m f=000000000000000000000018446744073709551615u",
	"m f=-0i", "m f=-0u", "m f=-1u", "m f=1.5i", "m f=i", "m f=-i", "m f=u", "m f=1iu", "m f=1ui", "m f=+1i",
	"m f=1e3i", "m f=0x10i", "m f=1_0i", "m f=99999999999999999999u", "m f=9999999999999999999u",
	// Booleans.
	"m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 1",
	"m f=tRUE", "m f=tr", "m f=truee", "m f=FaLsE", "m f=t1", "m f=t\tx", "m f=f\"",
	// Line ends, comments, spaces.
	"m f=1\r\n", "m f=1 1\r\n", "m f=1\r", "m f=1 1\r", "m f=1\rx", "m f=1 1\rx", "m f=1\r\r\n", "\r\nm f=1",
	"# c\nm f=1\n", "  # c\r\nm f=1", "#\tc\nm f=1", "#c\rx\nm f=1", "# c \xff\nm f=1", "# c\x7f\nm f=1", "#",
	"\n\n\nm f=1\n\n", "   m f=1", "m  f=1", "m f=1  ", "m f=1  1  ", "m f=1 1 ", "m f=1 1  \n", "m f=1 ",
	"m\tf=1", "m f=1\t1", "m f=1,\tg=1", "m,t=v\tf=1", "m f=1 \t", "m f=1,", "m f=1, g=2", "m,t=v", "m,t=v ",
	"m", "m ", "m,", "m, f=1", "m,t f=1", "m,t= f=1", "m,=v f=1", "m f", "m f=", "m =1", "m f=1 x", "m f=1 1x",
	"m f=1 --1", "m f=1 -", "m f=1 1-", "m f=1 1 1", "m,t=v,u=w f=1i,g=2u,h=\"s\",k=t -1",
	// Timestamps.
	"m f=1 9223372036854775807", "m f=1 9223372036854775808", "m f=1 -9223372036854775808",
	"m f=1 -9223372036854775809", "m f=1 00000000000000000000001", "m f=1 -0", "m f=1 0",
	"m f=1 1574753954000000000", "m f=1 9223372036", "m f=1 9223372037", "m f=1 -9223372037",
	// Repeated keys.
	"m f=1,f=2i,f=\"x\",g=1,f=t 1", "m,t=1,t=2 a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,m=13,n=14,o=15,p=16,q=17,a=18",
	// Other bytes.
	"温度,地点=東京 値=1.5,ключ=\"значение\" 1\n", "m\xff f=1", "m,t=\xff f=1", "m f\xff=1", "m f=\"\xff\"",
	"m f=\"\xed\xa0\x80\"", "m\x00 f=1", "m f=\"\x00\"", "m,t=\x00 f=1", "m\x7f f=1", "m f=1\x00", "m f=1 1\x00",
	"\xef\xbb\xbfm f=1", "m,t=v\u00a0 f=1",
	// Lines the fast path takes, around lines it does not.
	"a f=1 1\nb\\ c f=1 2\nd f=1 3\nbad\ne f=1 4\nf s=\"x\\\"y\"\ng f=1 5\n",
	"a s=\"x\\\"y\"\nb f=1\na s=\"x\\\"y\"\r\nb f=1\n",
}

// fastStep is what one call to Next gave, with what the Parser says of a
// rejected line.
type fastStep struct {
	outcome
	Err  string // LineError.Error()
	Text string // Parser.Line of a rejected line
}

// fastSteps parses data to the end with p.
func fastSteps(p *Parser, data []byte, now time.Time) ([]fastStep, error) {
	p.Reset(data, now)
	var got []fastStep
	for range len(data) + 2 {
		pt, err := p.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				return got, fmt.Errorf("Next returned %T %v, want a *LineError", err, err)
			}
			got = append(got, fastStep{outcome: bad(le.Line, le.Reason), Err: le.Error(), Text: string(p.Line(le.Line))})
			continue
		}
		got = append(got, fastStep{outcome: ok(copyPoint(pt))})
	}
	return got, errors.New("Next did not return io.EOF")
}

// FuzzFastPath checks the Parser against the decoder path alone: the same
// points, and the same errors and rejected lines, for every line.
func FuzzFastPath(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fastSeeds {
		f.Add([]byte(s))
		f.Add([]byte(s + "\nm,t=v f=1 1\n"))
	}
	f.Add(benchBuffers(1)[0])
	// The corpus of FuzzParser, which the fuzzing engine does not share.
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParser", "*"))
	for _, name := range files {
		if b, err := readCorpusFile(name); err == nil {
			f.Add(b)
		} else {
			f.Fatalf("%s: %v", name, err)
		}
	}
	now := time.Unix(1700000000, 123456789)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		for _, prec := range []Precision{Nanosecond, Second} {
			p := NewParser(prec)
			if _, err := fastSteps(p, []byte(fuzzWarmUp), now); err != nil {
				t.Fatal(err)
			}
			got, err := fastSteps(p, data, now)
			if err != nil {
				t.Fatal(err)
			}
			ref := NewParser(prec)
			ref.slowOnly = true
			want, err := fastSteps(ref, data, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("precision %v:\n  fast path:    %v\n  decoder only: %v", prec, got, want)
			}
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("parsing changed data")
		}
	})
}

// readCorpusFile reads the []byte value of a file of the fuzzing engine's
// corpus.
func readCorpusFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, errors.New("not a corpus file of one []byte")
	}
	lit, okPrefix := strings.CutPrefix(lines[1], "[]byte(")
	lit, okSuffix := strings.CutSuffix(lit, ")")
	if !okPrefix || !okSuffix {
		return nil, errors.New("not a corpus file of one []byte")
	}
	s, err := strconv.Unquote(lit)
	return []byte(s), err
}

// FuzzFastNumbers checks the number parsers of the fast path against the
// checks of the decoder path.
func FuzzFastNumbers(f *testing.F) {
	for _, s := range fastSeeds {
		if _, v, ok := strings.Cut(s, "f="); ok {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkNumbers(t, s)
	})
}

// checkNumbers checks parseFloat, parseInt and parseUint on s.
func checkNumbers(t *testing.T, s string) {
	t.Helper()
	b := []byte(s)
	if len(b) > 0 {
		x, err := strconv.ParseFloat(s, 64)
		wantOK := floatSyntax(b) && err == nil && !math.IsInf(x, 0)
		got, ok := parseFloat(b)
		if ok != wantOK || ok && math.Float64bits(got) != math.Float64bits(x) {
			t.Errorf("parseFloat(%q): got %v, %v, want %v, %v", s, got, ok, x, wantOK)
		}
		// A plain decimal is a JSON number in float form whose value is
		// exactly that of the float64's shortest form.
		if _, _, plain := parseFloatPlain(b); plain {
			var js json.Number
			text, short := new(big.Rat), new(big.Rat)
			_, okText := text.SetString(s)
			_, okShort := short.SetString(strconv.FormatFloat(x, 'g', -1, 64))
			if json.Unmarshal(b, &js) != nil || !strings.Contains(s, ".") || strings.ContainsAny(s, "eE") ||
				!okText || !okShort || text.Cmp(short) != 0 {
				t.Errorf("parseFloatPlain(%q): plain, but not JSON or not its float64 %v", s, x)
			}
		}
	}
	xi, err := strconv.ParseInt(s, 10, 64)
	if gi, ok := parseInt(b); ok != (err == nil) || ok && gi != xi {
		t.Errorf("parseInt(%q): got %v, %v, want %v, %v", s, gi, ok, xi, err)
	}
	xu, err := strconv.ParseUint(s, 10, 64)
	if gu, ok := parseUint(b); ok != (err == nil) || ok && gu != xu {
		t.Errorf("parseUint(%q): got %v, %v, want %v, %v", s, gu, ok, xu, err)
	}
}

// TestFastFloats checks parseFloat on random decimals around the edges of
// Clinger's fast path.
func TestFastFloats(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var m uint64
		switch r.IntN(3) {
		case 0:
			m = r.Uint64N(1 << 54)
		case 1:
			m = r.Uint64N(1000000)
		default:
			m = r.Uint64()
		}
		digits := strconv.FormatUint(m, 10)
		if dot := r.IntN(len(digits) + 2); dot <= len(digits) {
			digits = digits[:dot] + "." + digits[dot:]
		}
		if r.IntN(2) == 0 {
			digits = "-" + digits
		}
		if r.IntN(2) == 0 {
			digits += "e" + strconv.Itoa(r.IntN(60)-30)
		}
		checkNumbers(t, digits)
		if t.Failed() {
			return
		}
	}
}

// TestFastPathTakes checks which lines the fast path takes, so that
// FuzzFastPath does not pass because it takes none.
func TestFastPathTakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		take bool
	}{
		{name: "cpu", line: string(bytes.SplitAfter(benchBuffers(1)[0], newline)[0]), take: true},
		{name: "all kinds", line: "m,t=v,u=w f=1.5,i=-2i,u=3u,b=TRUE,s=\"x y,z=\" -1\r\n", take: true},
		{name: "no timestamp", line: "m f=1", take: true},
		{name: "trailing spaces", line: "m f=1 1  \n", take: true},
		{name: "spaces before fields", line: "m   f=1\n", take: true},
		{name: "leading spaces and comments", line: "\n  # c\r\n  m f=1\n", take: true},
		{name: "non-ASCII", line: "温度,地点=東京 値=1.5,s=\"é\" 1", take: true},
		{name: "string with newline", line: "m s=\"a\nb\" 1", take: true},
		{name: "exponent", line: "m f=1e300", take: true},
		{name: "long mantissa", line: "m f=3.14159265358979323846", take: true},
		{name: "repeated keys", line: "m f=1,f=2i", take: true},
		{name: "escaped measurement", line: `m\ n f=1`},
		{name: "escaped string", line: `m s="\""`},
		{name: "backslash in string", line: `m s="\d"`},
		{name: "invalid UTF-8", line: "m\xff f=1"},
		{name: "NUL in string", line: "m s=\"\x00\""},
		{name: "overflow", line: "m f=1e400"},
		{name: "NaN", line: "m f=NaN"},
		{name: "hexadecimal", line: "m f=0x10"},
		{name: "integer overflow", line: "m f=9223372036854775808i"},
		{name: "timestamp overflow", line: "m f=1 9223372036854775808"},
		{name: "no fields", line: "m,t=v"},
		{name: "tab", line: "m\tf=1"},
		{name: "lone CR", line: "m f=1\rx"},
		{name: "text after timestamp", line: "m f=1 1 x"},
		{name: "comment with tab", line: "#\t\nm f=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(Nanosecond)
			p.Reset([]byte(tt.line), testNow)
			s := p.skipBlank(0)
			took := s >= 0 && s < len(tt.line) && p.fastEntry(s) >= 0
			if took != tt.take {
				t.Errorf("%q: got taken %v, want %v", tt.line, took, tt.take)
			}
		})
	}
}
