package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

func options() []option {
	procs := strconv.Itoa(runtime.GOMAXPROCS(0))
	return slices.Concat(tableOptions(), udpOptions(procs), batchOptions(procs), templateOptions(), holdOptions(), serverOptions(), logOptions())
}

// tableOptions are the flags of the database, the schema and how tables are laid out.
func tableOptions() []option {
	return []option{
		{name: "database-url", usage: "PostgreSQL connection `URL` or key=value string; empty: DATABASE_URL, then the PG* variables, as libpq does", set: func(c *Config, v string) error {
			c.DatabaseURL = v
			return nil
		}},
		{name: "schema", def: "metrics", usage: "`schema` that holds one table per measurement; created when missing and the role may", set: func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			if len(v) > 63 {
				return fmt.Errorf("%q is longer than PostgreSQL's 63 bytes", v)
			}
			if strings.IndexByte(v, 0) >= 0 {
				return errors.New("must not contain a NUL byte")
			}
			c.Schema = v
			return nil
		}},
		{name: "storage", def: string(StorageColumns), usage: "table `layout`: columns (one column per tag and field) or jsonb (time, tags jsonb, fields jsonb)", set: func(c *Config, v string) error {
			switch Storage(v) {
			case StorageJSONB, StorageColumns:
			default:
				return fmt.Errorf("%q is neither columns nor jsonb", v)
			}
			c.Storage = Storage(v)
			return nil
		}},
		{name: "write-mode", def: "merge", usage: "`mode` of tables pginflux creates: merge (one row per point, identified by measurement, tag set and time: a later write of a point updates the fields it carries, retries never duplicate) or append (every line a new row, duplicates kept; faster)", set: func(c *Config, v string) error {
			if v != "merge" && v != "append" {
				return fmt.Errorf("%q is neither merge nor append", v)
			}
			c.WriteMode = v
			return nil
		}},
		{name: "time-nanos", def: "false", isBool: true, usage: "tables pginflux creates in merge mode keep times to the nanosecond: a column time_ns smallint (the nanoseconds beyond the microsecond of time) in the point key, so that points less than a microsecond apart are rows of their own", set: func(c *Config, v string) error {
			return parseBool(v, &c.TimeNanos)
		}},
		{name: "uint64-type", def: "numeric", usage: "`type` of new columns for unsigned (u) fields: numeric (exact) or bigint (values above 2^63-1 are rejected)", set: func(c *Config, v string) error {
			if v != "numeric" && v != "bigint" {
				return fmt.Errorf("%q is neither numeric nor bigint", v)
			}
			c.UintType = v
			return nil
		}},
		{name: "max-columns", def: "1000", usage: "most `columns` pginflux lets a table have (PostgreSQL's limit is 1600, dropped columns included); keys beyond go to the table's pginflux_overflow jsonb column", set: intIn(2, 1599, func(c *Config, n int) { c.MaxColumns = n })},
		{name: "rejected-table", def: "pginflux_rejected", usage: "`table` in the schema keeping every line, row and value that could not be stored, with a line of line protocol to replay it; empty: only count them", set: func(c *Config, v string) error {
			if len(v) > 63 || strings.IndexByte(v, 0) >= 0 {
				return fmt.Errorf("%q is not a PostgreSQL table name", v)
			}
			c.RejectedTable = v
			return nil
		}},
	}
}

// udpOptions are the flags of the UDP listener.
func udpOptions(procs string) []option {
	return []option{
		{name: "udp-address", def: ":8089", usage: "UDP `address` to listen on: host:port, :port, :service (from /etc/services), [::1]:port; empty disables UDP", set: func(c *Config, v string) error {
			addr, err := ResolveAddress("udp", v)
			if err != nil {
				return err
			}
			c.UDPAddress = addr
			return nil
		}},
		{name: "udp-readers", def: procs, usage: "`number` of UDP sockets sharing the port with SO_REUSEPORT, each with its own reader", set: intIn(1, 1024, func(c *Config, n int) { c.UDPReaders = n })},
		{name: "udp-read-buffer", def: "16MiB", usage: "kernel receive buffer (SO_RCVBUF) of each UDP socket, in `bytes` (units: KiB, MiB, GiB, K, M, G)", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 0 || n > 1<<31-1 {
				return fmt.Errorf("%s is outside 0..2GiB", v)
			}
			c.UDPReadBuffer = int(n)
			return nil
		}},
	}
}

