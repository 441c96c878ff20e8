// Package config turns command-line flags and PGINFLUX_* environment
// variables into a validated Config.
//
// Every flag but --version has an environment twin named PGINFLUX_
// followed by the flag name in upper snake case (--udp-read-buffer is
// PGINFLUX_UDP_READ_BUFFER).
// A flag given on the command line wins over its environment variable.
// Parse reports every invalid value at once, each naming its flag or
// variable, so a user fixes them in one go.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/pginflux/pginflux/parse"
)

// Storage says how tags and fields are laid out in a measurement's table.
type Storage string

// The storage modes.
const (
	// StorageJSONB stores tags and fields as two jsonb columns.
	StorageJSONB Storage = "jsonb"
	// StorageColumns stores one column per tag and field.
	StorageColumns Storage = "columns"
)

// Config is the complete, validated configuration of a pginflux process.
// It is a plain value: copy it freely.
type Config struct {
	// DatabaseURL is the connection string as given (URL or key=value).
	// Empty means DATABASE_URL, then libpq's PG* variables. It may hold a
	// password: never log it, log Database instead.
	DatabaseURL string
	// Database is a description of the database that is safe to log.
	Database string

	Schema        string
	Storage       Storage
	WriteMode     string // "merge" (one row per point) or "append"
	TimeNanos     bool   // new tables in merge mode get time_ns in their point key
	UintType      string // "numeric" or "bigint": columns for unsigned fields
	MaxColumns    int
	RejectedTable string // "" disables the rejected table

	CreateTableSQL *template.Template // run after creating a table; nil for none
	PartitionBy    string             // "", "day", "week" or "month"
	Retention      time.Duration      // drop partitions older than this; 0 keeps them

	UDPAddress    string // host:port with the service resolved to a number; "" disables UDP
	UDPReaders    int
	UDPReadBuffer int // bytes

	Precision      parse.Precision
	BatchSize      int
	FlushInterval  time.Duration
	Writers        int
	QueueSize      int   // datagrams between the UDP readers and the parsers
	QueueMaxBytes  int64 // and their bytes
	MaxPendingRows int
	MaxMemory      int64 // bytes: the memory budget (package budget)
	Parsers        int

	ShutdownTimeout time.Duration

	SpoolDir      string // "" for no spool
	SpoolMaxBytes int64

	HTTPAddress string // host:port for /metrics, /healthz, /readyz, /ping, /write; "" disables HTTP
	PProf       bool   // serve /debug/pprof on the HTTP address

	// UDPAllow lists the networks whose datagrams are taken; empty takes all.
	UDPAllow []netip.Prefix

	TCPAddress     string        // host:port for newline-delimited line protocol; "" disables TCP
	TCPIdleTimeout time.Duration // a TCP connection idle this long is closed
	MaxLineSize    int           // bytes; longer lines (TCP, HTTP) are rejected

	HTTPToken    string // when set, /write needs it
	AuthFile     string // --auth-file: credentials with rights; "" for none
	HTTPMaxBody  int64  // bytes, after decompression
	TLSCert      string // PEM files; both or neither
	TLSKey       string
	SchemaFromDB bool // /write?db= (v1) or bucket= (v2) names the schema

	HTTPMaxConnections int // HTTP connections open at once
	HTTPMaxWrites      int // write requests served at once

	QueryTimeout   time.Duration // a /query statement's statement_timeout
	QueryMaxPoints int           // points one SELECT returns at most; 0: no bound
	QueryMaxSeries int           // series one SELECT returns at most; 0: no bound

	LogLevel  slog.Level
	LogFormat string // "text" or "json"

	Version bool // print the version and exit
}

// ErrHelp is returned by Parse when --help was asked for; the list of
// flags has been written to Parse's out.
var ErrHelp = flag.ErrHelp

// option is one flag and how it lands in a Config.
type option struct {
	name  string
	def   string
	usage string
	set   func(c *Config, v string) error
	// isBool flags take no value on the command line (--version).
	isBool bool
	// noEnv flags have no environment twin: --version asks for
	// something once, and PGINFLUX_VERSION is a name images use for
	// their own purposes.
	noEnv bool
}

// EnvName returns the environment variable twin of a flag name.
func EnvName(flagName string) string {
	return "PGINFLUX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseBool(v string, dst *bool) error {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a boolean (true or false)", v)
	}
	*dst = b
	return nil
}

func intIn(lo, hi int, assign func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is outside %d..%d", n, lo, hi)
		}
		assign(c, n)
		return nil
	}
}

func durationIn(lo, hi time.Duration, assign func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 500ms, 1s, 2m)", v)
		}
		if d < lo || d > hi {
			return fmt.Errorf("%s is outside %s..%s", d, lo, hi)
		}
		assign(c, d)
		return nil
	}
}
