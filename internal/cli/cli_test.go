package cli

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

type flags struct {
	address string
	quiet   bool
	count   int
	rate    float64
	wait    time.Duration
}

func newFlagSet() (*flag.FlagSet, *flags) {
	f := &flags{}
	fs := flag.NewFlagSet("pginflux send", flag.ContinueOnError)
	fs.StringVar(&f.address, "address", "127.0.0.1:8089", "UDP `address` to send to")
	fs.BoolVar(&f.quiet, "quiet", false, "print nothing")
	fs.IntVar(&f.count, "count", 1, "`number` of times")
	fs.Float64Var(&f.rate, "rate", 0, "`lines` a second")
	fs.DurationVar(&f.wait, "wait", time.Second, "how long")
	return fs, f
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantRest []string
		want     flags
	}{
		{
			name:     "flags after arguments",
			args:     []string{"x v=1", "--address", "db:8089", "y v=2", "--quiet"},
			wantRest: []string{"x v=1", "y v=2"},
			want:     flags{address: "db:8089", quiet: true, count: 1, wait: time.Second},
		},
		{
			name:     "one dash, equals, booleans with a value",
			args:     []string{"-address=h:1", "--quiet=false", "-count", "3", "--rate=2.5", "--wait", "5s"},
			wantRest: nil,
			want:     flags{address: "h:1", count: 3, rate: 2.5, wait: 5 * time.Second},
		},
		{
			name:     "double dash ends the flags; a lone dash is an argument",
			args:     []string{"-", "--count", "2", "--", "--quiet", "-x"},
			wantRest: []string{"-", "--quiet", "-x"},
			want:     flags{address: "127.0.0.1:8089", count: 2, wait: time.Second},
		},
		{
			name:     "a value may start with a dash",
			args:     []string{"--address", "-weird", "a"},
			wantRest: []string{"a"},
			want:     flags{address: "-weird", count: 1, wait: time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, f := newFlagSet()
			rest, err := Parse(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rest, tt.wantRest) {
				t.Errorf("got arguments %q, want %q", rest, tt.wantRest)
			}
			if *f != tt.want {
				t.Errorf("got %+v, want %+v", *f, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown", args: []string{"a", "--adress", "h:1"}, want: "unknown flag --adress (pginflux send --help lists the flags)"},
		{name: "unknown with one dash", args: []string{"-adress=h:1"}, want: "unknown flag --adress (pginflux send --help lists the flags)"},
		{name: "no value", args: []string{"--address"}, want: "--address needs a value"},
		{name: "bad boolean", args: []string{"--quiet=maybe"}, want: `--quiet: "maybe" is not a boolean (true or false)`},
		{name: "bad number", args: []string{"--count", "ten"}, want: `--count: "ten" is not a whole number`},
		{name: "out of range", args: []string{"--count", "99999999999999999999"}, want: "--count: 99999999999999999999 is out of range"},
		{name: "bad float", args: []string{"--rate", "fast"}, want: `--rate: "fast" is not a number`},
		{name: "bad duration", args: []string{"--wait", "soon"}, want: `--wait: "soon" is not a duration (examples: 500ms, 10s, 2m)`},
		{name: "three dashes", args: []string{"---quiet"}, want: `"---quiet" is not a flag (flags are --name or --name=value)`},
		{name: "empty name", args: []string{"--=1"}, want: `"--=1" is not a flag (flags are --name or --name=value)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, _ := newFlagSet()
			var out bytes.Buffer
			fs.SetOutput(&out)
			_, err := Parse(fs, tt.args)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if out.Len() > 0 {
				t.Errorf("the flag set printed %q", out.String())
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--h", "-help", "--help"} {
		fs, _ := newFlagSet()
		var out bytes.Buffer
		fs.SetOutput(&out)
		if _, err := Parse(fs, []string{"x", arg, "--count", "bad"}); !errors.Is(err, ErrHelp) {
			t.Errorf("%s: got %v, want ErrHelp", arg, err)
		}
		if out.Len() > 0 {
			t.Errorf("%s: the flag set printed %q", arg, out.String())
		}
	}
}

func TestPrintFlags(t *testing.T) {
	fs, _ := newFlagSet()
	var out bytes.Buffer
	PrintFlags(&out, fs, func(name string) string {
		if name == "count" {
			return ""
		}
		return "PGINFLUX_SEND_" + strings.ToUpper(name)
	})
	want := `  --address address
    	UDP address to send to (env PGINFLUX_SEND_ADDRESS, default 127.0.0.1:8089)
  --count number
    	number of times (default 1)
  --quiet
    	print nothing (env PGINFLUX_SEND_QUIET)
  --rate lines
    	lines a second (env PGINFLUX_SEND_RATE)
  --wait duration
    	how long (env PGINFLUX_SEND_WAIT, default 1s)
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