// batchOptions are the flags of parsing and batching.
func batchOptions(procs string) []option {
	return []option{
		{name: "precision", def: "ns", usage: "`unit` of timestamps in UDP and TCP lines (HTTP takes ?precision=): ns, us, ms or s", set: func(c *Config, v string) error {
			switch v {
			case "ns", "us", "ms", "s":
			default:
				return fmt.Errorf("%q is not one of ns, us, ms, s", v)
			}
			p, err := parse.ParsePrecision(v)
			if err != nil {
				return err
			}
			c.Precision = p
			return nil
		}},
		{name: "batch-size", def: "10000", usage: "a table's pending rows are written when there are this many `rows`", set: intIn(1, 10_000_000, func(c *Config, n int) { c.BatchSize = n })},
		{name: "flush-interval", def: "1s", usage: "a table's pending rows are written at the latest this long (a `duration`) after the first arrived", set: durationIn(time.Millisecond, time.Hour, func(c *Config, d time.Duration) { c.FlushInterval = d })},
		{name: "writers", def: "2", usage: "`number` of PostgreSQL connections writing batches in parallel", set: intIn(1, 256, func(c *Config, n int) { c.Writers = n })},
		{name: "parsers", def: procs, usage: "`number` of goroutines parsing received datagrams", set: intIn(1, 1024, func(c *Config, n int) { c.Parsers = n })},
		{name: "queue-size", def: "16384", usage: "`datagrams` waiting between the UDP readers and the parsers (also bounded by --queue-max-bytes); what does not fit is dropped and counted", set: intIn(1, 1<<20, func(c *Config, n int) { c.QueueSize = n })},
		{name: "queue-max-bytes", def: "32MiB", usage: "`bytes` of datagrams waiting between the UDP readers and the parsers; what does not fit is dropped and counted", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 64<<10 {
				return fmt.Errorf("%s is below 64KiB, the largest datagram", v)
			}
			c.QueueMaxBytes = n
			return nil
		}},
	}
}

// templateOptions are the flags of what pginflux runs on the tables it creates.
func templateOptions() []option {
	return []option{
		{name: "create-table-sql", usage: "`SQL` run after pginflux creates a table, in the same transaction (@file reads it from a file); a Go template with {{.Table}}, {{.Schema}}, {{.TableName}}, {{.TimeColumn}} (quoted identifiers) and {{.TableLiteral}}, {{.TimeColumnLiteral}}, {{.Measurement}} (literals)", set: func(c *Config, v string) error {
			if v == "" {
				c.CreateTableSQL = nil
				return nil
			}
			if name, ok := strings.CutPrefix(v, "@"); ok {
				b, err := os.ReadFile(name)
				if err != nil {
					return fmt.Errorf("read %s: %w", name, errors.Unwrap(err))
				}
				v = string(b)
			}
			t, err := schema.ParseTemplate(v)
			if err != nil {
				return fmt.Errorf("not a valid template: %w", err)
			}
			c.CreateTableSQL = t
			return nil
		}},
		{name: "partition-by", usage: "make new tables PARTITION BY RANGE (time) with a partition per `period` (day, week or month), made ahead and on demand; empty for plain tables", set: func(c *Config, v string) error {
			switch v {
			case "", "day", "week", "month":
			default:
				return fmt.Errorf("%q is not day, week or month", v)
			}
			c.PartitionBy = v
			return nil
		}},
		{name: "retention", usage: "drop partitions (made with --partition-by) wholly older than this `age`: 30d, 12w, 36h; empty keeps them", set: func(c *Config, v string) error {
			d, err := ParseAge(v)
			if err != nil {
				return err
			}
			c.Retention = d
			return nil
		}},
	}
}

