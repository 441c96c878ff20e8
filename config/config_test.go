package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pginflux/pginflux/parse"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Schema:             "metrics",
		Storage:            StorageColumns,
		WriteMode:          "merge",
		UintType:           "numeric",
		MaxColumns:         1000,
		RejectedTable:      "pginflux_rejected",
		UDPAddress:         ":8089",
		UDPReaders:         runtime.GOMAXPROCS(0),
		UDPReadBuffer:      16 << 20,
		Precision:          parse.Nanosecond,
		BatchSize:          10000,
		FlushInterval:      time.Second,
		Writers:            2,
		Parsers:            runtime.GOMAXPROCS(0),
		QueueSize:          16384,
		QueueMaxBytes:      32 << 20,
		MaxPendingRows:     200000,
		MaxMemory:          96 << 20,
		ShutdownTimeout:    30 * time.Second,
		SpoolMaxBytes:      1 << 30,
		HTTPAddress:        ":8086",
		TCPIdleTimeout:     5 * time.Minute,
		MaxLineSize:        64 << 10,
		HTTPMaxBody:        32 << 20,
		HTTPMaxConnections: 1024,
		HTTPMaxWrites:      64,
		QueryTimeout:       30 * time.Second,
		QueryMaxPoints:     10_000_000,
		QueryMaxSeries:     100_000,
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
	}
	c.Database = ""
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "environment twin",
			env:  map[string]string{"PGINFLUX_SCHEMA": "telegraf", "PGINFLUX_BATCH_SIZE": "500"},
			check: func(t *testing.T, c Config) {
				if c.Schema != "telegraf" || c.BatchSize != 500 {
					t.Errorf("got schema %q batch %d, want telegraf 500", c.Schema, c.BatchSize)
				}
			},
		},
		{
			name: "flag wins over environment",
			args: []string{"--schema", "fromflag", "--flush-interval=250ms"},
			env:  map[string]string{"PGINFLUX_SCHEMA": "fromenv", "PGINFLUX_FLUSH_INTERVAL": "bogus"},
			check: func(t *testing.T, c Config) {
				if c.Schema != "fromflag" || c.FlushInterval != 250*time.Millisecond {
					t.Errorf("got %q %v, want fromflag 250ms", c.Schema, c.FlushInterval)
				}
			},
		},
		{
			name: "DATABASE_URL when the flag and its twin are empty",
			env:  map[string]string{"DATABASE_URL": "postgres://app@db.example/appdb"},
			check: func(t *testing.T, c Config) {
				if c.DatabaseURL != "postgres://app@db.example/appdb" {
					t.Errorf("got %q", c.DatabaseURL)
				}
				if !strings.Contains(c.Database, "user=app database=appdb") {
					t.Errorf("got description %q, want user=app database=appdb", c.Database)
				}
			},
		},
		{
			name: "PGINFLUX_DATABASE_URL wins over DATABASE_URL",
			env:  map[string]string{"DATABASE_URL": "postgres://a@h/one", "PGINFLUX_DATABASE_URL": "postgres://b@h/two"},
			check: func(t *testing.T, c Config) {
				if c.DatabaseURL != "postgres://b@h/two" {
					t.Errorf("got %q", c.DatabaseURL)
				}
			},
		},
		{
			name: "service name and IPv6 literal",
			args: []string{"--udp-address", "[::1]:domain"},
			check: func(t *testing.T, c Config) {
				if c.UDPAddress != "[::1]:53" {
					t.Errorf("got %q, want [::1]:53", c.UDPAddress)
				}
			},
		},
		{
			name: "allowed networks",
			args: []string{"--udp-allow", "10.0.0.0/8, 192.0.2.7,::1"},
			check: func(t *testing.T, c Config) {
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("::1/128")}
				if !reflect.DeepEqual(c.UDPAllow, want) {
					t.Errorf("got %v, want %v", c.UDPAllow, want)
				}
			},
		},
		{
			name: "empty address disables UDP",
			args: []string{"--udp-address="},
			check: func(t *testing.T, c Config) {
				if c.UDPAddress != "" {
					t.Errorf("got %q, want empty", c.UDPAddress)
				}
			},
		},
		{
			name: "sizes, precision and levels",
			args: []string{"--udp-read-buffer", "512KiB", "--precision", "ms", "--log-level", "debug", "--log-format", "json"},
			check: func(t *testing.T, c Config) {
				if c.UDPReadBuffer != 512<<10 || c.Precision != parse.Millisecond || c.LogLevel != slog.LevelDebug || c.LogFormat != "json" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "version needs no valid database url",
			args: []string{"--version"},
			env:  map[string]string{"PGINFLUX_DATABASE_URL": "postgres://%zz"},
			check: func(t *testing.T, c Config) {
				if !c.Version {
					t.Error("got Version false")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestEveryInvalidValueAtOnce(t *testing.T) {
	args := []string{
		"--storage", "xml",
		"--udp-address", "nope",
		"--udp-readers", "0",
		"--precision", "h",
		"--batch-size", "ten",
		"--log-level", "loud",
		"--udp-allow", "10.0.0.0/33",
		"--tls-cert", "cert.pem",
	}
	e := map[string]string{"PGINFLUX_FLUSH_INTERVAL": "soon", "PGINFLUX_WRITERS": "-1"}
	_, err := Parse(args, env(e), &bytes.Buffer{})
	if err == nil {
		t.Fatal("got no error")
	}
	for _, name := range []string{"--storage", "--udp-address", "--udp-readers", "--precision", "--batch-size", "--log-level", "PGINFLUX_FLUSH_INTERVAL", "PGINFLUX_WRITERS", "--udp-allow", "--tls-cert and --tls-key"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	for _, url := range []string{
		"postgres://app:s3cr3tpw@db:notaport/appdb",
		"host=db password=s3cr3tpw port=notaport",
		"postgres://app:s3cr3tpw@[::1/db",
	} {
		_, err := Parse([]string{"--database-url", url}, env(nil), &bytes.Buffer{})
		if err == nil {
			t.Fatalf("%s: got no error", url)
		}
		if strings.Contains(err.Error(), "s3cr3tpw") {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "--database-url") {
			t.Errorf("error does not name the flag: %v", err)
		}
	}
	c, err := Parse([]string{"--database-url", "postgres://app:s3cr3tpw@db/appdb"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Database, "s3cr3tpw") {
		t.Errorf("description shows the password: %q", c.Database)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("got %v, want ErrHelp", err)
	}
	for _, o := range options() {
		if !strings.Contains("\n"+out.String(), "\n  --"+o.name) {
			t.Errorf("usage lacks --%s", o.name)
		}
		if o.noEnv == strings.Contains(out.String(), EnvName(o.name)) {
			t.Errorf("usage of --%s: shows %s: %v, want %v", o.name, EnvName(o.name), !o.noEnv, o.noEnv)
		}
	}
	if strings.Contains(out.String(), "\n  -"+options()[0].name) {
		t.Error("usage shows a flag with one dash")
	}
}

func TestUnknownFlag(t *testing.T) {
	_, err := Parse([]string{"--no-such-flag"}, env(nil), &bytes.Buffer{})
	if err == nil || errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want an error", err)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "4096", want: 4096},
		{in: "16MiB", want: 16 << 20},
		{in: "8M", want: 8 << 20},
		{in: "512kib", want: 512 << 10},
		{in: "1G", want: 1 << 30},
		{in: "2 GiB", want: 2 << 30},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "12TB", bad: true},
		{in: "-1", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseBytes(%q): got %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q): got %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestResolveAddress(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: ":8089", want: ":8089"},
		{in: "127.0.0.1:8089", want: "127.0.0.1:8089"},
		{in: "[::1]:8089", want: "[::1]:8089"},
		{in: "localhost:0", want: "localhost:0"},
		{in: ":domain", want: ":53"},
		{in: "", want: ""},
		{in: "8089", bad: true},
		{in: "host:", bad: true},
		{in: ":no-such-service-here", bad: true},
		{in: "::1:8089", bad: true},
	}
	for _, tt := range tests {
		got, err := ResolveAddress("udp", tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ResolveAddress(%q): got %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolveAddress(%q): got %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "", want: 0},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "0d", bad: true},
		{in: "-1h", bad: true},
		{in: "soon", bad: true},
		{in: "1.5d", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseAge(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseAge(%q): got %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAge(%q): got %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestTablesFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "create.sql")
	if err := os.WriteFile(file, []byte("CREATE INDEX ON {{.Table}} ({{.TimeColumn}} DESC)"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"--create-table-sql", "@" + file, "--partition-by", "week", "--retention", "12w"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.CreateTableSQL == nil || c.PartitionBy != "week" || c.Retention != 12*7*24*time.Hour {
		t.Errorf("got %v %q %v", c.CreateTableSQL, c.PartitionBy, c.Retention)
	}
	_, err = Parse([]string{"--create-table-sql", "{{.Nope}}", "--partition-by", "year", "--retention", "30d"}, env(nil), &bytes.Buffer{})
	for _, name := range []string{"--create-table-sql:", "--partition-by:", "--retention:"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestPartitionByWithHypertable: --partition-by and a template that makes
// hypertables cannot work together, and are refused with one error naming
// both flags; each alone is fine.
func TestPartitionByWithHypertable(t *testing.T) {
	recipe := "SELECT create_hypertable({{.TableLiteral}}, {{.TimeColumnLiteral}}, migrate_data => true);"
	_, err := Parse([]string{"--create-table-sql", recipe, "--partition-by", "day"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--partition-by") || !strings.Contains(err.Error(), "--create-table-sql") {
		t.Errorf("both: got %v, want an error naming --partition-by and --create-table-sql", err)
	}
	for _, args := range [][]string{
		{"--create-table-sql", recipe},
		{"--partition-by", "day"},
		{"--create-table-sql", "CREATE INDEX ON {{.Table}} USING brin ({{.TimeColumn}});", "--partition-by", "day"},
	} {
		if _, err := Parse(args, env(nil), &bytes.Buffer{}); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}