// holdOptions are the flags of what pginflux holds while PostgreSQL does not take rows, and for how long at shutdown.
func holdOptions() []option {
	return []option{
		{name: "max-memory", def: "96MiB", usage: "`bytes` that every buffer of received data draws from: datagrams queued, rows between parsing and commit, write requests and TCP connections being read, the rows of a /query answer; when spent, write requests are refused before their body is read (429/503 with Retry-After), TCP reads wait and datagrams are dropped and counted", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 16<<20 {
				return fmt.Errorf("%s is below 16MiB", v)
			}
			c.MaxMemory = n
			return nil
		}},
		{name: "max-pending-rows", def: "200000", usage: "most `rows` held between parsing and commit; at the limit the parsers wait, the datagram queue fills and further datagrams are dropped and counted", set: intIn(1, 100_000_000, func(c *Config, n int) { c.MaxPendingRows = n })},
		{name: "spool-dir", usage: "`directory` where batches PostgreSQL cannot take for now (or that the shutdown timeout would abandon) wait on disk, to be written, each once, when it can, also after a restart; empty: hold them in memory only", set: func(c *Config, v string) error {
			c.SpoolDir = v
			return nil
		}},
		{name: "spool-max-size", def: "1GiB", usage: "most `bytes` the spool holds; beyond, rows wait in memory (and datagrams are dropped at the door) as without a spool", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 1<<20 {
				return fmt.Errorf("%s is below 1MiB", v)
			}
			c.SpoolMaxBytes = n
			return nil
		}},
		{name: "shutdown-timeout", def: "30s", usage: "on SIGTERM/SIGINT, how long (a `duration`) to keep writing what was received before giving up", set: durationIn(0, 24*time.Hour, func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
	}
}

// serverOptions are the flags of HTTP and TCP.
func serverOptions() []option {
	return []option{
		{name: "http-address", def: ":8086", usage: "HTTP `address` for /write, /api/v2/write, /query, /metrics, /healthz, /readyz and /ping (8086 is where Telegraf's influxdb output points); empty disables HTTP", set: func(c *Config, v string) error {
			addr, err := ResolveAddress("tcp", v)
			if err != nil {
				return err
			}
			c.HTTPAddress = addr
			return nil
		}},
		{name: "pprof", def: "false", isBool: true, usage: "serve Go's profiler at /debug/pprof on the HTTP address", set: func(c *Config, v string) error {
			return parseBool(v, &c.PProf)
		}},
		{name: "udp-allow", usage: "comma-separated `CIDRs` whose UDP datagrams are taken (UDP has no authentication); others are dropped and counted; empty takes all", set: func(c *Config, v string) error {
			c.UDPAllow = nil
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if f == "" {
					continue
				}
				p, err := netip.ParsePrefix(f)
				if err != nil {
					a, aerr := netip.ParseAddr(f)
					if aerr != nil {
						return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", f)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				c.UDPAllow = append(c.UDPAllow, p.Masked())
			}
			return nil
		}},
		{name: "tcp-address", usage: "TCP `address` for newline-delimited line protocol (Telegraf's socket_writer tcp://); empty disables TCP", set: func(c *Config, v string) error {
			addr, err := ResolveAddress("tcp", v)
			if err != nil {
				return err
			}
			c.TCPAddress = addr
			return nil
		}},
		{name: "tcp-idle-timeout", def: "5m", usage: "close a TCP connection that sent nothing for this `duration`", set: durationIn(time.Second, 24*time.Hour, func(c *Config, d time.Duration) { c.TCPIdleTimeout = d })},
		{name: "max-line-size", def: "64KiB", usage: "longest line, in `bytes`, taken over TCP and HTTP; a longer one is rejected and counted, the connection kept", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 256 || n > 64<<20 {
				return fmt.Errorf("%s is outside 256B..64MiB", v)
			}
			c.MaxLineSize = int(n)
			return nil
		}},
		{name: "http-token", usage: "`token` that /write requires (Authorization: Token or Bearer, or the v1 p= / basic-auth password); empty: no authentication", set: func(c *Config, v string) error {
			c.HTTPToken = v
			return nil
		}},
		{name: "auth-file", usage: "`file` of credentials (tokens and 1.x users, stored hashed) with the databases each may write to and query and the PostgreSQL role its rows are written as; reread on SIGHUP; see docs/operations.md#several-tenants", set: func(c *Config, v string) error {
			c.AuthFile = v
			return nil
		}},
		{name: "http-max-body", def: "32MiB", usage: "largest /write body, in `bytes`, after gzip decompression; larger ones get 413", set: func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < 1024 {
				return fmt.Errorf("%s is below 1KiB", v)
			}
			c.HTTPMaxBody = n
			return nil
		}},
		{name: "http-max-connections", def: "1024", usage: "most HTTP `connections` open at once, every endpoint's; one more is closed at once and counted", set: intIn(1, 1<<16, func(c *Config, n int) { c.HTTPMaxConnections = n })},
		{name: "http-max-writes", def: "64", usage: "most write `requests` served at once (reading, parsing, waiting for the commit); one more is answered 503 (v2: 429) with Retry-After: 1 before its body is read", set: intIn(1, 1<<16, func(c *Config, n int) { c.HTTPMaxWrites = n })},
		{name: "query-timeout", def: "30s", usage: "longest a /query statement runs in PostgreSQL (its statement_timeout, a `duration`); longer ones get InfluxDB's \"query timeout\" error", set: durationIn(time.Millisecond, 24*time.Hour, func(c *Config, d time.Duration) { c.QueryTimeout = d })},
		{name: "query-max-points", def: "10000000", usage: "most `points` (rows) one /query SELECT returns, as InfluxDB's max-select-point; 0 is no bound", set: intIn(0, 1<<40, func(c *Config, n int) { c.QueryMaxPoints = n })},
		{name: "query-max-series", def: "100000", usage: "most `series` one /query SELECT returns, as InfluxDB's max-select-series; 0 is no bound", set: intIn(0, 1<<40, func(c *Config, n int) { c.QueryMaxSeries = n })},
		{name: "tls-cert", usage: "PEM certificate `file` for HTTPS and TLS over TCP (with --tls-key)", set: func(c *Config, v string) error {
			c.TLSCert = v
			return nil
		}},
		{name: "tls-key", usage: "PEM private key `file` for --tls-cert", set: func(c *Config, v string) error {
			c.TLSKey = v
			return nil
		}},
		{name: "schema-from-db", def: "false", isBool: true, usage: "write each /write request into the schema its db= (v1) or bucket= (v2) parameter names, instead of --schema", set: func(c *Config, v string) error {
			return parseBool(v, &c.SchemaFromDB)
		}},
	}
}

// logOptions are the flags of the log, and --version.
func logOptions() []option {
	return []option{
		{name: "log-level", def: "info", usage: "`level` of logging: debug, info, warn or error", set: func(c *Config, v string) error {
			// slog also takes offsets such as "info+2"; its error for
			// anything else is its own ("slog: level string ..."), not ours.
			if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}
			return nil
		}},
		{name: "log-format", def: "text", usage: "`format` of log lines: text or json", set: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("%q is neither text nor json", v)
			}
			c.LogFormat = v
			return nil
		}},
		{name: "version", def: "false", isBool: true, noEnv: true, usage: "print the version and exit", set: func(c *Config, v string) error {
			return parseBool(v, &c.Version)
		}},
	}
}
